"""A workload replayed through the simulated engine: the HTTP replay's arrivals, dependencies
and tool gaps, on the virtual clock.

Token ids only matter to prefix caching, so prompts are the HTTP replay's own
(`benchmarks.harness.prompts`: the same seed-derived system prompts, bodies and trace blocks,
over the tiny model's vocabulary by default), and each call's output is a deterministic stand-in
derived from the workload's seed and the call's name, of the workload's output length. A later
call that carries an earlier call's output carries the same stand-in, so every prefix the
workload shares stays shared, as the model's real outputs would be; the outputs of different
calls share nothing, as a model's rarely do.

This module and the CLI are the simulator's links to `benchmarks/` (the workload model, the
configs, the prompt builder, the records the report code reads); the engine and the cost models
know nothing of it.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import shlex

from benchmarks.harness.configs import CLAIRVOYANT, host_tier_flags, server_flags
from benchmarks.harness.prompts import PromptBuilder
from benchmarks.harness.replay import CallRecord, JobRecord
from benchmarks.workloads.model import Call, Job, Workload, tokens_for
from pythia.models.tiny_model import VOCAB_SIZE
from pythia.server_args import ServerArgs
from pythia.sim.cost_model import CostModel
from pythia.sim.engine import SimEngine, SimRequest
from pythia.sim.routing import Router
from pythia.sim.true_feed import TrueFeed, WorkloadFuture
from pythia.workflow.meta import WorkflowMeta


class SimReplay:
    """Replays a workload over one simulated engine per replica, each on its own clock: the
    replica furthest behind in virtual time steps next, and an event (a job arriving, a call
    becoming ready) is handled once every busy replica has reached its time."""

    def __init__(self, engines: list[SimEngine], workload: Workload, vocab_size: int, tagged: bool = True,
                 router: Router | None = None, future: WorkloadFuture | None = None) -> None:
        self.engines = engines
        self.future = future  # told of every arrival, issue and finish (clairvoyant configs)
        self.router = router or Router("round-robin", len(engines), engines[0].args.page_size)
        self.workload = workload
        self.tagged = tagged
        self.prompts = PromptBuilder(workload, vocab_size)
        self.calls: list[CallRecord] = []
        self.jobs: list[JobRecord] = []
        self.events: list[tuple[float, int, Job, Call | None]] = []  # (time, order, job, call); None: arrival
        self.order = itertools.count()
        self.bodies: dict[str, dict[str, list[int]]] = {}
        self.outputs: dict[str, dict[str, list[int]]] = {}
        self.pending_deps: dict[tuple[str, str], int] = {}
        self.readers: dict[tuple[str, str], int] = {}  # calls yet to be issued that carry this call's tokens
        self.dependents: dict[tuple[str, str], list[Call]] = {}
        self.finish_s: dict[str, list[float]] = {}
        self.ready_s: dict[tuple[str, str], float] = {}
        self.request_latency_s = engines[0].cost.request_latency_s

    def run(self) -> None:
        for job in self.workload.jobs:
            self._at(job.arrival_s, job, None)
        engines, events = self.engines, self.events
        while True:
            behind = None  # the busy replica furthest behind (one pass: this runs every step)
            for e in engines:
                if e.requests and (behind is None or e.now < behind.now):
                    behind = e
            if events and (behind is None or events[0][0] <= behind.now):
                t, _, job, call = heapq.heappop(events)
                if call is None:
                    self._arrive(job)
                else:
                    self._issue(job, call, t)
            elif behind is not None:
                for req in behind.step():
                    self._done(req)
            else:
                return

    def _at(self, t: float, job: Job, call: Call | None) -> None:
        heapq.heappush(self.events, (t, next(self.order), job, call))

    def _ready(self, t: float, job: Job, call: Call) -> None:
        """The call is issued at `t`; its request reaches an engine the serving path's latency later."""
        self.ready_s[(job.id, call.id)] = t
        self._at(t + self.request_latency_s, job, call)

    def _arrive(self, job: Job) -> None:
        self.bodies[job.id], self.outputs[job.id], self.finish_s[job.id] = {}, {}, []
        if self.future is not None:
            self.future.on_arrive(job)
        for call in job.calls:
            for source in self._sources(call):
                self.readers[(job.id, source)] = self.readers.get((job.id, source), 0) + 1
            deps = call.all_deps()
            if deps:
                self.pending_deps[(job.id, call.id)] = len(deps)
            for dep in deps:
                self.dependents.setdefault((job.id, dep), []).append(call)
            if not deps:  # the HTTP replay's call sleeps its gap from the job's start
                self._ready(job.arrival_s + call.gap_s, job, call)

    @staticmethod
    def _sources(call: Call) -> list[str]:
        """The calls whose body or output `call`'s prompt carries."""
        return ([call.parent] if call.parent else []) + [c for c in call.also if c != call.parent]

    def _issue(self, job: Job, call: Call, entry_s: float) -> None:
        bodies, outputs = self.bodies[job.id], self.outputs[job.id]
        body = self.prompts.body(job, call, bodies, outputs)
        # A body or output is kept only until the last call that carries it is issued: a long
        # session's prompts are tens of thousands of tokens each, hundreds of sessions at once.
        if (job.id, call.id) in self.readers:
            bodies[call.id] = body
        for source in self._sources(call):
            key = (job.id, source)
            self.readers[key] -= 1
            if self.readers[key] == 0:
                del self.readers[key], bodies[source], outputs[source]
        output = tokens_for(self.workload.seed, f"{job.id}/{call.id}/output", call.output_tokens,
                            self.prompts.low, self.prompts.high)
        wf = WorkflowMeta(job.type, job.id, call.agent) if self.tagged else WorkflowMeta()
        prompt = self.prompts.prompt(call, body)
        engine = self.engines[self.router.choose(prompt, [len(e.requests) for e in self.engines])]
        engine.now = max(engine.now, entry_s)  # an idle replica's clock catches up with the world's
        if self.future is not None:
            self.future.on_issue(job, call, len(prompt))
        engine.add_request(prompt, output, wf, tag=(job, call))

    def _done(self, req: SimRequest) -> None:
        job, call = req.tag
        if (job.id, call.id) in self.readers:
            self.outputs[job.id][call.id] = req.output_ids
        self.calls.append(CallRecord(job.id, call.id, call.agent, self.ready_s.pop((job.id, call.id)),
                                     req.first_token_s, req.finished_s, req.prompt_len, req.produced,
                                     req.cached_tokens, req.host_cached_tokens))
        self.finish_s[job.id].append(req.finished_s)
        for nxt in self.dependents.pop((job.id, call.id), []):
            key = (job.id, nxt.id)
            self.pending_deps[key] -= 1
            if self.pending_deps[key] == 0:
                del self.pending_deps[key]
                self._ready(req.finished_s + nxt.gap_s, job, nxt)
        if len(self.finish_s[job.id]) == len(job.calls):
            if self.tagged:  # the application ends its job, as the HTTP replay does, wherever it ran
                for engine in self.engines:
                    engine.end_job(job.id)
            self.jobs.append(JobRecord(job.id, job.type, job.arrival_s, max(self.finish_s[job.id]), len(job.calls)))
            del self.bodies[job.id], self.outputs[job.id], self.finish_s[job.id]


def sim_server_args(config: str, extra: str) -> ServerArgs:
    """What the real server would run `config` with: its flags, then `extra`, through the
    server's own flag parser."""
    parser = argparse.ArgumentParser(prog=f"config {config!r} with server args {extra!r}", add_help=False)
    ServerArgs.add_cli_args(parser)
    flags = server_flags(config, clairvoyant=True) + host_tier_flags(config, shlex.split(extra))
    args = ServerArgs.from_cli_args(parser.parse_args(flags))
    args.validate()
    return args


def build_replay(config: str, workload: Workload, cost: CostModel, server_args: str = "", tagged: bool = True,
                 vocab_size: int = VOCAB_SIZE, replicas: int = 1, router: str = "round-robin") -> SimReplay:
    """The replay `simulate` runs, not yet run: `replicas` simulated engines configured as
    `config`, routed by `router`; a clairvoyant config's trackers feed the workload's truth."""
    args = sim_server_args(config, server_args)
    engines = [SimEngine(args, cost) for _ in range(replicas)]
    replay = SimReplay(engines, workload, vocab_size, tagged=tagged, router=Router(router, replicas, args.page_size))
    if config in CLAIRVOYANT:
        feed_future(replay, WorkloadFuture(workload), TrueFeed)
    return replay


def feed_future(replay: SimReplay, future: WorkloadFuture, make_feed) -> None:
    """Every replica's tracker feeds from `make_feed(core, profiler, tags, future)` instead of its
    profiler's predictions (the real tracker keeps its job table; only the values it sends
    change), and `future` follows the replay's arrivals, issues and finishes."""
    replay.future = future
    for engine in replay.engines:
        tracker = engine.tracker
        tracker.feed = make_feed(engine.core, tracker.profiler, tracker.tags, future)
        engine.before_finish = lambda req: future.on_finish(*req.tag, req.finished_s, req.produced)


def simulate(config: str, workload: Workload, cost: CostModel, server_args: str = "", tagged: bool = True,
             vocab_size: int = VOCAB_SIZE, replicas: int = 1, router: str = "round-robin"
             ) -> tuple[SimReplay, list[SimEngine]]:
    """Replays `workload` through `replicas` simulated engines configured as `config`, routed by
    `router`; every core's page accounting is checked at the end (RuntimeError if broken)."""
    replay = build_replay(config, workload, cost, server_args, tagged, vocab_size, replicas, router)
    replay.run()
    for engine in replay.engines:
        engine.check_integrity()
    return replay, replay.engines


def merged_stats(engines: list[SimEngine]) -> dict:
    """The replicas' counters summed, in the form `summarize` reads."""
    per = [e.stats() for e in engines]
    out = {k: sum(s[k] for s in per) for k, v in per[0].items() if isinstance(v, (int, float)) and k != "simulated"}
    return {**out, "simulated": True, "cost_model": per[0]["cost_model"], "replicas": len(engines)}

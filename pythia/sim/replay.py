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
from typing import Callable

from benchmarks.harness.configs import server_flags
from benchmarks.harness.prompts import PromptBuilder
from benchmarks.harness.replay import CallRecord, JobRecord
from benchmarks.workloads.model import Call, Job, Workload, tokens_for
from pythia.models.tiny_model import VOCAB_SIZE
from pythia.server_args import ServerArgs
from pythia.sim.cost_model import CostModel
from pythia.sim.engine import SimEngine, SimRequest
from pythia.workflow.meta import WorkflowMeta


class SimReplay:
    def __init__(self, engine: SimEngine, workload: Workload, vocab_size: int, tagged: bool = True,
                 on_call_done: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.workload = workload
        self.tagged = tagged
        self.prompts = PromptBuilder(workload, vocab_size)
        self.on_call_done = on_call_done
        self.calls: list[CallRecord] = []
        self.jobs: list[JobRecord] = []
        self.events: list[tuple[float, int, Job, Call | None]] = []  # (time, order, job, call); None: arrival
        self.order = itertools.count()
        self.bodies: dict[str, dict[str, list[int]]] = {}
        self.outputs: dict[str, dict[str, list[int]]] = {}
        self.pending_deps: dict[tuple[str, str], int] = {}
        self.dependents: dict[tuple[str, str], list[Call]] = {}
        self.finish_s: dict[str, list[float]] = {}
        self.ready_s: dict[tuple[str, str], float] = {}

    def run(self) -> None:
        for job in self.workload.jobs:
            self._at(job.arrival_s, job, None)
        engine = self.engine
        while self.events or engine.has_work():
            if not engine.has_work():
                engine.now = max(engine.now, self.events[0][0])  # nothing to compute: skip to the next event
            while self.events and self.events[0][0] <= engine.now:
                t, _, job, call = heapq.heappop(self.events)
                if call is None:
                    self._arrive(job)
                else:
                    self._issue(job, call, t)
            if engine.has_work():
                for req in engine.step():
                    self._done(req)

    def _at(self, t: float, job: Job, call: Call | None) -> None:
        heapq.heappush(self.events, (t, next(self.order), job, call))

    def _arrive(self, job: Job) -> None:
        self.bodies[job.id], self.outputs[job.id], self.finish_s[job.id] = {}, {}, []
        for call in job.calls:
            deps = call.all_deps()
            self.pending_deps[(job.id, call.id)] = len(deps)
            for dep in deps:
                self.dependents.setdefault((job.id, dep), []).append(call)
            if not deps:  # the HTTP replay's call sleeps its gap from the job's start
                self._at(job.arrival_s + call.gap_s, job, call)

    def _issue(self, job: Job, call: Call, ready_s: float) -> None:
        body = self.prompts.body(job, call, self.bodies[job.id], self.outputs[job.id])
        self.bodies[job.id][call.id] = body
        output = tokens_for(self.workload.seed, f"{job.id}/{call.id}/output", call.output_tokens,
                            self.prompts.low, self.prompts.high)
        wf = WorkflowMeta(job.type, job.id, call.agent) if self.tagged else WorkflowMeta()
        self.ready_s[(job.id, call.id)] = ready_s
        self.engine.add_request(self.prompts.prompt(call, body), output, wf, tag=(job, call))

    def _done(self, req: SimRequest) -> None:
        job, call = req.tag
        self.outputs[job.id][call.id] = req.output_ids
        self.calls.append(CallRecord(job.id, call.id, call.agent, self.ready_s.pop((job.id, call.id)),
                                     req.first_token_s, req.finished_s, req.prompt_len, req.produced,
                                     req.cached_tokens))
        self.finish_s[job.id].append(req.finished_s)
        if self.on_call_done:
            self.on_call_done()
        for nxt in self.dependents.pop((job.id, call.id), []):
            key = (job.id, nxt.id)
            self.pending_deps[key] -= 1
            if self.pending_deps[key] == 0:
                self._at(req.finished_s + nxt.gap_s, job, nxt)
        if len(self.finish_s[job.id]) == len(job.calls):
            if self.tagged:  # the application ends its job, as the HTTP replay does
                self.engine.end_job(job.id)
            self.jobs.append(JobRecord(job.id, job.type, job.arrival_s, max(self.finish_s[job.id]), len(job.calls)))
            del self.bodies[job.id], self.outputs[job.id], self.finish_s[job.id]


def sim_server_args(config: str, extra: str) -> ServerArgs:
    """What the real server would run `config` with: its flags, then `extra`, through the
    server's own flag parser."""
    parser = argparse.ArgumentParser(prog=f"config {config!r} with server args {extra!r}", add_help=False)
    ServerArgs.add_cli_args(parser)
    args = ServerArgs.from_cli_args(parser.parse_args(server_flags(config) + shlex.split(extra)))
    args.validate()
    return args


def simulate(config: str, workload: Workload, cost: CostModel, server_args: str = "", tagged: bool = True,
             vocab_size: int = VOCAB_SIZE) -> tuple[SimReplay, SimEngine]:
    """Replays `workload` through a simulated engine configured as `config`; the core's page
    accounting is checked at the end (RuntimeError if broken)."""
    engine = SimEngine(sim_server_args(config, server_args), cost)
    replay = SimReplay(engine, workload, vocab_size, tagged=tagged)
    replay.run()
    engine.check_integrity()
    return replay, engine

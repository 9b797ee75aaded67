"""The real scheduler core and WorkflowTracker, stepped on a virtual clock by a cost model.

Nothing of the model runs: a step's duration comes from the cost model, and its tokens from the
requests themselves (each is added with the output it will produce, as a replay with EOS
ignored knows its lengths in advance). Every decision - order, admission, chunking, prefix
matching, eviction, preemption, predictions - is the core's and the tracker's, called the way
`pythia.managers.engine.Engine` calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pythia import _core
from pythia.server_args import ServerArgs
from pythia.sim.cost_model import CostModel
from pythia.workflow.meta import WorkflowMeta
from pythia.workflow.tracker import WorkflowTracker

# The engine process waits this long before another step when the core held every queued
# request back (engine_process.HELD_POLL_MS); the simulated engine idles the same.
HELD_WAIT_S = 0.005


@dataclass
class SimRequest:
    rid: int
    prompt_len: int
    output_ids: list[int]  # what it will produce, one per sampling step
    wf: WorkflowMeta
    arrival_s: float
    produced: int = 0
    cached_tokens: int = -1  # prefix served by the cache at its first admission
    host_cached_tokens: int = 0  # of it, loaded from the host tier
    first_token_s: float | None = None
    finished_s: float | None = None
    tag: object = None  # the caller's handle (the replay's call)


class SimEngine:
    def __init__(self, args: ServerArgs, cost: CostModel) -> None:
        self.args = args
        self.cost = cost
        self.core = _core.Scheduler(args.scheduler_config(getattr(getattr(cost, "model", None), "kv_bytes_per_token", None)))
        self.tracker = WorkflowTracker(self.core, args.job_idle_timeout_s)
        self.now = 0.0
        self.requests: dict[int, SimRequest] = {}
        self.next_rid = 0
        self.steps = 0
        self.busy_s = 0.0  # virtual time spent computing, not idle
        # The host link (PCIe), one copy at a time: when it is free, and each step's asynchronous
        # copies (backups, loads) with the time they land.
        self.link_free_s = 0.0
        self.copies_in_flight: list[tuple[int, float]] = []
        self.transfer_s = 0.0  # virtual time the link was busy
        # Called with each request as it finishes, before the tracker hears of it: a clairvoyant
        # feed (pythia/sim/true_feed.py) publishes from the tracker's event and must already know.
        self.before_finish: Callable[[SimRequest], None] | None = None

    def has_work(self) -> bool:
        return bool(self.requests)

    def add_request(self, prompt: list[int], output_ids: list[int], wf: WorkflowMeta, tag: object = None
                    ) -> SimRequest:
        """Queues a request at the current virtual time. ValueError (nothing left behind) for
        one the core refuses, e.g. a prompt that can never fit the pool."""
        if not output_ids:
            raise ValueError("a simulated request must produce at least one token")
        tags, hints = self.tracker.on_arrival(wf)
        rid = self.next_rid
        self.next_rid += 1
        try:
            self.core.add_request(rid, np.asarray(prompt, dtype=np.int32), len(output_ids), arrival_time=self.now,
                                  tags=tags, hints=hints)
        except ValueError:
            self.tracker.on_rejected(wf)
            raise
        req = SimRequest(rid, len(prompt), list(output_ids), wf, self.now, tag=tag)
        self.requests[rid] = req
        self.tracker.on_queued(wf, len(prompt), self.now)
        return req

    def step(self) -> list[SimRequest]:
        """One schedule -> (simulated) forward -> update cycle; returns the requests it finished."""
        self.core.set_time(self.now)
        self.tracker.sweep(self.now)
        plan = self.core.schedule()
        num = len(plan)
        offload_s = self._start_copies(plan)
        if num == 0:
            # Work is queued but none could start: waiting for a load, or held (a guard, as in the
            # real engine). The engine polls again shortly, or when the next copy lands.
            target = self.now + offload_s + HELD_WAIT_S
            landing = min((t for _, t in self.copies_in_flight), default=target)
            self.now = max(self.now + offload_s, min(target, landing))
            self.core.update(plan.req_ids, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=bool), self._landed())
            return []
        req_ids, start_pos, num_tokens, samples = plan.req_ids, plan.start_pos, plan.num_tokens, plan.samples
        cached, host_cached = plan.cached_tokens, plan.host_cached_tokens
        # Offloads finish before the forward pass may overwrite their pages.
        duration = offload_s + self.cost.plan_step_s(start_pos, num_tokens)
        self.now += duration
        self.busy_s += duration
        self.steps += 1
        # Python lists, not numpy element reads: this loop runs for every entry of every step.
        tokens, finished, done = [0] * num, [0] * num, []
        requests, now = self.requests, self.now
        states = [requests[r] for r in req_ids.tolist()]
        for i, (req, sample, hit, host_hit) in enumerate(zip(states, samples.tolist(), cached.tolist(),
                                                             host_cached.tolist())):
            if req.cached_tokens < 0:
                req.cached_tokens = hit
                req.host_cached_tokens = host_hit
            if not sample:
                continue
            tokens[i] = req.output_ids[req.produced]
            req.produced += 1
            if req.first_token_s is None:
                req.first_token_s = now
            if req.produced == len(req.output_ids):
                finished[i] = 1
                done.append(req)
        self.core.update(req_ids, np.asarray(tokens, dtype=np.int32), np.asarray(finished, dtype=np.uint8),
                         self._landed())
        for req in done:
            del requests[req.rid]
            req.finished_s = now
            if self.before_finish is not None:
                self.before_finish(req)
            self.tracker.on_finish(req.wf, req.produced, now, now - req.arrival_s)
        return done

    def _start_copies(self, plan) -> float:
        """Puts the plan's page copies on the host link; returns how long the step's forward pass
        waits for its offloads."""
        offloads = plan.offload_pages.shape[0]
        asynchronous = plan.backup_pages.shape[0] + plan.load_pages.shape[0]
        if not offloads and not asynchronous:
            return 0.0
        page = self.args.page_size
        start = max(self.now, self.link_free_s)
        offload_end = start + (self.cost.transfer_s(offloads * page) if offloads else 0.0)
        self.link_free_s = offload_end
        if asynchronous:
            self.link_free_s += self.cost.transfer_s(asynchronous * page)
            self.copies_in_flight.append((int(plan.step), self.link_free_s))
        self.transfer_s += self.link_free_s - start
        return offload_end - self.now if offloads else 0.0

    def _landed(self) -> list[int]:
        """Steps whose asynchronous copies have landed by now."""
        if not self.copies_in_flight:
            return []
        done = [s for s, t in self.copies_in_flight if t <= self.now]
        if done:
            self.copies_in_flight = [(s, t) for s, t in self.copies_in_flight if t > self.now]
        return done

    def end_job(self, job_id: str) -> bool:
        return self.tracker.end_job(job_id, self.now)

    def stats(self) -> dict:
        core = self.core.stats()
        return {"num_preemptions": core.num_preemptions, "num_evicted_pages": core.num_evicted_pages,
                "prompt_tokens": core.prompt_tokens, "cached_prompt_tokens": core.cached_prompt_tokens,
                "host_hit_tokens": core.host_hit_tokens, "pages_offloaded": core.pages_offloaded,
                "pages_backed_up": core.pages_backed_up, "pages_loaded": core.pages_loaded,
                "dropped_pages": core.dropped_pages, "transfer_s": self.transfer_s,
                "steps": self.steps, "busy_s": self.busy_s, "simulated": True, "cost_model": self.cost.name}

    def check_integrity(self) -> None:
        self.core.check_integrity()

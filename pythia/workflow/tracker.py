"""What a request's workflow metadata means to the scheduler core, in one object.

The tracker owns the profiler, the job table (names interned to the core's ids, forgotten jobs'
ids reused, jobs idle past their timeout retired) and the prediction feed. Its methods are the
events of an engine loop: a request arrives, is queued or rejected, finishes; a job ends; time
passes. The engine drives it on the wall clock; the simulator drives the same object on a virtual
clock. It knows nothing of models, devices or the HTTP front.
"""

from __future__ import annotations

from typing import Any

from pythia import _core
from pythia.workflow.feed import PredictionFeed
from pythia.workflow.forecast import retire_after_s
from pythia.workflow.meta import WorkflowMeta
from pythia.workflow.profiler import WorkflowProfiler
from pythia.workflow.tags import TagTable


class WorkflowTracker:
    def __init__(self, core: Any, job_idle_timeout_s: float) -> None:
        """`core` is the replica's `_core.Scheduler` (or anything with its forecast methods)."""
        self.core = core
        self.job_idle_timeout_s = job_idle_timeout_s
        self.profiler = WorkflowProfiler()
        self.tags = TagTable()
        self.feed = PredictionFeed(core, self.profiler, self.tags)
        self.next_sweep_s = 0.0

    @property
    def tag_ids(self) -> dict[str, dict[str, int]]:
        """Interned ids per kind ("type", "job", "agent"): name -> id."""
        return self.tags.ids

    # ---------------------------------------------------------------- request events

    def on_arrival(self, wf: WorkflowMeta) -> tuple[_core.WorkflowTags, _core.RequestHints]:
        """The core's tags and hints for a new request. Interns its names: follow with on_queued
        once the core has taken the request, or on_rejected when it has not. ValueError (nothing
        interned) for a call this server will not track (too many agents in its type)."""
        self.profiler.check_call(wf.type, wf.id, wf.agent)
        hints = _core.RequestHints(predicted_output_tokens=self.feed.predicted_output_tokens(wf.type, wf.agent),
                                   opens_job=self.profiler.opens_job(wf.id))
        tags = _core.WorkflowTags(type=self.tags.intern("type", wf.type), job=self.tags.intern("job", wf.id),
                                  agent=self.tags.intern("agent", wf.agent))
        return tags, hints

    def on_rejected(self, wf: WorkflowMeta) -> None:
        """A request that never reached the core: a first call of its job keeps no id."""
        if wf.id is not None and wf.id not in self.profiler.jobs:
            self.tags.release_job(wf.id)

    def on_queued(self, wf: WorkflowMeta, prompt_tokens: int, now: float) -> None:
        self.profiler.on_request(wf.type, wf.id, wf.agent, prompt_tokens, now)
        self.feed.publish(wf.id, now)

    def on_finish(self, wf: WorkflowMeta, output_tokens: int, now: float, latency_s: float) -> None:
        """A request finished or was aborted, after `latency_s` since its arrival."""
        self.profiler.on_finish(wf.type, wf.id, wf.agent, output_tokens, now, latency_s)
        self.feed.publish(wf.id, now)
        self._forget_if_done(wf.id)

    # ---------------------------------------------------------------- jobs

    def end_job(self, job_id: str, now: float) -> bool:
        """Ends a job (its private context is dead); False for an unknown or already ended one."""
        if not self.profiler.end_job(job_id):
            return False
        self.feed.publish(job_id, now)
        self._forget_if_done(job_id)
        return True

    def sweep(self, now: float) -> None:
        """Ends and forgets jobs idle past retire_after_s (clients that never end their jobs). It
        walks every live job, so it does so at most once a second (or per half timeout)."""
        if now < self.next_sweep_s:
            return
        timeout = self.job_idle_timeout_s
        self.next_sweep_s = now + min(1.0, timeout / 2)
        for job_id in self.profiler.idle_jobs(now, lambda profile, agent: retire_after_s(profile, agent, timeout)):
            self.profiler.end_job(job_id)
            self._forget_if_done(job_id)

    def _forget_if_done(self, job_id: str | None) -> None:
        """An ended job with no call in flight is dropped everywhere (profiler, core, tag ids)."""
        job = self.profiler.jobs.get(job_id) if job_id is not None else None
        if job is None or not job.ended or job.running:
            return
        self.profiler.forget(job_id)
        tag = self.tags.release_job(job_id)
        if tag is not None:
            self.core.forget_job(tag)

    # ---------------------------------------------------------------- registry and views

    def control(self, kind: str, payload: dict[str, Any], now: float) -> tuple[bool, dict[str, Any]]:
        """Registry and profile requests from the workflow routes: (ok, reply payload)."""
        profiler = self.profiler
        if kind == "workflow_register":
            profiler.register(payload["topology"])
            return True, {"type": payload["topology"].type}
        if kind == "workflow_list":
            return True, {"workflows": [{"type": t, "registered": p.topology is not None, "jobs_seen": p.jobs_seen}
                                        for t, p in sorted(profiler.types.items())]}
        if kind == "workflow_get":
            if payload["type"] not in profiler.types:
                return False, {"error": f"unknown workflow type {payload['type']!r}"}
            return True, profiler.describe(payload["type"])
        if kind == "workflow_end_job":
            if not self.end_job(payload["job"], now):
                return False, {"error": f"unknown or already ended job {payload['job']!r}"}
            return True, {"job": payload["job"], "ended": True}
        return False, {"error": f"unknown workflow request {kind}"}

    def stats(self) -> dict[str, int]:
        out = {f"workflow_{kind}s_seen": n for kind, n in self.tags.seen.items()}
        out["workflow_jobs_tracked"] = len(self.tags.ids["job"])  # live jobs; ended ones are forgotten
        return out

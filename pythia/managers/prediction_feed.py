"""Hands the workflow profiler's predictions to the scheduler core, once per request event.

Only what the configured policies read is computed and sent: job work for `pythia` ordering,
job and agent forecasts for the prediction-driven eviction policies, P99 output lengths and job
forecasts (live contexts) for `pythia` admission's working-set gate. With `fcfs`/`lpm` + `lru` + `ratio` nothing is sent at all.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from pythia.workflow.forecast import NEVER, agent_forecasts, gap_distribution, job_forecast
from pythia.workflow.profiler import WorkflowProfiler


class PredictionFeed:
    def __init__(self, core: Any, profiler: WorkflowProfiler, tag: Callable[[str, str | None], int],
                 tag_ids: dict[str, dict[str, int]], schedule_policy: str, eviction_policy: str,
                 admission_policy: str, working_set_gate: bool = False) -> None:
        self.core, self.profiler, self.tag, self.tag_ids = core, profiler, tag, tag_ids
        self.job_work = schedule_policy == "pythia"
        self.p99_output = admission_policy == "pythia"
        # Job forecasts feed the prediction-driven eviction policies and pythia admission's
        # working-set gate (--max-job-hold-s); agent forecasts only the eviction policies.
        self.agent_forecasts = eviction_policy != "lru"
        self.forecasts = self.agent_forecasts or (self.p99_output and working_set_gate)
        self.gap_samples_sent: dict[tuple[str, str], int] = {}  # (type, agent) -> sample count when last sent

    def predicted_output_tokens(self, wf_type: str | None, agent: str | None) -> int:
        """P99 output length for the request's (type, agent), or -1 when not used or not known."""
        if not self.p99_output or wf_type is None or agent is None:
            return -1
        p99 = self.profiler.p99_output_tokens(wf_type, agent)
        return -1 if p99 is None else int(math.ceil(p99))

    def publish(self, job_id: str | None, now: float) -> None:
        if job_id is None or not (self.job_work or self.forecasts):
            return
        f = job_forecast(self.profiler, job_id, now)
        if f is None:
            return
        job = self.tag("job", job_id)
        if self.job_work:
            self.core.set_job_work(job, -1.0 if f.work_tokens is None else f.work_tokens, f.unblocks)
        if not self.forecasts:
            return
        state = self.profiler.jobs[job_id]
        type_id = self.tag_ids["type"].get(state.type, -1)
        gap_agent_id = self._publish_gaps(state.type, type_id, f.gap_agent)
        self.core.set_job_forecast(job, f.next_use_s, f.dead_after_s, f.steps_to_execution, f.pinned_until_s,
                                   f.idle_since_s, type_id, gap_agent_id, f.p_continue, f.context_tokens)
        if state.ended:
            self.core.end_job(job)
        if type_id < 0 or not self.agent_forecasts:
            return  # untyped jobs' shared prefixes are ordinary traffic to the core
        soonest, fewest = NEVER, -1
        for agent, af in agent_forecasts(self.profiler.profile(state.type), now).items():
            agent_id = self.tag_ids["agent"].get(agent, -1)
            if agent_id >= 0:
                self.core.set_agent_forecast(type_id, agent_id, af.next_use_s, af.steps_to_execution)
            soonest = min(soonest, af.next_use_s)
            if af.steps_to_execution >= 0 and (fewest < 0 or af.steps_to_execution < fewest):
                fewest = af.steps_to_execution
        # A prefix shared by several agents of the type is needed by whichever comes first.
        self.core.set_agent_forecast(type_id, -1, soonest, fewest)

    def _publish_gaps(self, wf_type: str, type_id: int, agent: str | None) -> int:
        """Sends the agent's gap distribution when it has new samples; returns the agent's id
        (-1: none, so the core keeps the fixed prediction)."""
        agent_id = self.tag_ids["agent"].get(agent, -1) if agent is not None else -1
        if type_id < 0 or agent_id < 0:
            return -1
        stats = self.profiler.profile(wf_type).agents.get(agent)
        if stats is None:
            return -1
        count = stats.gap_after_s.count
        if self.gap_samples_sent.get((wf_type, agent)) != count:
            points = gap_distribution(stats.gap_after_s)
            if points is None:
                return -1
            self.core.set_gap_distribution(type_id, agent_id, points)
            self.gap_samples_sent[(wf_type, agent)] = count
        return agent_id

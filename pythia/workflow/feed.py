"""Hands the workflow profiler's predictions to the scheduler core, once per request event.

Only what the configured policies read is computed and sent, as the core declares it
(`Scheduler.forecast_needs()`): job work for `pythia` ordering, job and agent forecasts for the
prediction-driven eviction policies, P99 output lengths for `pythia` admission and job forecasts
(live contexts) for its working-set gate. With `fcfs`/`lpm` + `lru` + `ratio` nothing is sent.
"""

from __future__ import annotations

import math
from typing import Any

from pythia import _core
from pythia.workflow.forecast import NEVER, JobForecast, agent_forecasts, gap_distribution, job_forecast
from pythia.workflow.profiler import WorkflowProfiler
from pythia.workflow.tags import TagTable


class PredictionFeed:
    def __init__(self, core: Any, profiler: WorkflowProfiler, tags: TagTable) -> None:
        self.core, self.profiler, self.tags = core, profiler, tags
        self.needs = core.forecast_needs()
        self.gap_samples_sent: dict[tuple[str, str], int] = {}  # (type, agent) -> sample count when last sent

    def predicted_output_tokens(self, wf_type: str | None, agent: str | None) -> int:
        """P99 output length for the request's (type, agent), or -1 when not used or not known."""
        if not self.needs.output_p99 or wf_type is None or agent is None:
            return -1
        p99 = self.profiler.p99_output_tokens(wf_type, agent)
        return -1 if p99 is None else int(math.ceil(p99))

    def publish(self, job_id: str | None, now: float) -> None:
        needs = self.needs
        if job_id is None or not (needs.job_work or needs.job_forecasts):
            return
        f = job_forecast(self.profiler, job_id, now)
        if f is None:
            return
        job = self.tags.intern("job", job_id)
        if needs.job_work:
            self.core.set_job_work(job, -1.0 if f.work_tokens is None else f.work_tokens, f.unblocks)
        if not needs.job_forecasts:
            return
        state = self.profiler.jobs[job_id]
        type_id = self.tags.lookup("type", state.type)
        self.core.set_job_forecast(job, self._core_forecast(f, type_id, self._publish_gaps(state.type, type_id,
                                                                                              f.gap_agent)))
        if state.ended:
            self.core.end_job(job)
        if type_id < 0 or not needs.agent_forecasts:
            return  # untyped jobs' shared prefixes are ordinary traffic to the core
        soonest, fewest = NEVER, -1
        for agent, af in agent_forecasts(self.profiler.profile(state.type), now).items():
            agent_id = self.tags.lookup("agent", agent)
            if agent_id >= 0:
                self.core.set_agent_forecast(type_id, agent_id, _core_agent_forecast(af.next_use_s,
                                                                                     af.steps_to_execution))
            soonest = min(soonest, af.next_use_s)
            if af.steps_to_execution >= 0 and (fewest < 0 or af.steps_to_execution < fewest):
                fewest = af.steps_to_execution
        # A prefix shared by several agents of the type is needed by whichever comes first.
        self.core.set_agent_forecast(type_id, -1, _core_agent_forecast(soonest, fewest))

    @staticmethod
    def _core_forecast(f: JobForecast, type_id: int, gap_agent_id: int) -> _core.JobForecast:
        out = _core.JobForecast()
        out.next_use, out.dead_after, out.steps_to_execution = f.next_use_s, f.dead_after_s, f.steps_to_execution
        out.pinned_until, out.idle_since, out.p_continue = f.pinned_until_s, f.idle_since_s, f.p_continue
        out.gap_type, out.gap_agent, out.context_tokens = type_id, gap_agent_id, f.context_tokens
        return out

    def _publish_gaps(self, wf_type: str, type_id: int, agent: str | None) -> int:
        """Sends the agent's gap distribution when it has new samples; returns the agent's id
        (-1: none, so the core keeps the fixed prediction)."""
        agent_id = self.tags.lookup("agent", agent)
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


def _core_agent_forecast(next_use_s: float, steps_to_execution: int) -> _core.AgentForecast:
    out = _core.AgentForecast()
    out.next_use, out.steps_to_execution = next_use_s, steps_to_execution
    return out

"""Clairvoyant predictions: the workload's true future, sent through the core's forecast interface.

The simulator holds the whole workload, so it can replace the profiler's predictions with what
will actually happen. `TrueFeed` takes the place of `pythia.workflow.feed.PredictionFeed` inside
the real `WorkflowTracker` (which keeps its tags, job table and retirement) and makes the same
calls with the same structs, only the values differ:

- `RequestHints.predicted_output_tokens`: the call's true output length (the P99 in the real feed).
- `set_job_work`: the tokens the job's calls not yet issued will compute (their new prompt tokens,
  i.e. fresh tokens plus the outputs of the other calls they carry, and their outputs), and whether
  finishing its calls in flight lets a waiting call of the job start.
- `set_job_forecast`: the true time of the job's next call (now while a call is queued or running;
  while it waits, the time its next call becomes ready, which is exact once that call's
  dependencies finished: their finish plus the tool gap), dead as soon as no call is left, pinned
  until its next call (Continuum's TTL), its true context; no gap distribution is sent, so the core
  reads that time as it is instead of conditioning a distribution on the wait.
- `set_agent_forecast`: per agent of a type, the soonest next call of that agent over the live
  jobs and the jobs yet to arrive; agent -1, the soonest of the type's agents.

How close the bounds are to the textbook clairvoyant policies, and what is approximated:
- Eviction (`pythia` eviction fed this) is Belady at the granularity the core tags pages with: it
  evicts first what is dead, then what is next used farthest in the future. (1) All pages of a job
  share the job's next use, though its next call may extend only part of its context (a DAG's next
  agent carries its parent's output, not every sibling's); textbook Belady ranks each page by its
  own next use. (2) A shared prefix's next use is exact for calls whose dependencies finished, a
  lower bound otherwise (the dependencies' tool gaps are counted, their compute is not, since it
  depends on the schedule still to come). (3) The radix tree evicts leaves only, so a page can go
  only after the pages that extend it.
- Order (`oracle`: `pythia` ordering, future work at weight 1, no aging, no unblock bonus) is
  shortest remaining job work first, per request at each step, with the request's cached prefix
  counted as work already done; textbook SRPT is preemptive and exact for one queue, while here
  running requests are not preempted for order, KV space can force other choices, and a call's
  later work is counted in tokens, not in time (tool gaps, batching).
- Admission (`pythia` admission) reserves exactly each request's true remaining output, the
  least that never needs a retraction for output growth.
- `pythia-true` keeps Pythia's own knobs (future work at its configured weight, aging, unblock
  bonus), so `pythia` against it is prediction error and it against `oracle` is policy error.

So `oracle` is the best these policies do with perfect information, not a lower bound on mean JCT:
the decisions interact (exact reservation admits more requests at once, which under compute-bound
steps delays them all; token-SRPT ignores cache reuse beyond the cached prefix), and on some
small-pool runs `oracle` is slower than `sglang` (tests/test_sim_oracle.py keeps one such case).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pythia import _core
from pythia.workflow.profiler import WorkflowProfiler
from pythia.workflow.tags import TagTable

if TYPE_CHECKING:  # the replay (pythia/sim/replay.py) is the simulator's one link to benchmarks/
    from benchmarks.workloads.model import Call, Job, Workload

NEVER = math.inf


@dataclass
class _JobState:
    done: dict[str, float] = field(default_factory=dict)  # call -> finish time
    in_flight: set[str] = field(default_factory=set)  # issued, not finished
    ready_at: dict[str, float] = field(default_factory=dict)  # dependencies done, gap running, not issued
    prompt_len: dict[str, int] = field(default_factory=dict)
    context_tokens: int = 0  # the last finished call's prompt plus output


@dataclass(frozen=True)
class JobTruth:
    work_tokens: float  # what the calls not yet issued will compute
    unblocks: bool  # finishing the calls in flight lets a waiting call start
    next_use_s: float  # the next call's (ready) time; now while a call is in flight; NEVER: none left
    steps_to_execution: int  # 0 running, 1 waiting for its next call, -1 none left
    context_tokens: int


class WorkloadFuture:
    """The replay's state as the truth needs it; told of every arrival, issue and finish."""

    def __init__(self, workload: Workload) -> None:
        self.jobs = {j.id: j for j in workload.jobs}
        self.by_id = {j.id: {c.id: c for c in j.calls} for j in workload.jobs}
        self.states: dict[str, _JobState] = {}
        self.live: dict[str, set[str]] = {}  # type -> arrived jobs with calls left
        self.upcoming: dict[str, dict[str, Job]] = {}  # type -> jobs not arrived, in arrival order
        self.agents: dict[str, set[str]] = {}  # type -> its agents
        for job in sorted(workload.jobs, key=lambda j: j.arrival_s):
            self.upcoming.setdefault(job.type, {})[job.id] = job
            self.agents.setdefault(job.type, set()).update(c.agent for c in job.calls)
        self.issuing: Call | None = None  # the call being added to a core right now
        self.bounds: dict[str, dict[str, tuple[list[tuple[float, float]], int]]] = {}  # _agent_bounds' cache

    # ---------------------------------------------------------------- replay events

    def on_arrive(self, job: Job) -> None:
        del self.upcoming[job.type][job.id]
        self.bounds.pop(job.id, None)
        state = self.states[job.id] = _JobState()
        self.live.setdefault(job.type, set()).add(job.id)
        for call in job.calls:
            if not call.all_deps():
                state.ready_at[call.id] = job.arrival_s + call.gap_s

    def on_issue(self, job: Job, call: Call, prompt_len: int) -> None:
        state = self.states[job.id]
        self.bounds.pop(job.id, None)
        state.ready_at.pop(call.id, None)
        state.in_flight.add(call.id)
        state.prompt_len[call.id] = prompt_len
        self.issuing = call

    def on_finish(self, job: Job, call: Call, finished_s: float, produced: int) -> None:
        state = self.states[job.id]
        self.bounds.pop(job.id, None)
        state.in_flight.discard(call.id)
        state.done[call.id] = finished_s
        state.context_tokens = state.prompt_len[call.id] + produced
        for nxt in job.calls:
            deps = nxt.all_deps()
            if call.id in deps and all(d in state.done for d in deps):
                state.ready_at[nxt.id] = max(state.done[d] for d in deps) + nxt.gap_s
        if len(state.done) == len(job.calls):
            self.live[job.type].discard(job.id)

    # ---------------------------------------------------------------- the truth

    def output_tokens(self) -> int:
        return -1 if self.issuing is None else self.issuing.output_tokens

    def job(self, job_id: str) -> JobTruth:
        job, state = self.jobs[job_id], self.states[job_id]
        calls = self.by_id[job_id]
        unissued = [c for c in job.calls if c.id not in state.done and c.id not in state.in_flight]
        work = sum(c.fresh_tokens + sum(calls[a].output_tokens for a in c.also) + c.output_tokens for c in unissued)
        unblocks = bool(state.in_flight) and any(
            c.id not in state.ready_at and all(d in state.done or d in state.in_flight for d in c.all_deps())
            for c in unissued)
        if state.in_flight:
            next_use, steps = -NEVER, 0  # in use now (the caller clamps to its clock)
        elif state.ready_at:
            next_use, steps = min(state.ready_at.values()), 1
        else:
            next_use, steps = NEVER, -1
        return JobTruth(float(work), unblocks, next_use, steps, state.context_tokens)

    def agents_next_use(self, wf_type: str, now: float) -> dict[str, tuple[float, int]]:
        """Per agent of the type: (soonest next call, agent steps until it), over the live jobs
        and the jobs still to arrive; (NEVER, -1) for an agent no job will call again."""
        best: dict[str, tuple[float, int]] = {}

        def visit(job: Job) -> None:
            for agent, (pairs, steps) in self._agent_bounds(job).items():
                t = min(max(a, now + b) for a, b in pairs)
                old = best.get(agent)
                best[agent] = (min(t, old[0]), min(steps, old[1])) if old else (t, steps)

        for job_id in self.live.get(wf_type, ()):
            visit(self.jobs[job_id])
        agents = self.agents.get(wf_type, set())
        for job in self.upcoming.get(wf_type, {}).values():
            # A later job's calls come after its arrival: once every agent has a use sooner than
            # that, no later job changes the answer.
            if len(best) == len(agents) and job.arrival_s >= max(t for t, _ in best.values()):
                break
            visit(job)
        return {a: best.get(a, (NEVER, -1)) for a in agents}

    def _agent_bounds(self, job: Job) -> dict[str, tuple[list[tuple[float, float]], int]]:
        """A lower bound on when each call not done is issued, per agent, and its agent steps away.

        Exact once a call's dependencies finished; otherwise their tool gaps are counted and their
        compute is not (it depends on the schedule to come). At clock `now` a call's bound is
        max(A, now + B): A from known times (finishes, ready times, arrival), B from the gaps after
        calls still running. Per agent only the pairs no other pair beats on both are kept (a
        chain's later calls never beat its earlier ones), with the fewest steps to any call. It
        depends on the job's state alone, so it is cached until an event of the job changes it."""
        cached = self.bounds.get(job.id)
        if cached is not None:
            return cached
        state = self.states.get(job.id) or _JobState()  # a job yet to arrive: nothing done
        per_call: dict[str, tuple[float, float, int]] = {}
        out: dict[str, tuple[list[tuple[float, float]], int]] = {}
        for call in job.calls:  # dependencies come first (Job.check)
            if call.id in state.done:
                continue
            deps = call.all_deps()
            if call.id in state.in_flight:
                a, b, steps = -NEVER, 0.0, 0
            elif call.id in state.ready_at:
                a, b, steps = state.ready_at[call.id], -NEVER, 1
            elif not deps:
                a, b, steps = job.arrival_s + call.gap_s, 0.0, 1
            else:
                a, b, steps = -NEVER, 0.0, 1
                for dep in deps:
                    if dep in state.done:
                        a = max(a, state.done[dep])
                    else:
                        da, db, ds = per_call[dep]
                        a, b, steps = max(a, da), max(b, db), max(steps, ds + 1)
                a, b = a + call.gap_s, b + call.gap_s
            per_call[call.id] = (a, b, steps)
            pairs, fewest = out.get(call.agent, ([], steps))
            if not any(pa <= a and pb <= b for pa, pb in pairs):
                pairs = [(pa, pb) for pa, pb in pairs if not (a <= pa and b <= pb)] + [(a, b)]
            out[call.agent] = (pairs, min(fewest, steps))
        self.bounds[job.id] = out
        return out


class TrueFeed:
    """PredictionFeed's interface (what WorkflowTracker calls), sending `future`'s true values."""

    def __init__(self, core: Any, profiler: WorkflowProfiler, tags: TagTable, future: WorkloadFuture) -> None:
        self.core, self.profiler, self.tags, self.future = core, profiler, tags, future
        self.needs = core.forecast_needs()

    def predicted_output_tokens(self, wf_type: str | None, agent: str | None) -> int:
        """The true output length of the call being added (a request's own length needs no tags)."""
        return self.future.output_tokens() if self.needs.output_p99 else -1

    def publish(self, job_id: str | None, now: float) -> None:
        needs = self.needs
        if job_id is None or not (needs.job_work or needs.job_forecasts) or job_id not in self.profiler.jobs:
            return
        job = self.tags.intern("job", job_id)
        state = self.profiler.jobs[job_id]
        truth = self.future.job(job_id)
        if state.ended:  # as the real feed: nothing left to do, dead from now on
            truth = JobTruth(0.0, False, NEVER, -1, truth.context_tokens)
        if needs.job_work:
            self.core.set_job_work(job, truth.work_tokens, truth.unblocks)
        if not needs.job_forecasts:
            return
        type_id = self.tags.lookup("type", state.type)
        self.core.set_job_forecast(job, _core_job_forecast(truth, type_id, now))
        if state.ended:
            self.core.end_job(job)
        if type_id < 0 or not needs.agent_forecasts:
            return
        soonest, fewest = NEVER, -1
        for agent, (next_use, steps) in self.future.agents_next_use(state.type, now).items():
            agent_id = self.tags.lookup("agent", agent)
            if agent_id >= 0:
                self.core.set_agent_forecast(type_id, agent_id, _core_agent_forecast(next_use, steps))
            soonest = min(soonest, next_use)
            if steps >= 0 and (fewest < 0 or steps < fewest):
                fewest = steps
        self.core.set_agent_forecast(type_id, -1, _core_agent_forecast(soonest, fewest))


def _core_job_forecast(truth: JobTruth, type_id: int, now: float) -> _core.JobForecast:
    out = _core.JobForecast()
    next_use = max(truth.next_use_s, now)
    left = truth.next_use_s != NEVER
    out.next_use, out.steps_to_execution = next_use, truth.steps_to_execution
    out.dead_after = NEVER if left else now  # the core calls it dead once its clock passes this
    out.pinned_until = next_use if left else -NEVER
    out.idle_since, out.gap_type, out.gap_agent = NEVER, type_id, -1  # no distribution: the time as it is
    out.p_continue = 1.0 if left else 0.0
    out.context_tokens = truth.context_tokens
    return out


def _core_agent_forecast(next_use_s: float, steps_to_execution: int) -> _core.AgentForecast:
    out = _core.AgentForecast()
    out.next_use, out.steps_to_execution = next_use_s, steps_to_execution
    return out

"""Turns the profiler's statistics into the predictions the core's policies read (ARCHITECTURE.md §2).

Computed once per request event for the job concerned and for its type's agents; the agent part
costs O(agents²) from the type's census of job states, never O(jobs), and nothing runs per token.
Times are seconds on the engine's clock (the one passed to `Scheduler.set_time`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from pythia.workflow.profiler import END, START, Samples, TypeProfile, WorkflowProfiler

NEVER = math.inf
MIN_GAP_SAMPLES = 20  # a P99 from fewer samples is too noisy to declare a job dead on
# A job is dead once idle for DEAD_GAP_FACTOR x its P99 gap, and at least DEAD_GAP_FLOOR_S: gaps are
# measured at the server and include client-side jitter under load, and calling a live job dead
# costs a re-prefill of its whole context, while keeping a dead one a little longer costs only space.
DEAD_GAP_FACTOR = 2.0
DEAD_GAP_FLOOR_S = 1.0
MIN_TTL_SAMPLES = 5
MIN_GAP_DISTRIBUTION_SAMPLES = 5  # fewer: the core uses the fixed "last call + mean gap" prediction
GAP_DISTRIBUTION_POINTS = 32  # quantiles sent to the core, which conditions them on the wait so far
_GAP_QUANTILES = (np.arange(GAP_DISTRIBUTION_POINTS) + 0.5) / GAP_DISTRIBUTION_POINTS
TTL_QUANTILE = 0.9  # Continuum: pin through most tool calls, not through the tail
EDGE_MIN_PROB = 0.01  # transitions rarer than this do not count as a path


@dataclass(frozen=True)
class JobForecast:
    work_tokens: float | None  # expected tokens still to compute (None: nothing known yet)
    unblocks: bool  # finishing the job's calls in flight lets its next agent start
    next_use_s: float  # predicted time of the job's next call
    dead_after_s: float  # no call by then: the job is dead
    steps_to_execution: int  # agent steps until the job runs again; -1: never
    pinned_until_s: float  # Continuum TTL
    # While the job waits between calls: since when, after which agent's call, and how likely it
    # is to call again; the core then predicts next use from that agent's gap distribution
    # given the wait so far (gap_distribution). idle_since_s is NEVER while a call runs.
    idle_since_s: float = NEVER
    gap_agent: str | None = None
    p_continue: float = 1.0
    context_tokens: int = 0  # the job's context: its last prompt plus output (the admission gate)


@dataclass(frozen=True)
class AgentForecast:
    next_use_s: float
    steps_to_execution: int  # -1: no live job is expected to reach the agent


def job_forecast(profiler: WorkflowProfiler, job_id: str, now: float) -> JobForecast | None:
    job = profiler.jobs.get(job_id)
    if job is None:
        return None
    work = profiler.remaining_work_tokens(job_id)
    if job.ended:
        return JobForecast(0.0, False, NEVER, now, -1, -NEVER)
    profile = profiler.profile(job.type)
    remaining = profile.expected_remaining_calls(job.last_agent)
    if job.running > 0:
        return JobForecast(work, job.running == 1 and remaining > 0, now, NEVER, 0, -NEVER,
                           context_tokens=job.context_tokens)
    p_continue = 1.0 - profile.transition_probs().get(job.last_agent, {}).get(END, 0.0)
    stats = profile.agents.get(job.last_agent)
    gaps = stats.gap_after_s if stats else None
    gap = gaps.mean() if gaps and gaps.values else _type_mean_gap(profile)
    if p_continue < EDGE_MIN_PROB:
        next_use, steps = NEVER, -1
    else:
        # The expected wait for a call that comes with probability p_continue.
        next_use, steps = now + gap / max(p_continue, 0.05), 1
    dead_gap = _dead_gap_s(gaps)
    dead_after = NEVER if dead_gap is None else now + dead_gap
    pinned = -NEVER
    if gaps and len(gaps.values) >= MIN_TTL_SAMPLES and p_continue > 0.5:
        pinned = now + gaps.quantile(TTL_QUANTILE)
    idle_since = job.last_finish_s if job.last_finish_s is not None else NEVER
    return JobForecast(work, False, next_use, dead_after, steps, pinned, idle_since, job.last_agent, p_continue,
                       job.context_tokens)


def retire_after_s(profile: TypeProfile, agent: str, minimum_s: float) -> float:
    """How long a job may wait after `agent`'s call before the server ends and forgets it (for
    clients that never end their jobs): past the point where its context counts as dead, and at
    least `minimum_s`; a job that comes back later only restarts as a new job."""
    stats = profile.agents.get(agent)
    dead_gap = _dead_gap_s(stats.gap_after_s if stats else None)
    return minimum_s if dead_gap is None else max(minimum_s, dead_gap)


def _dead_gap_s(gaps: Samples | None) -> float | None:
    """Idle time after which a job's context counts as dead: DEAD_GAP_FACTOR x the P99 gap, at least
    DEAD_GAP_FLOOR_S; None while too few gaps were seen to say."""
    if gaps is None or len(gaps.values) < MIN_GAP_SAMPLES:
        return None
    return max(DEAD_GAP_FACTOR * gaps.quantile(0.99), DEAD_GAP_FLOOR_S)


def gap_distribution(gaps: Samples) -> list[float] | None:
    """Equally likely points of an agent's gap samples (their quantiles), or None while there are
    too few samples to say more than the mean."""
    if len(gaps.values) < MIN_GAP_DISTRIBUTION_SAMPLES:
        return None
    values = gaps.sorted()
    if len(values) <= GAP_DISTRIBUTION_POINTS:
        return values.tolist()
    # numpy's linear quantile method, by interpolation between order statistics.
    return np.interp(_GAP_QUANTILES * (len(values) - 1), np.arange(len(values)), values).tolist()


def agent_forecasts(profile: TypeProfile, now: float) -> dict[str, AgentForecast]:
    """Per agent of the type: how many agent steps until some job runs it, and when. Live jobs
    reach an agent through the automaton; entry agents are also reached by the next job to arrive."""
    probs = profile.transition_probs()
    graph = {a: [b for b, p in row.items() if p >= EDGE_MIN_PROB and b != END] for a, row in probs.items()}
    agents = [a for a in profile.agents if a != START]
    step_s = _type_step_s(profile)
    arrival = next_job_arrival(profile, now)
    steps: dict[str, int] = {}
    times: dict[str, float] = {}

    def reach(distances: dict[str, int], start_s: float, first_step: int) -> None:
        for target, d in distances.items():
            steps[target] = min(steps.get(target, d), d)
            times[target] = min(times.get(target, NEVER), start_s + (d - first_step) * step_s)

    for (agent, in_flight), count in profile.census.items():
        if count > 0:
            distances = _distances(graph, agent)
            if in_flight:
                distances[agent] = 0  # the job is running that agent now
            reach(distances, now, 0)
    if arrival != NEVER:
        reach(_distances(graph, START), arrival, 1)  # the next job's first call is at its arrival
    return {a: AgentForecast(times.get(a, NEVER), steps.get(a, -1)) for a in agents}


def next_job_arrival(profile: TypeProfile, now: float) -> float:
    """When the type's next job is expected to start: the mean interarrival after the last start,
    NEVER once the wait has outlasted the P99 interarrival (the workflow has gone quiet)."""
    if profile.last_job_start_s is None:
        return NEVER
    gaps = profile.job_interarrival_s
    if not gaps.values:
        return now
    if len(gaps.values) >= MIN_GAP_SAMPLES and now - profile.last_job_start_s > gaps.quantile(0.99):
        return NEVER
    return max(now, profile.last_job_start_s + gaps.mean())


def _distances(graph: dict[str, list[str]], src: str) -> dict[str, int]:
    """Fewest transitions (at least one) from src to every state it reaches."""
    dist: dict[str, int] = {}
    frontier = deque((nxt, 1) for nxt in graph.get(src, ()))
    while frontier:
        node, d = frontier.popleft()
        if node not in dist:
            dist[node] = d
            frontier.extend((nxt, d + 1) for nxt in graph.get(node, ()) if nxt not in dist)
    return dist


def _type_mean_gap(profile: TypeProfile) -> float:
    gaps = [a.gap_after_s.mean() for a in profile.agents.values() if a.gap_after_s.values]
    return sum(gaps) / len(gaps) if gaps else 0.0


def _type_step_s(profile: TypeProfile) -> float:
    """Mean time from one agent step of a job to the next: a call plus the gap after it."""
    lat = [a.latency_s.mean() for a in profile.agents.values() if a.latency_s.values]
    return (sum(lat) / len(lat) if lat else 0.0) + _type_mean_gap(profile)

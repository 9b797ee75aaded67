"""Learns each workflow type's shape online from the requests' metadata (ARCHITECTURE.md §2).

Per type: a probabilistic automaton over agent roles (transition counts, seeded with one
pseudo-count per registered edge), and per (type, agent): output length, prompt growth and the
gap before the job's next call. Updates are O(1) per request event; statistics that need
sorting (quantiles) are computed from bounded samples only when asked.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from pythia.workflow.registry import MAX_AGENTS_PER_TYPE, Topology

START, END = "<start>", "<end>"
SAMPLES_KEPT = 1024  # per statistic: recent history, so the profile follows drift
# Remaining-call predictions shrink each agent's probability of ending the job toward the type's
# overall rate with this many pseudo-observations: an agent seen to loop 300 times without an end
# yet is not predicted to loop forever, and agents of one loop do not differ by sampling noise alone.
END_PRIOR_WEIGHT = 20.0
MIN_ENDED_JOBS = 5  # ended jobs needed before their lengths predict a live job's remaining calls
# The automaton is re-derived (a linear solve) when an edge is new or the transition count has grown
# by this fraction since the last derivation, not on every request: a probability is then stale by
# at most about this much, and a type seen a million times is derived hundreds of times, not a
# million (the simulator spent a fifth of its time here at 500 sessions).
REDERIVE_GROWTH = 0.02


class Samples:
    """The last SAMPLES_KEPT values of a statistic. Read on every request event, so the mean is a
    running sum (O(1)) and quantiles read a sorted copy made once per new sample."""

    def __init__(self) -> None:
        self.values: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self.count = 0
        self._sum = 0.0
        self._sorted: np.ndarray | None = None
        self._suffix: np.ndarray | None = None
        self._sorted_count = -1

    def add(self, value: float) -> None:
        if len(self.values) == SAMPLES_KEPT:
            self._sum -= self.values[0]
        self.values.append(value)
        self.count += 1
        if self.count % SAMPLES_KEPT == 0:
            self._sum = math.fsum(self.values)  # no drift from adding and removing
        else:
            self._sum += value

    def quantile(self, q: float, default: float | None = None) -> float | None:
        """Linear interpolation between order statistics (numpy's default method)."""
        if not self.values:
            return default
        values = self.sorted()
        pos = q * (len(values) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(values) - 1)
        return float(values[lo] + (values[hi] - values[lo]) * (pos - lo))

    def mean(self, default: float | None = None) -> float | None:
        return self._sum / len(self.values) if self.values else default

    def sorted(self) -> np.ndarray:
        """The kept values in ascending order (cached until a value is added)."""
        if self._sorted_count != self.count:
            self._sorted = np.sort(np.fromiter(self.values, float, len(self.values)))
            self._suffix = None
            self._sorted_count = self.count
        return self._sorted

    def mean_excess(self, x: float) -> float | None:
        """E[V - x | V > x] over the samples: what is left of a quantity already at x
        (None when no sample exceeds x)."""
        values = self.sorted()
        if self._suffix is None:
            self._suffix = np.cumsum(values[::-1])[::-1]
        i = int(np.searchsorted(values, x, side="right"))
        if i >= len(values):
            return None
        return float(self._suffix[i]) / (len(values) - i) - x


@dataclass
class AgentProfile:
    calls: int = 0
    output_tokens: Samples = field(default_factory=Samples)
    prompt_growth: Samples = field(default_factory=Samples)  # prompt tokens beyond the job's previous prompt
    gap_after_s: Samples = field(default_factory=Samples)  # this agent finishing -> the job's next call
    latency_s: Samples = field(default_factory=Samples)  # arrival -> finish of one call


@dataclass
class JobState:
    type: str
    last_agent: str = START
    last_prompt_tokens: int = 0
    context_tokens: int = 0  # the last prompt, plus its output once finished
    last_finish_s: float | None = None
    calls: int = 0
    running: int = 0
    ended: bool = False


class TypeProfile:
    def __init__(self, name: str) -> None:
        self.name = name
        self.topology: Topology | None = None
        self.counts: dict[str, Counter[str]] = {}
        self.prior: dict[str, Counter[str]] = {}
        self.agents: dict[str, AgentProfile] = {}
        self.jobs_seen = 0
        # Live jobs by state (last agent, a call in flight): what the agent forecasts are computed
        # from, in time independent of the number of jobs.
        self.census: Counter[tuple[str, bool]] = Counter()
        self._derived: tuple[dict[str, dict[str, float]], dict[str, float]] | None = None
        self._observed = 0  # transitions counted so far
        self._derived_at = 0  # ... when the automaton was last derived
        self.last_job_start_s: float | None = None
        self.job_interarrival_s = Samples()  # between the first calls of consecutive jobs
        self.job_calls = Samples()  # calls made by each ended job

    def seed(self, topology: Topology) -> None:
        """One pseudo-count per registered edge; entry agents follow START, exit agents lead to END."""
        self.topology = topology
        self._derived = None
        self.prior = {a.name: Counter() for a in topology.agents}
        self.prior[START] = Counter()
        has_in = {e.dst for e in topology.edges}
        for e in topology.edges:
            self.prior[e.src][e.dst] += 1
        for a in topology.agents:
            if a.name not in has_in:
                self.prior[START][a.name] += 1
            if not self.prior[a.name]:
                self.prior[a.name][END] += 1
            self.agents.setdefault(a.name, AgentProfile())
            if a.output_tokens is not None:
                self.agents[a.name].output_tokens.add(a.output_tokens)

    def observe(self, src: str, dst: str) -> None:
        row = self.counts.setdefault(src, Counter())
        new_edge = row[dst] == 0 and not self.prior.get(src, {}).get(dst)
        row[dst] += 1
        self._observed += 1
        if new_edge or self._observed >= self._derived_at * (1.0 + REDERIVE_GROWTH):
            self._derived = None

    def transition_probs(self) -> dict[str, dict[str, float]]:
        return self._derive()[0]

    def _derive(self) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """Transition probabilities and expected remaining calls per state, recomputed only after a
        new edge or REDERIVE_GROWTH more observations: one event reads them several times."""
        if self._derived is None:
            self._derived_at = self._observed
            probs = self._transition_probs()
            self._derived = (probs, self._remaining_calls(self._shrink_ends(probs)))
        return self._derived

    def _transition_probs(self) -> dict[str, dict[str, float]]:
        out = {}
        for src in set(self.counts) | set(self.prior):
            merged = Counter(self.prior.get(src, {})) + Counter(self.counts.get(src, {}))
            total = sum(merged.values())
            if total:
                out[src] = {dst: n / total for dst, n in sorted(merged.items())}
        return out

    def expected_remaining_calls(self, after: str) -> float:
        """Expected number of calls still to come once `after` has run."""
        return self._derive()[1].get(after, 0.0)

    def _shrink_ends(self, probs: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Each agent's END probability pulled toward the type's END rate (END_PRIOR_WEIGHT
        pseudo-observations), the rest of its row scaled to match. Unchanged for a registered
        topology, whose exits say which agents can end a job, and while no job of the type has
        ended (the remaining calls are then unknown: infinite)."""
        if self.topology is not None:
            return probs
        totals = {src: sum(self.prior.get(src, {}).values()) + sum(self.counts.get(src, {}).values())
                  for src in probs if src != START}
        observed = sum(totals.values())
        rate = sum(probs[src].get(END, 0.0) * n for src, n in totals.items()) / observed if observed else 0.0
        if rate <= 0.0:
            return probs
        out = dict(probs)
        for src, n in totals.items():
            row = probs[src]
            p_end = row.get(END, 0.0)
            if p_end >= 1.0:
                continue  # nothing but END was seen: there is no other transition to scale
            shrunk = (p_end * n + END_PRIOR_WEIGHT * rate) / (n + END_PRIOR_WEIGHT)
            scale = (1.0 - shrunk) / (1.0 - p_end)
            out[src] = {dst: (shrunk if dst == END else p * scale) for dst, p in row.items()}
            out[src][END] = shrunk
        return out

    @staticmethod
    def _remaining_calls(probs: dict[str, dict[str, float]]) -> dict[str, float]:
        """Absorbing Markov chain: n = (I - Q)^-1 1 over the non-terminal states."""
        states = [s for s in probs if s != END]
        index = {s: i for i, s in enumerate(states)}
        q = np.zeros((len(states), len(states)))
        for s, row in probs.items():
            for d, p in row.items():
                if d in index:
                    q[index[s], index[d]] = p
        try:
            visits = np.linalg.solve(np.eye(len(states)) - q, np.ones(len(states)))
        except np.linalg.LinAlgError:
            return {s: float("inf") for s in states}
        # visits counts the state itself (already run, or the START pseudo-state) plus what follows.
        return {s: max(0.0, float(visits[i]) - 1.0) for s, i in index.items()}


class WorkflowProfiler:
    def __init__(self) -> None:
        self.types: dict[str, TypeProfile] = {}
        self.jobs: dict[str, JobState] = {}

    def profile(self, wf_type: str) -> TypeProfile:
        if wf_type not in self.types:
            self.types[wf_type] = TypeProfile(wf_type)
        return self.types[wf_type]

    def register(self, topology: Topology) -> None:
        self.profile(topology.type).seed(topology)

    def _move(self, job: JobState, agent: str | None = None, running_delta: int = 0, ended: bool = False) -> None:
        """Changes a job's state, keeping its type's census in step."""
        census = self.profile(job.type).census
        if not job.ended and job.last_agent != START:
            census[(job.last_agent, job.running > 0)] -= 1
            if census[(job.last_agent, job.running > 0)] <= 0:
                del census[(job.last_agent, job.running > 0)]
        if agent is not None:
            job.last_agent = agent
        job.running = max(0, job.running + running_delta)
        job.ended = job.ended or ended
        if not job.ended and job.last_agent != START:
            census[(job.last_agent, job.running > 0)] += 1

    def check_call(self, wf_type: str | None, job_id: str | None, agent: str | None) -> None:
        """Raises ValueError when a call would give its type more than MAX_AGENTS_PER_TYPE agents."""
        if job_id is None:
            return
        job = self.jobs.get(job_id)
        # A live job's finishes are recorded under the type it started with, whatever a later call names.
        names = {wf_type or "untyped"} | ({job.type} if job is not None and not job.ended else set())
        for name in names:
            profile = self.types.get(name)
            if profile is not None and (agent or "unnamed") not in profile.agents \
                    and len(profile.agents) >= MAX_AGENTS_PER_TYPE:
                raise ValueError(f"workflow type {name!r} already has {len(profile.agents)} agents; at most "
                                 f"{MAX_AGENTS_PER_TYPE} are served")

    def on_request(self, wf_type: str | None, job_id: str | None, agent: str | None, prompt_tokens: int,
                   now: float) -> None:
        if job_id is None:
            return
        wf_type = wf_type or "untyped"
        agent = agent or "unnamed"
        profile = self.profile(wf_type)
        job = self.jobs.get(job_id)
        if job is None or job.ended:
            job = self.jobs[job_id] = JobState(wf_type)
            profile.jobs_seen += 1
            if profile.last_job_start_s is not None:
                profile.job_interarrival_s.add(max(0.0, now - profile.last_job_start_s))
            profile.last_job_start_s = now
        prev = profile.agents.setdefault(job.last_agent, AgentProfile()) if job.last_agent != START else None
        if prev is not None and job.last_finish_s is not None and job.running == 0:
            prev.gap_after_s.add(max(0.0, now - job.last_finish_s))
        profile.observe(job.last_agent, agent)
        stats = profile.agents.setdefault(agent, AgentProfile())
        stats.calls += 1
        stats.prompt_growth.add(max(0, prompt_tokens - job.last_prompt_tokens))
        job.last_prompt_tokens = job.context_tokens = prompt_tokens
        job.calls += 1
        self._move(job, agent, +1)

    def on_finish(self, wf_type: str | None, job_id: str | None, agent: str | None, output_tokens: int,
                  now: float, latency_s: float | None = None) -> None:
        if job_id is None or job_id not in self.jobs:
            return
        job = self.jobs[job_id]
        stats = self.profile(job.type).agents.setdefault(agent or "unnamed", AgentProfile())
        stats.output_tokens.add(output_tokens)
        if latency_s is not None:
            stats.latency_s.add(latency_s)
        self._move(job, running_delta=-1)
        job.last_finish_s = now
        job.context_tokens = job.last_prompt_tokens + output_tokens

    def end_job(self, job_id: str) -> bool:
        """The job's context is dead from now on; returns False for an unknown job."""
        job = self.jobs.get(job_id)
        if job is None or job.ended:
            return False
        profile = self.profile(job.type)
        profile.observe(job.last_agent, END)
        profile.job_calls.add(job.calls)
        self._move(job, ended=True)
        return True

    def opens_job(self, job_id: str | None) -> bool:
        """Whether a request of `job_id` would be its job's first call."""
        if job_id is None:
            return False
        job = self.jobs.get(job_id)
        return job is None or job.ended

    def forget(self, job_id: str) -> None:
        """Drops an ended job with no call in flight, so that a long-running server keeps nothing
        per finished job; a later request with the same id starts a new job."""
        job = self.jobs.get(job_id)
        if job is None:
            return
        if not job.ended or job.running:
            raise ValueError(f"job {job_id!r} is still live: only an ended job with no call in flight is forgotten")
        del self.jobs[job_id]

    def idle_jobs(self, now: float, idle_limit_s) -> list[str]:
        """Live jobs with no call in flight whose last call finished more than
        idle_limit_s(type profile, last agent) seconds ago. O(jobs)."""
        return [job_id for job_id, job in self.jobs.items()
                if not job.ended and job.running == 0 and job.last_finish_s is not None
                and now - job.last_finish_s > idle_limit_s(self.profile(job.type), job.last_agent)]

    # ------------------------------------------------------------------ predictions

    def remaining_calls(self, job_id: str) -> float:
        """Expected calls the job still makes after those already sent. A registered topology says
        where jobs end: the automaton answers from the job's last agent. Otherwise, once
        MIN_ENDED_JOBS jobs have ended, their lengths answer given how many calls this one has made
        (E[L - k | L >= k]): for a loop whose agents all look alike, the automaton's per-agent
        estimates of a rare END differ by sampling noise alone, while the job's age is a fact."""
        job = self.jobs.get(job_id)
        if job is None or job.ended:
            return 0.0
        profile = self.profile(job.type)
        if profile.topology is None and len(profile.job_calls.values) >= MIN_ENDED_JOBS:
            excess = profile.job_calls.mean_excess(job.calls - 0.5)  # over lengths >= job.calls
            if excess is not None:
                return excess - 0.5
        return profile.expected_remaining_calls(job.last_agent)

    def remaining_work_tokens(self, job_id: str) -> float | None:
        """Expected tokens still to be computed for the job: its expected remaining calls times the
        type's mean call size (prompt growth + output); None before anything is known."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        if job.ended:
            return 0.0
        profile = self.profile(job.type)
        sizes = [a.prompt_growth.mean(0.0) + a.output_tokens.mean(0.0) for a in profile.agents.values()
                 if a.prompt_growth.values or a.output_tokens.values]
        if not sizes:
            return None
        remaining = self.remaining_calls(job_id)
        if not math.isfinite(remaining):
            return None  # no job of the type has ended yet: its length is unknown
        return remaining * sum(sizes) / len(sizes)

    def p99_output_tokens(self, wf_type: str, agent: str) -> float | None:
        stats = self.types.get(wf_type)
        return stats.agents[agent].output_tokens.quantile(0.99) if stats and agent in stats.agents else None

    def describe(self, wf_type: str) -> dict:
        profile = self.types[wf_type]
        agents = {}
        for name, a in sorted(profile.agents.items()):
            agents[name] = {
                "calls": a.calls,
                "output_tokens": {"mean": a.output_tokens.mean(), "p99": a.output_tokens.quantile(0.99)},
                "prompt_growth_tokens": {"mean": a.prompt_growth.mean()},
                "gap_after_s": {"median": a.gap_after_s.quantile(0.5), "p99": a.gap_after_s.quantile(0.99)},
                "latency_s": {"mean": a.latency_s.mean()},
                "expected_calls_after": _finite_or_none(profile.expected_remaining_calls(name)),
            }
        live = sum(1 for j in self.jobs.values() if j.type == wf_type and not j.ended)
        return {"type": wf_type, "registered": profile.topology.to_json() if profile.topology else None,
                "jobs_seen": profile.jobs_seen, "live_jobs": live,
                "transitions": profile.transition_probs(),
                "transition_counts": {s: dict(c) for s, c in profile.counts.items()},
                "expected_calls_per_job": _finite_or_none(profile.expected_remaining_calls(START)),
                "agents": agents}


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no infinity

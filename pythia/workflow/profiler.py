"""Learns each workflow type's shape online from the requests' metadata (ARCHITECTURE.md §2).

Per type: a probabilistic automaton over agent roles (transition counts, seeded with one
pseudo-count per registered edge), and per (type, agent): output length, prompt growth and the
gap before the job's next call. Updates are O(1) per request event; statistics that need
sorting (quantiles) are computed from bounded samples only when asked.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from pythia.workflow.registry import Topology

START, END = "<start>", "<end>"
SAMPLES_KEPT = 1024  # per statistic: recent history, so the profile follows drift


class Samples:
    def __init__(self) -> None:
        self.values: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self.count = 0

    def add(self, value: float) -> None:
        self.values.append(value)
        self.count += 1

    def quantile(self, q: float, default: float | None = None) -> float | None:
        return float(np.quantile(self.values, q)) if self.values else default

    def mean(self, default: float | None = None) -> float | None:
        return float(np.mean(self.values)) if self.values else default


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
        self.last_job_start_s: float | None = None
        self.job_interarrival_s = Samples()  # between the first calls of consecutive jobs

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
        self.counts.setdefault(src, Counter())[dst] += 1
        self._derived = None

    def transition_probs(self) -> dict[str, dict[str, float]]:
        return self._derive()[0]

    def _derive(self) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """Transition probabilities and expected remaining calls per state, recomputed only after the
        counts change: one event reads them several times."""
        if self._derived is None:
            probs = self._transition_probs()
            self._derived = (probs, self._remaining_calls(probs))
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
        job.last_prompt_tokens = prompt_tokens
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

    def end_job(self, job_id: str) -> bool:
        """The job's context is dead from now on; returns False for an unknown job."""
        job = self.jobs.get(job_id)
        if job is None or job.ended:
            return False
        self.profile(job.type).observe(job.last_agent, END)
        self._move(job, ended=True)
        return True

    # ------------------------------------------------------------------ predictions

    def remaining_calls(self, job_id: str) -> float:
        job = self.jobs.get(job_id)
        if job is None or job.ended:
            return 0.0
        return self.profile(job.type).expected_remaining_calls(job.last_agent)

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
        return profile.expected_remaining_calls(job.last_agent) * float(np.mean(sizes))

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
                "expected_calls_after": profile.expected_remaining_calls(name),
            }
        live = sum(1 for j in self.jobs.values() if j.type == wf_type and not j.ended)
        return {"type": wf_type, "registered": profile.topology.to_json() if profile.topology else None,
                "jobs_seen": profile.jobs_seen, "live_jobs": live,
                "transitions": profile.transition_probs(),
                "transition_counts": {s: dict(c) for s, c in profile.counts.items()},
                "expected_calls_per_job": profile.expected_remaining_calls(START), "agents": agents}

"""Workloads 2-4 (WORKLOADS.md): MetaGPT-like DAG, PEER chain, and the long-context mix."""

from __future__ import annotations

import numpy as np

from benchmarks.workloads.coding_agent import coding_agent
from benchmarks.workloads.model import SCALES, Call, Job, Workload, bursty_arrivals, lognormal

DAG_AGENTS = {"planner": 2500, "architect": 3000, "engineer": 3500, "reviewer": 2500, "verifier": 2000}
PEER_AGENTS = {"planner": 4000, "executor": 4000, "expresser": 3500, "reviewer": 3500}
HANDOFF_S = 0.2  # median time between one agent finishing and the next starting


def _dag_job(rng: np.random.Generator, job_id: str, arrival: float, sc, loop_p: float) -> Job:
    handoff = lambda: round(lognormal(rng, HANDOFF_S, 0.5) * sc.gap_factor, 4)  # noqa: E731
    out = lambda median: sc.tokens(lognormal(rng, median, 0.4))  # noqa: E731
    calls = [Call("plan", "planner", out(300), fresh_tokens=sc.tokens(lognormal(rng, 300, 0.5))),
             Call("design", "architect", out(500), parent="plan", gap_s=handoff())]
    engineers = [f"code{i}" for i in range(int(rng.integers(2, 5)))]
    for e in engineers:
        calls.append(Call(e, "engineer", out(400), fresh_tokens=sc.tokens(50), parent="design", gap_s=handoff()))
    calls.append(Call("review0", "reviewer", out(200), parent="design", also=engineers, gap_s=handoff()))
    last = "review0"
    for r in range(1, 3):  # the reviewer sends work back with probability loop_p, at most twice
        if rng.random() >= loop_p:
            break
        calls.append(Call(f"fix{r}", "engineer", out(300), parent=last, gap_s=handoff()))
        calls.append(Call(f"review{r}", "reviewer", out(200), parent=f"fix{r}", gap_s=handoff()))
        last = f"review{r}"
    calls.append(Call("verify", "verifier", out(100), parent=last, gap_s=handoff()))
    return Job(id=job_id, type="multi-agent-dag", arrival_s=arrival, calls=calls)


def multi_agent_dag(scale: str = "cpu", seed: int = 0, num_jobs: int = 20, rate: float = 0.15,
                    loop_p: float = 0.4) -> Workload:
    sc = SCALES[scale]
    rng = np.random.default_rng(seed)
    arrivals = bursty_arrivals(np.random.default_rng(seed + 1), num_jobs, rate)
    jobs = [_dag_job(rng, f"job-{i}", round(t, 4), sc, loop_p) for i, t in enumerate(arrivals)]
    return Workload(name="multi-agent-dag", scale=scale, seed=seed, jobs=jobs,
                    agents={k: sc.tokens(v) for k, v in DAG_AGENTS.items()})


def peer(scale: str = "cpu", seed: int = 0, num_jobs: int = 40, rate: float = 0.4) -> Workload:
    """Planner -> executor -> expresser -> reviewer, sequential, with large per-agent prompts and
    many concurrent jobs (the shape of KVFlow's evaluation)."""
    sc = SCALES[scale]
    rng = np.random.default_rng(seed)
    arrivals = bursty_arrivals(np.random.default_rng(seed + 1), num_jobs, rate)
    jobs = []
    for i, t in enumerate(arrivals):
        calls, prev = [], None
        for agent, out in (("planner", 200), ("executor", 300), ("expresser", 250), ("reviewer", 100)):
            fresh = sc.tokens(lognormal(rng, 250, 0.5)) if prev is None else 0
            gap = 0.0 if prev is None else round(lognormal(rng, HANDOFF_S, 0.5) * sc.gap_factor, 4)
            calls.append(Call(agent, agent, sc.tokens(lognormal(rng, out, 0.4)), fresh_tokens=fresh, parent=prev,
                              gap_s=gap))
            prev = agent
        jobs.append(Job(id=f"job-{i}", type="peer", arrival_s=round(t, 4), calls=calls))
    return Workload(name="peer", scale=scale, seed=seed, jobs=jobs,
                    agents={k: sc.tokens(v) for k, v in PEER_AGENTS.items()})


def long_context_mix(scale: str = "cpu", seed: int = 0, num_jobs: int = 16, rate: float = 0.15) -> Workload:
    """The coding-agent workload with 15% of sessions carrying a repository-sized context."""
    return coding_agent(scale, seed, num_jobs, rate, long_context_fraction=0.15)

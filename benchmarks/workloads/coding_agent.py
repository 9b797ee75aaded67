"""Workload 1 (WORKLOADS.md): a coding assistant looping LLM call -> tool batch -> LLM call.

Shaped after the published statistics of the GitHub Copilot coding-agent trace (June 2026):
3.95 user turns per session and 7.83 LLM calls per turn on average, each call's prompt the
previous prompt + previous output + the tool result, a shared system prompt + tool schema per
agent kind, prompt:completion around 128:1, heavy-tailed tool time with a median near 1 s.
"""

from __future__ import annotations

import numpy as np

from benchmarks.workloads.model import SCALES, Call, Job, Workload, bursty_arrivals, lognormal

AGENT_KINDS = {"coder": 3500, "tester": 2500, "docs-writer": 2000}  # system prompt + tool schema, tokens
TURNS_MEAN = 3.95
CALLS_PER_TURN_MEAN = 7.83


def _session(rng: np.random.Generator, job_id: str, arrival: float, scale, repo_tokens: int = 0) -> Job:
    kind = str(rng.choice(list(AGENT_KINDS)))
    calls: list[Call] = []
    prev: str | None = None
    turns = 1 + rng.poisson(TURNS_MEAN - 1)
    for turn in range(turns):
        n_calls = 1 + rng.poisson(CALLS_PER_TURN_MEAN - 1)
        for k in range(n_calls):
            cid = f"t{turn}c{k}"
            if k == 0:
                # A user message opens the turn; before it, the user thinks (turn > 0).
                fresh = lognormal(rng, 150, 0.6) + (repo_tokens if turn == 0 else 0)
                gap = 0.0 if turn == 0 else lognormal(rng, 8.0, 0.8) * scale.gap_factor
            else:
                fresh = lognormal(rng, 400, 0.9)  # tool batch output
                gap = lognormal(rng, 1.0, 1.1) * scale.gap_factor
            out = lognormal(rng, 120, 0.5)
            calls.append(Call(id=cid, agent=kind, output_tokens=scale.tokens(out), fresh_tokens=scale.tokens(fresh),
                              parent=prev, gap_s=round(gap, 4)))
            prev = cid
    return Job(id=job_id, type="coding-agent", arrival_s=arrival, calls=calls)


def coding_agent(scale: str = "cpu", seed: int = 0, num_jobs: int = 16, rate: float = 0.15,
                 long_context_fraction: float = 0.0) -> Workload:
    sc = SCALES[scale]
    rng = np.random.default_rng(seed)
    arrivals = bursty_arrivals(np.random.default_rng(seed + 1), num_jobs, rate)
    jobs = []
    for i, t in enumerate(arrivals):
        repo = 0
        if long_context_fraction and rng.random() < long_context_fraction:
            # A repository-sized context: 8-16x the median prompt of a session's first call.
            repo = int(rng.uniform(8, 16) * (AGENT_KINDS["coder"] + 150))
        jobs.append(_session(rng, f"job-{i}", round(t, 4), sc, repo))
    name = "long-context-mix" if long_context_fraction else "coding-agent"
    return Workload(name=name, scale=scale, seed=seed, jobs=jobs,
                    agents={k: sc.tokens(v) for k, v in AGENT_KINDS.items()})

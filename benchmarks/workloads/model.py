"""Jobs, calls and their JSONL form; token contents are derived from seeds at replay time."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Scale:
    """How WORKLOADS.md's GPU-scale token counts and times shrink for a smaller machine."""

    name: str
    token_divisor: int  # token counts are divided by this
    gap_factor: float  # tool gaps and think times are multiplied by this

    def tokens(self, n: float) -> int:
        return max(1, int(round(n / self.token_divisor)))


SCALES = {
    "gpu": Scale("gpu", 1, 1.0),
    "cpu": Scale("cpu", 16, 0.25),  # 2-core CPU: lengths /16 as WORKLOADS.md suggests
    "tiny": Scale("tiny", 64, 0.02),  # tests: a few tokens, near-zero gaps
}


@dataclass
class Call:
    """One LLM call. Its prompt is the agent's system prompt followed by its body, where
    body = body(parent) + output(parent) + outputs of `also` + `fresh_tokens` new tokens
    (a user turn, a tool result, a task), or, for trace replays, the tokens of `blocks`."""

    id: str
    agent: str
    output_tokens: int
    fresh_tokens: int = 0
    parent: str | None = None
    also: list[str] = field(default_factory=list)
    # Calls that must finish before this one starts (parent and also are added implicitly).
    deps: list[str] = field(default_factory=list)
    # Tool / think time between the last dependency finishing and this call starting.
    gap_s: float = 0.0
    # Trace replays: prompt = these shared blocks (block_tokens each), cut to fresh_tokens.
    blocks: list[int] | None = None

    def all_deps(self) -> list[str]:
        out = list(self.deps)
        for d in ([self.parent] if self.parent else []) + self.also:
            if d not in out:
                out.append(d)
        return out


@dataclass
class Job:
    id: str
    type: str
    arrival_s: float
    calls: list[Call]

    def check(self) -> None:
        seen: set[str] = set()
        for call in self.calls:
            missing = [d for d in call.all_deps() if d not in seen]
            if missing:
                raise ValueError(f"job {self.id}: call {call.id} depends on {missing} which come later or not at all")
            seen.add(call.id)


@dataclass
class Workload:
    name: str
    scale: str
    seed: int
    # System prompt length of each agent (tokens); the same agent shares it across jobs.
    agents: dict[str, int]
    jobs: list[Job]
    block_tokens: int = 512

    @property
    def num_calls(self) -> int:
        return sum(len(j.calls) for j in self.jobs)


def save_workload(workload: Workload, path: str | Path) -> None:
    with open(path, "w") as f:
        header = {k: v for k, v in asdict(workload).items() if k != "jobs"}
        f.write(json.dumps({"workload": header}) + "\n")
        for job in workload.jobs:
            f.write(json.dumps(asdict(job)) + "\n")


def load_workload(path: str | Path) -> Workload:
    with open(path) as f:
        header = json.loads(f.readline())["workload"]
        jobs = []
        for line in f:
            raw = json.loads(line)
            raw["calls"] = [Call(**c) for c in raw["calls"]]
            jobs.append(Job(**raw))
    return Workload(jobs=jobs, **header)


def bursty_arrivals(rng: np.random.Generator, num_jobs: int, rate: float, burst_every_s: float = 180.0,
                    burst_len_s: float = 60.0) -> list[float]:
    """Poisson arrivals at `rate` jobs/s whose rate doubles for `burst_len_s` out of every
    `burst_every_s` (agent traffic comes in minute-scale bursts)."""
    times, t = [], 0.0
    while len(times) < num_jobs:
        in_burst = (t % burst_every_s) >= burst_every_s - burst_len_s
        t += rng.exponential(1.0 / (rate * (2.0 if in_burst else 1.0)))
        times.append(t)
    return times


def lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(rng.lognormal(math.log(median), sigma))


def tokens_for(seed: int, key: str, n: int, low: int, high: int) -> list[int]:
    """Deterministic token ids for a named piece of content."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, digest]).integers(low, high, n).tolist()

"""The Mooncake (FAST'25) traces in shared/traces/ as workloads: one single-call job per request,
prompts built from the trace's 512-token block hash ids (equal ids give equal blocks)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.workloads.model import SCALES, Call, Job, Workload

TRACES = Path(__file__).resolve().parents[3] / "shared" / "traces"


def _load(file: str, name: str, scale: str, seed: int, num_jobs: int, rate: float | None) -> Workload:
    sc = SCALES[scale]
    jobs = []
    with open(TRACES / file) as f:
        for i, line in enumerate(f):
            if i >= num_jobs:
                break
            row = json.loads(line)
            # The trace's own clock, or a uniform rate when given (to fit a CPU's budget).
            arrival = row["timestamp"] / 1000.0 if rate is None else i / rate
            call = Call("c0", "user", output_tokens=sc.tokens(row["output_length"]),
                        fresh_tokens=sc.tokens(row["input_length"]), blocks=row["hash_ids"])
            jobs.append(Job(id=f"req-{i}", type=name, arrival_s=round(arrival, 4), calls=[call]))
    return Workload(name=name, scale=scale, seed=seed, jobs=jobs, agents={"user": 0},
                    block_tokens=sc.tokens(512))


def mooncake_conversation(scale: str = "cpu", seed: int = 0, num_jobs: int = 200, rate: float | None = 1.0
                          ) -> Workload:
    return _load("mooncake_conversation_trace.jsonl", "mooncake-conversation", scale, seed, num_jobs, rate)


def mooncake_synthetic(scale: str = "cpu", seed: int = 0, num_jobs: int = 200, rate: float | None = 1.0
                       ) -> Workload:
    return _load("mooncake_synthetic_trace.jsonl", "mooncake-synthetic", scale, seed, num_jobs, rate)

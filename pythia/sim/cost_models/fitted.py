"""A step-cost form fitted to measurements of the real engine (DistServe's estimator's shape).

    prefill part = a_p + b_p * sum(len) + c_p * sum(len * (start + len)) + d_p * sum(start)
    decode part  = a_d + b_d * sum(context) + c_d * batch

`len` is a prefill chunk's computed positions and `start` the positions before it. With nothing
cached (start 0) the quadratic term is DistServe's c * sum(len^2); with a cached prefix it grows
with the keys each query attends to, which is where attention's cost goes. d_p is what reading a
chunk's earlier context costs once per chunk (the engine gathers it from the page pool), whatever
the chunk's length: a long prompt's later chunks pay it, which an uncached fit cannot see.
A step with both kinds runs them in one forward pass, so it pays one fixed cost, the larger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pythia.sim.cost_model import BatchShape, CostModel


@dataclass(frozen=True)
class FittedCost(CostModel):
    name: str
    description: str
    prefill: tuple[float, float, float, float]
    """(a_p, b_p, c_p, d_p): seconds; seconds per computed position; seconds per (query, key) pair;
    seconds per position of context before a chunk."""
    decode: tuple[float, float, float]
    """(a_d, b_d, c_d): seconds; seconds per context token; seconds per decoding request."""
    request_latency_s: float = 0.0

    @classmethod
    def load(cls, path: Path) -> FittedCost:
        raw = json.loads(path.read_text())
        prefill = tuple(raw["prefill"]) + (0.0,) * (4 - len(raw["prefill"]))  # fits from before d_p
        return cls(raw["name"], raw["description"], prefill, tuple(raw["decode"]), raw.get("request_latency_s", 0.0))

    def step_s(self, batch: BatchShape) -> float:
        fixed, variable = 0.0, 0.0
        if len(batch.prefill_lens):
            a, b, c, d = self.prefill
            lens, starts = batch.prefill_lens, batch.prefill_starts
            fixed = a
            variable += (b * float(lens.sum()) + c * float((lens * (starts + lens)).sum())
                         + d * float(starts.sum()))
        if len(batch.decode_contexts):
            a, b, c = self.decode
            fixed = max(fixed, a)
            variable += b * float(batch.decode_contexts.sum()) + c * len(batch.decode_contexts)
        return fixed + variable


def prefill_features(lens: list[int], starts: list[int] | None = None) -> list[float]:
    """The fit's regressors of a prefill batch: (1, sum len, sum len * (start + len), sum start);
    `starts` (the cached positions before each chunk) default to none."""
    x = np.asarray(lens, dtype=np.float64)
    s = np.zeros_like(x) if starts is None else np.asarray(starts, dtype=np.float64)
    return [1.0, float(x.sum()), float((x * (s + x)).sum()), float(s.sum())]


def decode_features(contexts: list[int]) -> list[float]:
    """The fit's regressors of a decode batch: (1, sum context, batch)."""
    return [1.0, float(sum(contexts)), float(len(contexts))]

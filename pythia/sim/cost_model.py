"""What a simulated step costs: the interface every cost model implements.

The simulator hands a cost model the shape of one scheduled batch, as the core planned it, and
advances its virtual clock by the answer. Token ids never matter here, only lengths: how many
positions each prefill chunk computes and how much context lies before them, and how long each
decoding request's context is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np


class BatchShape(NamedTuple):
    """One step's batch, by entry kind."""

    prefill_lens: np.ndarray  # positions each prefill chunk computes this step
    prefill_starts: np.ndarray  # positions before each chunk (cached prefix and earlier chunks)
    decode_contexts: np.ndarray  # context of each one-token entry, the new token included

    @classmethod
    def from_plan(cls, start_pos: np.ndarray, num_tokens: np.ndarray) -> BatchShape:
        """Splits a StepPlan's entries: a one-token entry costs what a decode step of its context
        costs, whether it samples its next output token or is a prompt's last uncached token."""
        one = num_tokens == 1
        return cls(num_tokens[~one].astype(np.int64), start_pos[~one].astype(np.int64),
                   start_pos[one].astype(np.int64) + 1)


class CostModel(ABC):
    """Seconds one engine step takes, from the batch's shape."""

    name: str
    description: str  # one line: what it models and where its numbers come from
    # Seconds between a call being issued and its request reaching the engine's queue: the serving
    # path outside the engine's steps (HTTP, the front, IPC, the loop picking it up), on top of
    # every step's own cost. 0 where the model does not know it.
    request_latency_s: float = 0.0

    @abstractmethod
    def step_s(self, batch: BatchShape) -> float:
        """The step's duration; a batch with no entries costs nothing."""

    def plan_step_s(self, start_pos: np.ndarray, num_tokens: np.ndarray) -> float:
        """`step_s` of a StepPlan's entries, as the simulated engine asks every step; a model whose
        cost needs no split by entry kind answers without building the BatchShape."""
        return self.step_s(BatchShape.from_plan(start_pos, num_tokens))

    def transfer_s(self, num_tokens: int) -> float:
        """Moving `num_tokens` tokens' KV between device and host memory (the host tier).
        A model without a host-link figure refuses rather than guess."""
        raise ValueError(f"cost model {self.name!r} has no host-link figure; it cannot time page transfers")

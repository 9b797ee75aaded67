"""`--step-log`: one JSON line per engine step, the batch's shape and its wall time.

The shape is split the way the simulator's cost models read a step (`BatchShape.from_plan`), so
a real run's log is what `python -m pythia.sim.fit_cost --step-logs` fits a cost model to: the
machine's speed while the run ran, which on a shared machine drifts by 2x within the hour.
"""

from __future__ import annotations

import json
from typing import Any

from pythia.sim.cost_model import BatchShape


class StepLog:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)  # line-buffered: a killed engine loses no whole step

    def write(self, plan: Any, started_s: float, seconds: float) -> None:
        """`started_s`: when the step began on the engine's clock, so the gaps between steps show."""
        shape = BatchShape.from_plan(plan.start_pos, plan.num_tokens)
        self.file.write(json.dumps({"t": round(started_s, 6), "prefill_lens": shape.prefill_lens.tolist(),
                                    "prefill_starts": shape.prefill_starts.tolist(),
                                    "decode_contexts": shape.decode_contexts.tolist(), "step_s": seconds}) + "\n")

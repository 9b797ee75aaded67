"""The simulator's cost models by name: one fitted to this machine's engine, GPU rooflines."""

from __future__ import annotations

from pathlib import Path

from pythia.sim.cost_model import CostModel
from pythia.sim.cost_models.fitted import FittedCost
from pythia.sim.cost_models.roofline import H100_LLAMA3_8B, H200_LLAMA3_8B

HERE = Path(__file__).resolve().parent
COST_MODEL_NAMES = ["cpu-fitted", H100_LLAMA3_8B.name, H200_LLAMA3_8B.name]


def cost_model(name: str) -> CostModel:
    """The cost model `name`; ValueError naming the known ones otherwise."""
    if name == "cpu-fitted":
        return FittedCost.load(HERE / "cpu_fitted.json")
    for model in (H100_LLAMA3_8B, H200_LLAMA3_8B):
        if model.name == name:
            return model
    raise ValueError(f"unknown cost model {name!r} (known: {', '.join(COST_MODEL_NAMES)})")

"""The simulator's cost models by name: GPU rooflines, and every fitted model in this folder (a
JSON written by `python -m pythia.sim.fit_cost`: `cpu_fitted.json`, fitted to this machine's
engine, and any profile fitted from `benchmarks/gpu/calibrate.py` on a lent GPU)."""

from __future__ import annotations

import json
from pathlib import Path

from pythia.sim.cost_model import CostModel
from pythia.sim.cost_models.fitted import FittedCost
from pythia.sim.cost_models.roofline import H100_LLAMA3_8B, H200_LLAMA3_8B

HERE = Path(__file__).resolve().parent
ROOFLINES = {m.name: m for m in (H100_LLAMA3_8B, H200_LLAMA3_8B)}


def fitted_files() -> dict[str, Path]:
    """name -> file of each fitted model here."""
    return {json.loads(p.read_text())["name"]: p for p in sorted(HERE.glob("*.json"))}


COST_MODEL_NAMES = sorted(fitted_files()) + list(ROOFLINES)


def cost_model(name: str) -> CostModel:
    """The cost model `name`; ValueError naming the known ones otherwise."""
    if name in ROOFLINES:
        return ROOFLINES[name]
    files = fitted_files()
    if name in files:
        return FittedCost.load(files[name])
    raise ValueError(f"unknown cost model {name!r} (known: {', '.join(sorted(files) + list(ROOFLINES))})")

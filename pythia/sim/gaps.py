"""Splits `pythia`'s distance from the clairvoyant bound into prediction and policy error.

`pythia` / `pythia-true` (mean JCT) is what the profiler's predictions cost: the same policies
fed the workload's true future. `pythia-true` / `oracle` is what the policies cost: the core's
strongest rule per decision, both fed the truth (pythia/sim/true_feed.py). Above 1: room left.
"""

from __future__ import annotations

BOUND_CONFIGS = ("pythia", "pythia-true", "oracle")


def gaps(summaries: dict[str, dict[str, float]]) -> dict[str, float] | None:
    """{"prediction_gap": x, "policy_gap": y}, or None unless all of BOUND_CONFIGS ran."""
    if not all(c in summaries for c in BOUND_CONFIGS):
        return None
    mean = {c: summaries[c]["jct_mean_s"] for c in BOUND_CONFIGS}
    return {"prediction_gap": mean["pythia"] / mean["pythia-true"], "policy_gap": mean["pythia-true"] / mean["oracle"]}


def gap_lines(workload: str, summaries: dict[str, dict[str, float]]) -> list[str]:
    found = gaps(summaries)
    return [] if found is None else [f"RESULT {k} {workload} {v:.3f}" for k, v in found.items()]


def gap_markdown(summaries: dict[str, dict[str, float]]) -> str:
    found = gaps(summaries)
    if found is None:
        return ""
    pred, policy = found["prediction_gap"], found["policy_gap"]
    return ("## Where pythia's gap to the bound comes from (SIMULATED)\n\n"
            "| gap | mean JCT ratio |\n|---|---|\n"
            f"| prediction (`pythia` / `pythia-true`) | {pred:.3f} |\n"
            f"| policy (`pythia-true` / `oracle`) | {policy:.3f} |\n"
            f"| total (`pythia` / `oracle`) | {pred * policy:.3f} |\n\n"
            "`pythia-true` and `oracle` read the workload's future (pythia/sim/true_feed.py says how close each "
            "is to the textbook clairvoyant policy); above 1, that much mean JCT is left to gain.\n")

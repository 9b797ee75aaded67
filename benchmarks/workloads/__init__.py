"""Seeded agent-workload generators (WORKLOADS.md) and public-trace loaders, one module each.

A workload is a list of jobs; a job is a graph of LLM calls (see `model.py`). Every generator
takes (scale, seed, num_jobs) and returns the same jobs for the same arguments.
"""

from __future__ import annotations

from benchmarks.workloads.coding_agent import coding_agent
from benchmarks.workloads.model import Call, Job, Scale, Workload, load_workload, save_workload
from benchmarks.workloads.mooncake import mooncake_conversation, mooncake_synthetic
from benchmarks.workloads.multi_agent import long_context_mix, multi_agent_dag, peer

GENERATORS = {
    "coding-agent": coding_agent,
    "multi-agent-dag": multi_agent_dag,
    "peer": peer,
    "long-context-mix": long_context_mix,
    "mooncake-conversation": mooncake_conversation,
    "mooncake-synthetic": mooncake_synthetic,
}


def build_workload(name: str, scale: str, seed: int, num_jobs: int | None = None, rate: float | None = None
                   ) -> Workload:
    """Generator `name`'s workload; num_jobs and rate keep the generator's defaults when None."""
    kwargs: dict = {"scale": scale, "seed": seed}
    if num_jobs is not None:
        kwargs["num_jobs"] = num_jobs
    if rate is not None:
        kwargs["rate"] = rate
    return GENERATORS[name](**kwargs)


__all__ = ["GENERATORS", "build_workload", "Call", "Job", "Scale", "Workload", "load_workload", "save_workload"]

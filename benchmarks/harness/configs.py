"""The configurations compared in benchmarks: WORKLOADS.md's baselines and Pythia, as server flags.

Same engine, one flag changed: each name maps to the policies the server is started with.
"""

from __future__ import annotations

from pythia import _core

CONFIGS: dict[str, dict[str, str]] = {
    "vllm": {"schedule_policy": "fcfs", "eviction_policy": "lru"},
    "sglang": {"schedule_policy": "lpm", "eviction_policy": "lru"},
    "autellix": {"schedule_policy": "plas", "eviction_policy": "lru"},
    "kvflow": {"schedule_policy": "fcfs", "eviction_policy": "kvflow"},
    "continuum": {"schedule_policy": "fcfs", "eviction_policy": "ttl"},
    "pythia": {"schedule_policy": "pythia", "eviction_policy": "pythia"},
    # Ablation: Pythia's request order alone, on the baseline's cache.
    "pythia-sched": {"schedule_policy": "pythia", "eviction_policy": "lru"},
}


def server_flags(name: str) -> list[str]:
    """Flags for config `name`; ValueError naming what is missing when the config cannot run yet."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r} (known: {', '.join(CONFIGS)})")
    policies = CONFIGS[name]
    missing = []
    if policies["schedule_policy"] not in _core.schedule_policy_names():
        missing.append(f"schedule policy {policies['schedule_policy']!r}")
    if policies["eviction_policy"] not in _core.eviction_policy_names():
        missing.append(f"eviction policy {policies['eviction_policy']!r}")
    if missing:
        raise ValueError(f"config {name!r} does not exist yet: the core has no {' and no '.join(missing)} "
                         f"(available: schedule {_core.schedule_policy_names()}, eviction {_core.eviction_policy_names()})")
    return ["--schedule-policy", policies["schedule_policy"], "--eviction-policy", policies["eviction_policy"]]

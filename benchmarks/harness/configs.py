"""The configurations compared in benchmarks: WORKLOADS.md's baselines and Pythia, as server flags.

Same engine, one flag changed: each name maps to the flags (policies, and for one ablation a tuning
knob) the server is started with.
"""

from __future__ import annotations

from pythia import _core

# One simulated 80 GB GPU's engine limits (sim_headline.sh's GPU=, which says where each comes from).
GPU_SERVER_ARGS = "--max-total-tokens 427246 --chunked-prefill-size 8192 --max-running-requests 256"
RATIO = "ratio"  # SGLang's admission: new_token_ratio of max_new_tokens
PYTHIA_HOST = {"schedule_policy": "pythia", "eviction_policy": "pythia", "admission_policy": "pythia",
               "enable_hierarchical_cache": "", "hicache_policy": "pythia",
               "long_context_tokens": "16384", "max_long_prefill_tokens": "4096"}
CONFIGS: dict[str, dict[str, str]] = {
    "vllm": {"schedule_policy": "fcfs", "eviction_policy": "lru", "admission_policy": RATIO},
    "sglang": {"schedule_policy": "lpm", "eviction_policy": "lru", "admission_policy": RATIO},
    "autellix": {"schedule_policy": "plas", "eviction_policy": "lru", "admission_policy": RATIO},
    "kvflow": {"schedule_policy": "fcfs", "eviction_policy": "kvflow", "admission_policy": RATIO},
    "continuum": {"schedule_policy": "pfcfs", "eviction_policy": "ttl", "admission_policy": RATIO},
    "pythia": {"schedule_policy": "pythia", "eviction_policy": "pythia", "admission_policy": "pythia"},
    # Ablations: Pythia with one decision switched back to the sglang baseline's.
    "pythia-no-sched": {"schedule_policy": "lpm", "eviction_policy": "pythia", "admission_policy": "pythia"},
    "pythia-no-evict": {"schedule_policy": "pythia", "eviction_policy": "lru", "admission_policy": "pythia"},
    "pythia-no-admit": {"schedule_policy": "pythia", "eviction_policy": "pythia", "admission_policy": RATIO},
    "pythia-no-unblock": {"schedule_policy": "pythia", "eviction_policy": "pythia", "admission_policy": "pythia",
                          "unblock_bonus_tokens": "0"},
    # Pythia without the working-set gate (a new job waits up to --max-job-hold-s while live jobs'
    # contexts fill the pool and other work runs).
    "pythia-no-gate": {"schedule_policy": "pythia", "eviction_policy": "pythia", "admission_policy": "pythia",
                       "max_job_hold_s": "0"},
    # The host KV tier (issue #14; its size is the benchmark's, --hicache-ratio in --server-args):
    # SGLang with HiCache (write-through, host LRU), and Pythia with its host policy (every eviction
    # written to host unless predicted dead, spare and far-future host copies dropped first,
    # prefetch before a predicted call) and long-context isolation (prompts of 16k tokens or more
    # get at most 4,096 prefill tokens of a step, half the GPU-scale chunk; at CPU scale, whose
    # prompts stay below 16k, it does nothing).
    "hicache": {"schedule_policy": "lpm", "eviction_policy": "lru", "admission_policy": RATIO,
                "enable_hierarchical_cache": "", "hicache_policy": "lru"},
    "pythia-host": {**PYTHIA_HOST},
    # Its ablations: one part switched off.
    "pythia-host-no-prefetch": {**PYTHIA_HOST, "hicache_prefetch_s": "0"},
    "pythia-host-no-isolation": {**PYTHIA_HOST, "max_long_prefill_tokens": "0"},
    "pythia-host-lru": {**PYTHIA_HOST, "hicache_policy": "lru"},
    # Clairvoyant bounds (simulator only, pythia/sim/true_feed.py): the workload's true future goes
    # through the forecast interface instead of the profiler's predictions.
    # Pythia's own policies and knobs, fed true values: pythia vs this is the prediction error.
    "pythia-true": {"schedule_policy": "pythia", "eviction_policy": "pythia", "admission_policy": "pythia"},
    # The core's strongest rule per decision, fed true values: shortest true remaining job work first
    # (the call's own rest plus all the job's later calls, at full weight; no aging or unblock bonus,
    # which only hedge against bad predictions), eviction by true next use, reservation by true output.
    "oracle": {"schedule_policy": "pythia", "eviction_policy": "pythia", "admission_policy": "pythia",
               "future_work_weight": "1", "aging_tokens_per_step": "0", "unblock_bonus_tokens": "0"},
}
# Configs that read the workload's future: only the simulator, which holds the whole workload, runs them.
CLAIRVOYANT = frozenset({"pythia-true", "oracle"})
KNOWN = {"schedule_policy": _core.schedule_policy_names, "eviction_policy": _core.eviction_policy_names,
         "admission_policy": _core.admission_policy_names}


def server_flags(name: str, clairvoyant: bool = False) -> list[str]:
    """Flags for config `name`; ValueError naming what is missing when the config cannot run yet,
    or when it reads the future and the caller (`clairvoyant=False`: a real server) cannot supply it."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r} (known: {', '.join(CONFIGS)})")
    if name in CLAIRVOYANT and not clairvoyant:
        raise ValueError(f"config {name!r} is a clairvoyant bound: it reads the workload's future, which only the "
                         f"simulator has; run it with python -m pythia.sim")
    policies = CONFIGS[name]
    missing = [f"{kind.replace('_', ' ')} {value!r}" for kind, value in policies.items()
               if kind in KNOWN and value not in KNOWN[kind]()]
    if missing:
        raise ValueError(f"config {name!r} cannot run: the core has no {' and no '.join(missing)}")
    # A setting with no value is a switch (--enable-hierarchical-cache).
    return [arg for kind, value in policies.items() for arg in ("--" + kind.replace("_", "-"), value) if arg]


def host_tier_flags(name: str, flags: list[str]) -> list[str]:
    """`flags` (a benchmark's --server-args) for config `name`: the host tier's size and settings
    (--hicache-*) apply only to configs that have one, so one set of server args serves all."""
    if "enable_hierarchical_cache" in CONFIGS.get(name, {}):
        return flags
    out, skip = [], False
    for arg in flags:
        if skip:
            skip = False
        elif arg.startswith("--hicache-"):
            skip = "=" not in arg
        else:
            out.append(arg)
    return out

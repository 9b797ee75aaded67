#!/usr/bin/env bash
# Issue #14's host-tier measurement, SIMULATED (python -m pythia.sim; no model runs): one H100
# serving Llama-3-8B by the `h100-llama3-8b` roofline, host copies timed on its PCIe figure
# (HOST_LINK_BYTES_PER_S in pythia/sim/cost_models/roofline.py), 150 sessions per run.
# The regime the issue asks for:
#   device KV pool 100,000 tokens (13 GB at 128 KiB per token): a GPU whose HBM holds a fraction
#     of the live sessions' contexts (a coding session's context reaches ~15k tokens);
#   host KV pool 1x, 2x and 4x the device pool (--hicache-ratio): from a host pool that holds
#     about as much as the device (host memory pressure too) to one that holds everything.
#   rates: each workload's peak concurrency for sglang on this pool (the sweep of a first run:
#     coding agent 0.045 sessions/s, long-context mix 0.02), where sglang's P95 JCT is 3x-12x its
#     unloaded JCT.
# Configs: sglang (no host tier), hicache (sglang + HiCache: write-through, host LRU), pythia
# (no host tier), pythia-host (pythia + its host policy + long-context isolation), and ablations.
#   bash benchmarks/sim_host_tier.sh [coding-agent|long-context-mix ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ENGINE="--max-total-tokens 100000 --chunked-prefill-size 8192 --max-running-requests 256"
CONFIGS=sglang,hicache,pythia,pythia-host,pythia-host-no-prefetch,pythia-host-no-isolation,pythia-host-lru
declare -A RATE=([coding-agent]=0.045 [long-context-mix]=0.02)
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(coding-agent long-context-mix)
for w in "${workloads[@]}"; do
  for ratio in 1 2 4; do
    $PY -m pythia.sim --workload "$w" --scale gpu --num-jobs 150 --rate "${RATE[$w]:?unknown workload $w}" \
      --cost-model h100-llama3-8b --server-args "$ENGINE --hicache-ratio $ratio" --configs "$CONFIGS" \
      --out "benchmarks/results/sim-host-$w-ratio$ratio"
  done
done

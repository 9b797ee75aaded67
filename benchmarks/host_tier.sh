#!/usr/bin/env bash
# Issue #14's host-tier measurement on the real engine (tiny model over HTTP, this machine's CPU):
# the coding agent and the long-context mix with the device KV pool well below the working set
# (4,096 tokens against sessions whose contexts reach ~3,400 tokens each, 10 of them) and the host
# pool 8x the device pool (32,768 tokens), as on a GPU whose HBM holds a fraction of what host
# DRAM holds. Configs: sglang (no host tier), hicache (sglang + HiCache's write-through, host LRU),
# pythia-host (pythia + its host policy), pythia (no host tier).
#   [REPEATS=2] bash benchmarks/host_tier.sh [coding-agent|long-context-mix|smollm2 ...]   (default: the first two)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ARGS="--max-total-tokens 4096 --hicache-ratio 8"
CONFIGS=sglang,hicache,pythia-host,pythia
run() {  # workload, extra args...
  local w=$1
  shift
  $PY -m benchmarks.run --workload "$w" --scale cpu --model tiny --configs "$CONFIGS" \
    --out "benchmarks/results/host-tier-$w" --server-args "$ARGS" --no-progress "$@"
}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(coding-agent long-context-mix)
for w in "${workloads[@]}"; do
  case $w in
    coding-agent) run coding-agent --rate 0.45 --num-jobs 10 --repeats "${REPEATS:-2}" ;;
    coding-agent-ratio1)  # host pool = device pool: the host tier's own choices decide (what to keep there)
      $PY -m benchmarks.run --workload coding-agent --scale cpu --model tiny --configs sglang,hicache,pythia-host \
        --out benchmarks/results/host-tier-coding-agent-ratio1 --server-args "--max-total-tokens 4096 --hicache-ratio 1" \
        --no-progress --rate 0.45 --num-jobs 10 --repeats "${REPEATS:-2}" ;;
    long-context-mix) run long-context-mix --rate 0.45 --num-jobs 10 --repeats "${REPEATS:-2}" ;;
    smollm2)  # the embedded SmolLM2-135M: fewer, shorter sessions (its steps are ~10x the tiny model's)
      $PY -m benchmarks.run --workload coding-agent --scale cpu --model default --configs sglang,hicache,pythia-host \
        --out benchmarks/results/host-tier-smollm2 --server-args "$ARGS" --no-progress --rate 0.2 --num-jobs 4 ;;
    *) echo "unknown: $w" >&2; exit 2 ;;
  esac
done

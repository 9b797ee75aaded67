#!/usr/bin/env bash
# Issue #5's headline measurement: the six configs side by side at peak concurrency and at half of
# it (found by --sweep against sglang), on the multi-agent DAG, PEER and the coding agent, with the
# tiny model on the CPU. Every config gets the same KV pool, sized so that live jobs contend for it
# (WORKLOADS.md: long contexts crowd out short ones); see RESULTS.md for the figures.
#   bash benchmarks/headline.sh [workload ...]      (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SIX=sglang,vllm,autellix,kvflow,continuum,pythia
POOL="--max-total-tokens 4096"
run() {  # workload, start rate, extra args...
  local w=$1 rate=$2
  shift 2
  $PY benchmarks/run.py --workload "$w" --scale cpu --sweep --rate "$rate" --configs $SIX --repeats 2 \
    --model tiny --out "benchmarks/results/headline-$w" --server-args "$POOL" --no-progress "$@"
}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(multi-agent-dag peer coding-agent)
for w in "${workloads[@]}"; do
  case $w in
    multi-agent-dag) run multi-agent-dag 1.0 ;;
    peer) run peer 1.0 ;;
    coding-agent) run coding-agent 0.3 --num-jobs 10 ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
  esac
done

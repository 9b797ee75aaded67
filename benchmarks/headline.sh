#!/usr/bin/env bash
# Issue #5's headline measurement: the six configs side by side at peak concurrency (found by
# --sweep against sglang; sweep-* reruns the sweep and also measures half of it), on the multi-agent DAG, PEER and the coding agent, with the
# tiny model on the CPU. Every config gets the same KV pool, sized so that live jobs contend for it
# (WORKLOADS.md: long contexts crowd out short ones); see RESULTS.md for the figures.
# Then the ablation and the untagged variant.
#   bash benchmarks/headline.sh [multi-agent-dag|peer|coding-agent|ablation|untagged|smollm2-dag|smollm2-peer|
#                                sweep-dag|sweep-peer|capacity-dag|capacity-peer|gate ...]
#   (default: the first six)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SIX=sglang,vllm,autellix,kvflow,continuum,pythia
POOL="--max-total-tokens 4096"
run() {  # workload, extra args...
  local w=$1
  shift
  $PY -m benchmarks.run --workload "$w" --scale cpu --configs $SIX --model tiny \
    --out "benchmarks/results/headline-$w" --server-args "$POOL" --no-progress "$@"
}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(multi-agent-dag peer coding-agent ablation untagged smollm2-dag)
for w in "${workloads[@]}"; do
  case $w in
    # Peak rates found with --sweep against sglang (RESULTS.md has the sweep): 2.25 and 11.39 jobs/s.
    multi-agent-dag) run multi-agent-dag --rate 2.25 --repeats 2 ;;
    peer) run peer --rate 11.39 --repeats 2 ;;  # two: the second runs the configs in reverse order
    sweep-dag) run multi-agent-dag --sweep --rate 1.0 --repeats 2 ;;
    sweep-peer) run peer --sweep --rate 1.0 --repeats 2 ;;
    # Throughput as capacity: each config's highest rate whose P95 JCT stays within 3x sglang's mean JCT
    # at a quarter of the start rate (its unloaded JCT; the sweep's rule, though PEER's sweep starts
    # lower). 40 jobs, so that a burst at high rates loads the server long enough to miss it. Starts:
    # the DAG sweep's start, and about half PEER's peak.
    capacity-dag) $PY -m benchmarks.run --workload multi-agent-dag --scale cpu --capacity --rate 1.0 --num-jobs 40 \
      --model tiny --configs $SIX --out benchmarks/results/capacity-multi-agent-dag --server-args "$POOL" --no-progress ;;
    capacity-peer) $PY -m benchmarks.run --workload peer --scale cpu --capacity --rate 5.0 --num-jobs 40 \
      --model tiny --configs $SIX --out benchmarks/results/capacity-peer --server-args "$POOL" --no-progress ;;
    # A coding-agent run lasts minutes (sessions of tool loops), so no sweep here: at 0.3 sessions/s
    # sglang's P95 JCT was 2.4x unloaded, and 0.45 is the sweep's next step.
    coding-agent) run coding-agent --rate 0.45 --num-jobs 10 --repeats 1 ;;
    # Each Pythia decision switched back to sglang's in turn, on the DAG at its peak rate.
    ablation) $PY -m benchmarks.run --workload multi-agent-dag --scale cpu --rate 2.25 --repeats 1 --model tiny \
      --configs sglang,pythia,pythia-no-sched,pythia-no-evict,pythia-no-admit,pythia-no-unblock,pythia-no-gate \
      --out benchmarks/results/ablation-multi-agent-dag --server-args "$POOL" --no-progress ;;
    # No workflow metadata at all: Pythia must not lose to the baselines.
    untagged) $PY -m benchmarks.run --workload multi-agent-dag --scale cpu --rate 2.25 --repeats 2 --model tiny \
      --configs $SIX --untagged --out benchmarks/results/untagged-multi-agent-dag --server-args "$POOL" --no-progress ;;
    # The real model (SmolLM2-135M, fp32) at the same small (cpu) scale. Not swept (a sweep's unloaded
    # runs take many minutes): a decode step costs about 9x the tiny model's here at batch 1-16
    # (benchmarks/bench_step_cost.py), so the tiny model's peak of 2.25 jobs/s scales to about 0.25.
    smollm2-dag) $PY -m benchmarks.run --workload multi-agent-dag --scale cpu --rate 0.25 --num-jobs 10 --repeats 1 \
      --model default --configs $SIX --out benchmarks/results/smollm2-multi-agent-dag --server-args "$POOL" --no-progress ;;
    # PEER with SmolLM2 at the tiny model's peak scaled the same way: 11.39 / 9 = 1.27 jobs/s; two
    # repeats, the second in reverse order (one repeat had the first config 25% slower than the rest).
    smollm2-peer) $PY -m benchmarks.run --workload peer --scale cpu --rate 1.27 --num-jobs 40 --repeats 2 \
      --model default --configs $SIX --out benchmarks/results/smollm2-peer --server-args "$POOL" --no-progress ;;
    # The working-set gate (--max-job-hold-s, on in pythia; pythia-no-gate is pythia without it) on the
    # coding agent past its peak: 20 sessions, so that later ones arrive while the first ones' contexts
    # fill the pool.
    gate) $PY -m benchmarks.run --workload coding-agent --scale cpu --rate 0.45 --num-jobs 20 --repeats 1 --model tiny \
      --configs sglang,pythia,pythia-no-gate --out benchmarks/results/gate-coding-agent --server-args "$POOL" --no-progress
      $PY -m benchmarks.run --workload coding-agent --scale cpu --rate 0.45 --num-jobs 20 --repeats 1 --model tiny \
      --configs pythia-no-gate,pythia,sglang --out benchmarks/results/gate-coding-agent-reversed --server-args "$POOL" \
      --no-progress ;;
    *) echo "unknown workload $w (known: multi-agent-dag peer coding-agent ablation untagged smollm2-dag smollm2-peer sweep-dag sweep-peer capacity-dag capacity-peer gate)" >&2; exit 2 ;;
  esac
done

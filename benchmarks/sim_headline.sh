#!/usr/bin/env bash
# Issue #13's paper-scale headline, SIMULATED (python -m pythia.sim; no model runs): GPU-scale token
# counts, one H100 serving Llama-3-8B by the `h100-llama3-8b` roofline (datasheet figures, not
# calibrated on a GPU), the six configs and the clairvoyant bounds on the four workloads.
#   bash benchmarks/sim_headline.sh [multi-agent-dag|peer|coding-agent|long-context-mix|
#                                    capacity-W|ablation-W|untagged-W|host-W ...]   (default: the four sweeps)
# (ablation-W, untagged-W and host-W run at RATE=..., the peak the W sweep found: RATE=0.075 for
# long-context-mix; host-W adds the host tier: the six configs beside hicache and pythia-host, which
# is pythia with its host policy, on a host pool HOST_RATIO (default 4) x the device KV pool:
# 1.7M tokens, 224 GB at 128 KiB per token)
# Each sweep finds peak concurrency (sglang's P95 JCT about 3x its unloaded JCT) and compares every
# config there and at half of it. The engine's limits, for an 80 GB GPU:
#   KV pool   427,246 tokens: 0.9 of 80 GB less 16 GB of weights at 128 KiB per token
#             (Roofline.kv_pool_tokens, pythia/sim/cost_models/roofline.py)
#   chunk     8,192 tokens per step (a common chunked-prefill budget for an 8B model on an H100; assumed)
#   batch     256 running requests (vLLM's default max_num_seqs)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SIX=sglang,vllm,autellix,kvflow,continuum,pythia
BOUNDS=pythia-true,oracle
GPU="--max-total-tokens 427246 --chunked-prefill-size 8192 --max-running-requests 256"
sim() {  # out name, then pythia.sim arguments
  local name=$1
  shift
  $PY -m pythia.sim --scale gpu --cost-model h100-llama3-8b --server-args "$GPU" \
    --out "benchmarks/results/sim-$name" "$@"
}
# Jobs per run: enough that the live jobs' contexts outgrow the pool at peak load (a coding
# session's context reaches ~15k tokens, a DAG job's ~20k), so eviction and order decide.
declare -A JOBS=([multi-agent-dag]=200 [peer]=400 [coding-agent]=150 [long-context-mix]=150)
# Sweep starts: below each workload's peak on this cost model, so the sweep climbs to it.
declare -A START=([multi-agent-dag]=0.5 [peer]=2.0 [coding-agent]=0.05 [long-context-mix]=0.05)
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(multi-agent-dag peer coding-agent long-context-mix)
for w in "${workloads[@]}"; do
  case $w in
    multi-agent-dag|peer|coding-agent|long-context-mix)
      sim "headline-$w" --workload "$w" --num-jobs "${JOBS[$w]}" --rate "${START[$w]}" --sweep --configs "$SIX,$BOUNDS" ;;
    capacity-*)
      x=${w#capacity-}
      sim "capacity-$x" --workload "$x" --num-jobs "${JOBS[$x]}" --rate "${START[$x]}" --capacity --configs "$SIX" ;;
    ablation-*)  # each Pythia decision switched back to sglang's, at the rate given (the workload's peak)
      x=${w#ablation-}
      sim "ablation-$x" --workload "$x" --num-jobs "${JOBS[$x]}" --rate "${RATE:?RATE=peak jobs/s of the sweep}" \
        --configs sglang,pythia,pythia-no-sched,pythia-no-evict,pythia-no-admit,pythia-no-unblock,pythia-no-gate ;;
    untagged-*)  # no workflow metadata at all: pythia must not lose to the baselines
      x=${w#untagged-}
      sim "untagged-$x" --workload "$x" --num-jobs "${JOBS[$x]}" --rate "${RATE:?RATE=peak jobs/s of the sweep}" \
        --untagged --configs "$SIX" ;;
    host-*)
      x=${w#host-}
      sim "host-$x" --workload "$x" --num-jobs "${JOBS[$x]}" --rate "${RATE:?RATE=peak jobs/s of the sweep}" \
        --server-args "$GPU --hicache-ratio ${HOST_RATIO:-4}" --configs "$SIX,hicache,pythia-host" ;;
    *) echo "unknown: $w" >&2; exit 2 ;;
  esac
done

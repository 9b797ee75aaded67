#!/usr/bin/env bash
# Issue #14's GPU check, one prepared script for a lent GPU machine (DEVELOPERS.md; a few minutes):
# builds the project there with the CUDA kernels (pythia._kv_cuda, sm_90), runs the kernel tests
# against the CPU path, and measures host <-> device GB/s of the kernels against cudaMemcpyAsync of
# the same pages and a plain copy of the same bytes, for small and large pages, on the KV shape of
# Llama-3.1-8B (32 layers x 8 KV heads x 128 dims, bf16: 128 KiB per token).
#   bash benchmarks/gpu/host_tier.sh [OUT_DIR]      (default: $OUT, else benchmarks/results/gpu)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${OUT:-benchmarks/results/gpu}}
mkdir -p "$OUT"
PY=${PY:-python}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
PYTHIA_WITH_CUDA=ON PYTHIA_BUILD_TESTS=OFF $PY -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1
$PY -c "from pythia import _kv_cuda; assert _kv_cuda.device_available(); print('pythia._kv_cuda: device available')"
$PY -m pytest -q tests/test_kv_transfer.py 2>&1 | tee "$OUT/test_kv_transfer.txt"
$PY -m benchmarks.bench_transfer --device cuda --dtype bfloat16 --layers 32 --kv-heads 8 --head-dim 128 \
  --page-sizes 1,16,64 --pages 512 --repeats 20 2>&1 | tee "$OUT/bench_transfer.txt"

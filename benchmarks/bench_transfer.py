"""Copy bandwidth of the host tier's page copies against a plain copy of the same bytes.

    python -m benchmarks.bench_transfer [--layers 30] [--kv-heads 3] [--head-dim 64]
                                        [--page-sizes 1,16,64] [--pages 256] [--repeats 20]
                                        [--device cpu|cuda]

For each page size: a device pool (layer-first) and a host pool (page-first) of the given model
shape (default: SmolLM2-135M's, float32 as the CPU engine runs it), and a plan of `--pages`
random (device, host) page pairs, as the core's StepPlan gives them. Timed, median of
`--repeats`: the plan copied device -> host and host -> device by the `kernel` backend (the core's
CPU loop or, with --device cuda, the CUDA kernels) and by the `direct` backend (per-layer torch
copies); and, as the baseline the issue names, one contiguous copy of the same number of bytes
(torch's copy_, a memcpy: on a GPU, cudaMemcpyAsync of one pinned block). On a GPU the same
pages are also copied by one cudaMemcpyAsync per page and buffer (`memcpy`, the reference the
kernels replace). Prints `RESULT transfer_ratio PAGE_SIZE DIRECTION BACKEND R`: GB/s of the plan
over GB/s of the plain copy (goal >= 0.7 for kernel).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pythia.kernels.kv_transfer import KVTransfer
from pythia.mem_cache.host_pool import HostKVPool
from pythia.mem_cache.kv_pool import KVPool


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up: first-touch page faults are not the copy's
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def memcpy_pages(copier: KVTransfer, pairs: np.ndarray, to_host: bool) -> None:
    """The same pages by one cudaMemcpyAsync per page and buffer (pythia._kv_cuda's reference)."""
    from pythia import _kv_cuda

    _kv_cuda.memcpy_kv_pages(copier.addresses, copier.device.num_pages, copier.host.buffer.data_ptr(),
                             copier.host.num_pages, copier.host.page_bytes, pairs, to_host,
                             torch.cuda.current_stream().cuda_stream)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--kv-heads", type=int, default=3)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--page-sizes", default="1,16,64")
    ap.add_argument("--pages", type=int, default=256, help="pages per plan")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    print(f"# bench_transfer: {args.layers} layers x {args.kv_heads} KV heads x {args.head_dim} dims, {args.dtype}, "
          f"{args.pages} pages per plan, device {device}, median of {args.repeats}")
    for page_size in (int(x) for x in args.page_sizes.split(",")):
        num_pages = 2 * args.pages
        pool = KVPool(args.layers, num_pages, page_size, args.kv_heads, args.head_dim, dtype, device)
        host = HostKVPool(pool, num_pages)
        device_pages = rng.permutation(num_pages)[:args.pages]
        host_pages = rng.permutation(num_pages)[:args.pages]
        to_host = np.stack([device_pages, host_pages], axis=1).astype(np.int32).reshape(-1)
        to_device = np.stack([host_pages, device_pages], axis=1).astype(np.int32).reshape(-1)
        nbytes = args.pages * host.num_buffers * host.page_bytes
        # The baseline: the same bytes as one contiguous block each way.
        block_dev = torch.empty(nbytes, dtype=torch.uint8, device=device)
        block_host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=device.type == "cuda")
        plain = {"d2h": timed(lambda: block_host.copy_(block_dev, non_blocking=True), args.repeats, sync),
                 "h2d": timed(lambda: block_dev.copy_(block_host, non_blocking=True), args.repeats, sync)}
        page_kib = host.num_buffers * host.page_bytes / 1024
        backends = ["kernel", "direct"] + (["memcpy"] if device.type == "cuda" else [])
        for backend in backends:
            copier = KVTransfer(pool, host, "direct" if backend == "memcpy" else backend)
            for direction, pairs, flag in (("d2h", to_host, True), ("h2d", to_device, False)):
                copy = (lambda p=pairs, f=flag: memcpy_pages(copier, p, f)) if backend == "memcpy" else \
                    (lambda p=pairs, f=flag: copier.copy(p, to_host=f))
                t = timed(copy, args.repeats, sync)
                gbps, plain_gbps = nbytes / t / 1e9, nbytes / plain[direction] / 1e9
                print(f"page {page_size:3d} tokens ({page_kib:.0f} KiB over {host.num_buffers} buffers) {direction} "
                      f"{backend:6s}: {gbps:6.2f} GB/s, plain copy {plain_gbps:6.2f} GB/s")
                print(f"RESULT transfer_ratio {page_size} {direction} {backend} {gbps / plain_gbps:.3f}")


if __name__ == "__main__":
    main()

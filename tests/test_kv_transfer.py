"""KV page copies between the device pool (layer-first) and the host pool (page-first): the
kernel backend (the core's CPU loop, or the CUDA kernels on a GPU) against the direct torch
backend and a plain per-page reference, across dtypes and page sizes; bad arguments fail by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pythia import _core
from pythia.kernels.kv_transfer import KVTransfer, cuda_kernels_available
from pythia.mem_cache.host_pool import HostKVPool
from pythia.mem_cache.kv_pool import KVPool

LAYERS, HEADS, DIM = 3, 2, 8


def pools(dtype: torch.dtype, page_size: int, device: str = "cpu", device_pages: int = 12, host_pages: int = 20):
    pool = KVPool(LAYERS, device_pages, page_size, HEADS, DIM, dtype, torch.device(device))
    gen = torch.Generator().manual_seed(page_size)
    for t in pool.k + pool.v:
        t.copy_(torch.randn(t.shape, generator=gen).to(dtype))
    return pool, HostKVPool(pool, host_pages)


def reference_page(pool: KVPool, page: int) -> list[torch.Tensor]:
    """Device page `page` of every buffer (K0, V0, K1, ...), as bytes."""
    s = pool.page_size
    return [t[page * s:(page + 1) * s].contiguous().view(torch.uint8).reshape(-1).cpu().clone()
            for pair in zip(pool.k, pool.v) for t in pair]


@pytest.mark.parametrize("backend", ["kernel", "direct"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("page_size", [1, 16, 64])
def test_pages_round_trip_through_host_memory_exactly(backend, dtype, page_size):
    device, host = pools(dtype, page_size)
    before = {p: reference_page(device, p) for p in range(device.num_pages)}
    copier = KVTransfer(device, host, backend)
    # Offload pages 3, 0, 7 to host pages 5, 19, 0 (any order, any ids)...
    copier.copy(np.array([3, 5, 0, 19, 7, 0], dtype=np.int32), to_host=True)
    for dev_page, host_page in ((3, 5), (0, 19), (7, 0)):
        for b, chunk in enumerate(before[dev_page]):
            assert torch.equal(host.page_view(host_page, b), chunk), (dev_page, b)
    # ... overwrite the device pool, and load them back elsewhere.
    for t in device.k + device.v:
        t.zero_()
    copier.copy(np.array([5, 10, 19, 1, 0, 4], dtype=np.int32), to_host=False)
    for host_page, dev_page, source in ((5, 10, 3), (19, 1, 0), (0, 4, 7)):
        assert all(torch.equal(a, b) for a, b in zip(reference_page(device, dev_page), before[source]))
    untouched = [p for p in range(device.num_pages) if p not in (10, 1, 4)]
    assert all(not reference_page(device, p)[0].any() for p in untouched), "a copy wrote outside its pages"


@pytest.mark.parametrize("pairs, message", [
    ([0, 1, 2], "pairs"),
    ([12, 0], "device page 12"),
    ([0, 20], "host page 20"),
    ([-1, 0], "device page -1"),
])
def test_bad_copies_are_refused_by_name_before_any_byte_moves(pairs, message):
    device, host = pools(torch.float32, 4)
    snapshot = host.buffer.clone()
    with pytest.raises(ValueError, match=message):
        KVTransfer(device, host, "kernel").copy(np.array(pairs, dtype=np.int32), to_host=True)
    assert torch.equal(host.buffer, snapshot)


def test_the_core_copy_checks_its_raw_arguments():
    device, host = pools(torch.float32, 4)
    addresses = [t.data_ptr() for pair in zip(device.k, device.v) for t in pair]
    with pytest.raises(ValueError, match="page_bytes"):
        _core.copy_kv_pages(addresses, device.num_pages, host.buffer.data_ptr(), host.num_pages, 0,
                            np.array([0, 0], dtype=np.int32), True)
    with pytest.raises(ValueError, match="null"):
        _core.copy_kv_pages([0] * len(addresses), device.num_pages, host.buffer.data_ptr(), host.num_pages,
                            host.page_bytes, np.array([0, 0], dtype=np.int32), True)


def test_an_unknown_backend_is_refused():
    device, host = pools(torch.float32, 4)
    with pytest.raises(ValueError, match="backend"):
        KVTransfer(device, host, "magic")


needs_gpu = pytest.mark.skipif(not cuda_kernels_available(),
                               reason="needs a CUDA GPU and the pythia._kv_cuda module (built where nvcc is found); "
                                      "this machine has no GPU")


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("page_size", [1, 16, 64])
def test_cuda_kernels_match_the_cpu_path(dtype, page_size):
    gpu_pool, gpu_host = pools(dtype, page_size, "cuda")
    cpu_pool, cpu_host = pools(dtype, page_size, "cpu")
    offload = np.array([3, 5, 0, 19, 7, 0], dtype=np.int32)
    load = np.array([5, 10, 19, 1, 0, 4], dtype=np.int32)
    for pool, host in ((gpu_pool, gpu_host), (cpu_pool, cpu_host)):
        copier = KVTransfer(pool, host, "kernel")
        copier.copy(offload, to_host=True)
        torch.cuda.synchronize()
        copier.copy(load, to_host=False)
        torch.cuda.synchronize()
    assert torch.equal(gpu_host.buffer, cpu_host.buffer)
    for p in range(cpu_pool.num_pages):
        assert all(torch.equal(a, b) for a, b in zip(reference_page(gpu_pool, p), reference_page(cpu_pool, p)))

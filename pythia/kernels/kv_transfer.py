"""KV page copies between the device pool (layer-first) and the host pool (page-first).

Backends (--hicache-io-backend):
- `kernel`: every page of every layer in one call. On a GPU, the CUDA gather/scatter of
  `pythia._kv_cuda` on a side stream; on the CPU, the core's copy loop (`_core.copy_kv_pages`),
  which shares its index arithmetic with the kernels (kv_layout.h).
- `direct`: per-layer torch copies of whole pages, the plain reference.
Both take flattened (source, destination) pairs as the core's StepPlan gives them.
"""

from __future__ import annotations

import numpy as np
import torch

from pythia import _core
from pythia.mem_cache.host_pool import HostKVPool
from pythia.mem_cache.kv_pool import KVPool

try:  # built only where nvcc was found, and usable only with a GPU
    from pythia import _kv_cuda
except ImportError:
    _kv_cuda = None


def cuda_kernels_available() -> bool:
    return _kv_cuda is not None and torch.cuda.is_available()


class KVTransfer:
    """Copies pages between `device` and `host` by the chosen backend."""

    def __init__(self, device: KVPool, host: HostKVPool, backend: str = "kernel") -> None:
        if backend not in ("kernel", "direct"):
            raise ValueError(f"unknown KV copy backend {backend!r} (known: kernel, direct)")
        self.device, self.host, self.backend = device, host, backend
        self.buffers = [t for pair in zip(device.k, device.v) for t in pair]  # K0, V0, K1, V1, ...
        self.on_gpu = self.buffers[0].is_cuda
        if self.on_gpu and backend == "kernel" and not cuda_kernels_available():
            raise ValueError("--hicache-io-backend kernel on a GPU needs the CUDA kernels (pythia._kv_cuda), "
                             "which this build lacks (nvcc was not found): use --hicache-io-backend direct")
        self.addresses = [t.data_ptr() for t in self.buffers]
        self.page_size = device.page_size

    def copy(self, pairs: np.ndarray, to_host: bool, stream: int = 0) -> None:
        """Copies pages for (source, destination) pairs; on a GPU it is enqueued on `stream`."""
        pairs = np.ascontiguousarray(pairs, dtype=np.int32).reshape(-1)
        if pairs.size == 0:
            return
        if self.backend == "direct":
            self._copy_direct(pairs, to_host)
        elif self.on_gpu:
            # The launcher checks the pairs on the host, then uploads them with the buffer table.
            _kv_cuda.copy_kv_pages(self.addresses, self.device.num_pages, self.host.buffer.data_ptr(),
                                   self.host.num_pages, self.host.page_bytes, pairs, to_host, stream)
        else:
            _core.copy_kv_pages(self.addresses, self.device.num_pages, self.host.buffer.data_ptr(),
                                self.host.num_pages, self.host.page_bytes, pairs, to_host)

    def _copy_direct(self, pairs: np.ndarray, to_host: bool) -> None:
        src, dst = pairs[0::2], pairs[1::2]
        device_pages, host_pages = (src, dst) if to_host else (dst, src)
        if (device_pages.min() < 0 or device_pages.max() >= self.device.num_pages or host_pages.min() < 0
                or host_pages.max() >= self.host.num_pages):
            raise ValueError("KV copy: a page id is outside its pool")
        host = self.host.buffer.view(self.host.num_pages, len(self.buffers), self.host.page_bytes)
        for b, buf in enumerate(self.buffers):
            # The device buffer's pages as rows of bytes.
            rows = buf.view(self.device.num_pages, -1).view(torch.uint8)
            dev_idx = torch.from_numpy(device_pages.astype(np.int64)).to(buf.device)
            host_idx = torch.from_numpy(host_pages.astype(np.int64))
            if to_host:
                host[host_idx, b] = rows.index_select(0, dev_idx).cpu()
            else:
                rows.index_copy_(0, dev_idx, host[host_idx, b].to(buf.device))

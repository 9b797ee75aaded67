"""The host KV pool: the second tier below the device pool (issue #14, ARCHITECTURE.md §3-4).

Layout "page-first" (cpp/include/pythia/kv_layout.h): one buffer in which host page p holds
its chunk of each of the device pool's 2 * num_layers buffers (layer l's K, then its V) back to
back, so a page crosses to or from host memory as one contiguous run. Pinned when the device
pool is on a GPU, so that copies can be asynchronous.
"""

from __future__ import annotations

import torch

from pythia.mem_cache.kv_pool import KVPool


class HostKVPool:
    def __init__(self, device_pool: KVPool, num_pages: int) -> None:
        if num_pages <= 0:
            raise ValueError("the host KV pool needs at least one page")
        self.num_pages = num_pages
        self.num_buffers = 2 * len(device_pool.k)
        first = device_pool.k[0]
        self.page_bytes = device_pool.page_size * first.shape[1] * first.shape[2] * first.element_size()
        pin = first.is_cuda and torch.cuda.is_available()
        # Bytes, not the KV dtype: the copies move pages, they never read values.
        self.buffer = torch.zeros(num_pages * self.num_buffers * self.page_bytes, dtype=torch.uint8,
                                  pin_memory=pin)
        self.dtype = first.dtype

    @property
    def bytes(self) -> int:
        return self.buffer.numel()

    def page_view(self, page: int, buffer: int) -> torch.Tensor:
        """Host page `page`'s chunk of device buffer `buffer` (2l: layer l's K, 2l + 1: its V), as raw
        bytes (for tests and the direct backend)."""
        start = (page * self.num_buffers + buffer) * self.page_bytes
        return self.buffer[start:start + self.page_bytes]

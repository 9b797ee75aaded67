"""The device KV pool: one K and one V tensor per layer, addressed by token slot."""

from __future__ import annotations

import numpy as np
import torch


def page_slots(pages: np.ndarray, positions: np.ndarray, page_size: int) -> np.ndarray:
    """KV slots of token `positions` of a sequence whose pages are `pages` (its page table):
    position p lives at slot pages[p // page_size] * page_size + p % page_size."""
    return pages[positions // page_size] * page_size + positions % page_size


class KVPool:
    """K/V storage for `num_pages` pages of `page_size` tokens.

    Slot `page * page_size + offset` holds the K/V of one token, so a page id from the C++
    core maps to a contiguous run of slots. Layout per layer: [num_slots, num_kv_heads, head_dim]
    (slot-major), which makes writing a step's new tokens one index_copy_ per layer.
    """

    def __init__(self, num_layers: int, num_pages: int, page_size: int, num_kv_heads: int,
                 head_dim: int, dtype: torch.dtype, device: torch.device) -> None:
        self.page_size = page_size
        self.num_pages = num_pages
        shape = (num_pages * page_size, num_kv_heads, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]

    @property
    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

"""Imports SGLang's own Python radix cache (sglang.srt.mem_cache.radix_cache) for side-by-side runs.

With the light install (sglang --no-deps, no torchvision) `import radix_cache` fails: its module
`base_prefix_cache` imports `memory_pool` and `allocator` for type annotations only, and those pull
in every model config, torchvision included. Placeholders stand in for those two modules (and for
the metrics collector, used only with enable_metrics=True) just for the duration of the import;
the radix tree code itself is SGLang's, unmodified, and runs as SGLang runs it.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from array import array

_ANNOTATION_ONLY = {
    "sglang.srt.mem_cache.memory_pool": ("ReqToTokenPool",),
    "sglang.srt.mem_cache.allocator": ("BaseTokenToKVPoolAllocator",),
    "sglang.srt.observability.metrics_collector": (
        "STAT_LOGGER_ROLE_RADIX_CACHE", "RadixCacheMetricsCollector",
        "radix_cache_metric_labels", "resolve_collector_class"),
}


def _import_radix_cache() -> types.ModuleType:
    added = []
    for name, attrs in _ANNOTATION_ONLY.items():
        if name in sys.modules:
            continue
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        for attr in attrs:
            setattr(module, attr, type(attr, (), {"__module__": name}))
        sys.modules[name] = module
        added.append(name)
    try:
        from sglang.srt.mem_cache import radix_cache
    finally:
        for name in added:
            sys.modules.pop(name, None)
    return radix_cache


class _NoPoolAllocator:
    """What RadixCache.evict() calls on the KV allocator; there is no KV memory here."""

    device = "cpu"

    def free_segment(self, free_index, *, start_pos: int = 0) -> None:
        pass


class SGLangRadixCache:
    """SGLang's RadixCache with no memory pools: match, insert and LRU eviction of token sequences."""

    def __init__(self, page_size: int) -> None:
        radix_cache = _import_radix_cache()
        from sglang.srt.mem_cache.base_prefix_cache import EvictParams, InsertParams, MatchPrefixParams
        from sglang.srt.mem_cache.cache_init_params import CacheInitParams

        self._key = radix_cache.RadixKey
        self._insert_params = InsertParams
        self._match_params = MatchPrefixParams
        self._evict_params = EvictParams
        self.cache = radix_cache.RadixCache(CacheInitParams(
            disable=False, req_to_token_pool=None, token_to_kv_pool_allocator=_NoPoolAllocator(),
            page_size=page_size))

    def key(self, tokens: list[int]):
        return self._key(array("q", tokens))

    def match(self, key) -> int:
        """Matched prefix length in tokens."""
        return self.cache.match_prefix(self._match_params(key=key)).device_prefix_len

    def insert(self, key, kv_indices) -> int:
        """Caches the sequence; returns the prefix length that was already cached."""
        return self.cache.insert(self._insert_params(key=key, value=kv_indices)).prefix_len

    def evictable_tokens(self) -> int:
        return self.cache.evictable_size()

    def evict(self, num_tokens: int) -> int:
        return self.cache.evict(self._evict_params(num_tokens=num_tokens)).num_tokens_evicted

"""Which replica a request goes to: routing rules as pure functions, and the router's state.

Round-robin, and SGLang's router's `cache_aware` policy (sgl-router): when the replicas' loads
are imbalanced - the busiest has more than `balance_abs` requests over the idlest and more than
`balance_rel` times its load - the request goes to the least loaded; otherwise to the replica
whose routed prompts share the longest prefix with it, if that prefix is more than
`cache_threshold` of the prompt, else to the replica whose prefix index is smallest (the most
room in its cache). Like SGLang's router, it knows the prompts it routed, not the replicas'
caches: an evicted prefix still attracts requests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROUTERS = ["round-robin", "cache-aware"]


def round_robin(counter: int, num_replicas: int) -> int:
    return counter % num_replicas


def cache_aware(matched: Sequence[int], prompt_len: int, loads: Sequence[int], index_sizes: Sequence[int],
                cache_threshold: float = 0.5, balance_abs: int = 32, balance_rel: float = 1.0001) -> int:
    """The replica for a prompt of `prompt_len` tokens, given each replica's matched prefix
    (tokens), load (requests in it) and index size (entries). Ties go to the lowest index."""
    hi, lo = max(loads), min(loads)
    if hi - lo > balance_abs and hi > balance_rel * lo:
        return loads.index(lo)
    best = max(range(len(matched)), key=lambda i: (matched[i], -i))
    if matched[best] > cache_threshold * prompt_len:
        return best
    return min(range(len(index_sizes)), key=lambda i: (index_sizes[i], i))


# A polynomial prefix hash over pages (64-bit, wrapping): page k's prefix hash is
# sum over pages j <= k of (page j's hash) * R^j, so every prefix comes out of one cumulative sum.
# Random odd multipliers make two different prefixes collide with probability ~2^-64 each.
_MULTIPLIERS = np.random.default_rng(0x9E3779B9).integers(1, 2**63, 4096, dtype=np.uint64) | np.uint64(1)
_R = np.uint64(0x100000001B3)


def page_hashes(prompt: Sequence[int], page_size: int) -> list[int]:
    """Each whole page's prefix as a hash of its pages, in one vectorized pass (linear in the
    prompt's length). Computed once per routed prompt and looked up in every replica's index."""
    if page_size > len(_MULTIPLIERS):
        raise ValueError(f"page size {page_size} is above the {len(_MULTIPLIERS)} tokens page_hashes handles")
    tokens = np.asarray(prompt, dtype=np.int64)
    n = len(tokens) // page_size
    if n == 0:
        return []
    pages = (tokens[:n * page_size].reshape(n, page_size).astype(np.uint64) + np.uint64(1))
    with np.errstate(over="ignore"):
        page_h = (pages * _MULTIPLIERS[:page_size]).sum(axis=1, dtype=np.uint64)
        powers = np.cumprod(np.full(n, _R, dtype=np.uint64), dtype=np.uint64)
        return np.cumsum(page_h * powers, dtype=np.uint64).tolist()


class PrefixIndex:
    """The page-aligned prefixes of the prompts routed to one replica, by `page_hashes`. It
    never forgets: SGLang's router trims its tree on a timer, which a simulated run of minutes
    would rarely reach."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.prefixes: set[int] = set()

    def matched(self, hashes: Sequence[int]) -> int:
        """Tokens of the longest routed prefix a prompt with these page hashes starts with. Every
        prefix of a routed prompt is in the index, so the pages present form a run from the
        first: a binary search finds its end."""
        lo, hi = 0, len(hashes)  # hashes[:lo] are all present; hashes[hi:] are not known to be
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if hashes[mid - 1] in self.prefixes:
                lo = mid
            else:
                hi = mid - 1
        return lo * self.page_size

    def insert(self, hashes: Sequence[int]) -> None:
        self.prefixes.update(hashes)

    def __len__(self) -> int:
        return len(self.prefixes)


class Router:
    """Routes each request of a simulated run to one of `num_replicas` replicas by `policy`."""

    def __init__(self, policy: str, num_replicas: int, page_size: int) -> None:
        if policy not in ROUTERS:
            raise ValueError(f"unknown router {policy!r} (known: {', '.join(ROUTERS)})")
        if num_replicas < 1:
            raise ValueError("--replicas must be at least 1")
        self.policy = policy
        self.num_replicas = num_replicas
        self.page_size = page_size
        self.indexes = [PrefixIndex(page_size) for _ in range(num_replicas)]
        self.counter = 0

    def choose(self, prompt: Sequence[int], loads: Sequence[int]) -> int:
        if self.policy == "round-robin":
            replica = round_robin(self.counter, self.num_replicas)
            self.counter += 1
        else:
            hashes = page_hashes(prompt, self.page_size)
            replica = cache_aware([ix.matched(hashes) for ix in self.indexes], len(prompt), loads,
                                  [len(ix) for ix in self.indexes])
            self.indexes[replica].insert(hashes)
        return replica

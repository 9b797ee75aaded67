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


class PrefixIndex:
    """The page-aligned prefixes of the prompts routed to one replica, each as a chained hash of
    its pages (linear in the prompt's length, where hashing every prefix whole would be
    quadratic). It never forgets: SGLang's router trims its tree on a timer, which a simulated
    run of minutes would rarely reach."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.prefixes: set[int] = set()

    def _hashes(self, prompt: Sequence[int]) -> list[int]:
        out, h, p = [], 0, self.page_size
        for start in range(0, len(prompt) - p + 1, p):
            h = hash((h, tuple(prompt[start:start + p])))
            out.append(h)
        return out

    def matched(self, prompt: Sequence[int]) -> int:
        """Tokens of the longest routed prefix `prompt` starts with (whole pages)."""
        n = 0
        for h in self._hashes(prompt):
            if h not in self.prefixes:
                break
            n += self.page_size
        return n

    def insert(self, prompt: Sequence[int]) -> None:
        self.prefixes.update(self._hashes(prompt))

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
        self.indexes = [PrefixIndex(page_size) for _ in range(num_replicas)]
        self.counter = 0

    def choose(self, prompt: Sequence[int], loads: Sequence[int]) -> int:
        if self.policy == "round-robin":
            replica = round_robin(self.counter, self.num_replicas)
            self.counter += 1
        else:
            replica = cache_aware([ix.matched(prompt) for ix in self.indexes], len(prompt), loads,
                                  [len(ix) for ix in self.indexes])
            self.indexes[replica].insert(prompt)
        return replica

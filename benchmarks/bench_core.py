"""Scheduler-core benchmark: step latency, and radix match+insert against SGLang's Python radix cache.

    python -m benchmarks.bench_core [--requests N] [--steps N]

1. One schedule()+update() step through the Python bindings, with 1,000 waiting and 256
   running (decoding) requests and 100,000 cached pages in the radix tree: median over steps.
2. Match+insert of prompts up to 8k tokens whose sharing replays the Mooncake conversation
   trace (equal hash ids -> equal 512-token blocks), on Pythia's tree and on SGLang's
   `sglang.srt.mem_cache.radix_cache.RadixCache`, same sequences, same page size, same run;
   page sizes 1 and 16, unbounded and with a capacity (LRU eviction). Pythia runs twice: one
   Python call per operation (as SGLang's tree is driven) and all operations in one call (as
   the scheduler drives the tree inside the core). Unbounded, the matched lengths of Pythia
   and SGLang are compared request by request.
Ends with `RESULT schedule_step_us <median>` and `RESULT radix_speedup_vs_sglang <ratio>`.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from pythia import _core

ROOT = Path(__file__).resolve().parent
TRACE = ROOT.parent.parent / "shared" / "traces" / "mooncake_conversation_trace.jsonl"
BLOCK_TOKENS = 512
MAX_PROMPT = 8192
VOCAB = 32000


def bench_step(steps: int) -> float:
    """Median µs of schedule()+update() with 1,000 waiting, 256 running, 100,000 cached pages."""
    page, cached_pages, running, waiting = 16, 100_000, 256, 1000
    config = _core.SchedulerConfig()
    config.page_size = page
    config.num_device_pages = cached_pages + running * 64 + 1024
    # Caps the batch at 256, so that the 1,000 later requests stay waiting.
    config.max_running_requests = running
    config.max_batch_tokens = 1 << 22
    config.schedule_policy = "lpm"
    sched = _core.Scheduler(config)
    rng = np.random.default_rng(0)

    def drive_until(done) -> None:
        while not done():
            plan = sched.schedule()
            n = len(plan.req_ids)
            sched.update(plan.req_ids, rng.integers(0, VOCAB, n, dtype=np.int32), np.zeros(n, bool))

    # Fill the prefix cache: prefill-only requests of 1,600 tokens (100 pages) each.
    prompt_len = 1600
    for rid in range(cached_pages * page // prompt_len):
        sched.add_request(rid, rng.integers(0, VOCAB, prompt_len, dtype=np.int32), 0)
    drive_until(lambda: sched.stats().num_waiting + sched.stats().num_running == 0)
    assert sched.stats().evictable_pages == cached_pages, sched.stats()

    base = 1_000_000
    for i in range(running):
        sched.add_request(base + i, rng.integers(0, VOCAB, 512, dtype=np.int32), 100_000)
    drive_until(lambda: sched.stats().num_running == running and sched.stats().num_waiting == 0)
    for i in range(waiting):
        sched.add_request(2 * base + i, rng.integers(0, VOCAB, 512, dtype=np.int32), 100_000)

    times = []
    tokens = np.zeros(running, np.int32)
    finished = np.zeros(running, bool)
    for _ in range(steps):
        t0 = time.perf_counter()
        plan = sched.schedule()
        sched.update(plan.req_ids, tokens[: len(plan.req_ids)], finished[: len(plan.req_ids)])
        times.append((time.perf_counter() - t0) * 1e6)
    stats = sched.stats()
    sched.check_integrity()
    print(f"step: {len(plan['req_ids'])} in batch, {stats['num_waiting']} waiting, "
          f"{stats['evictable_pages'] + stats['protected_pages']} cached pages; "
          f"median {statistics.median(times):.1f} us, p90 {np.percentile(times, 90):.1f} us")
    return statistics.median(times)


def trace_sequences(limit: int) -> list[np.ndarray]:
    """Token sequences whose sharing structure replays the trace's hash ids."""
    blocks: dict[int, np.ndarray] = {}
    sequences = []
    with open(TRACE) as f:
        for line in f:
            if len(sequences) >= limit:
                break
            row = json.loads(line)
            length = min(row["input_length"], MAX_PROMPT)
            parts = []
            for h in row["hash_ids"][: (length + BLOCK_TOKENS - 1) // BLOCK_TOKENS]:
                if h not in blocks:
                    blocks[h] = np.random.default_rng(h).integers(0, VOCAB, BLOCK_TOKENS, dtype=np.int32)
                parts.append(blocks[h])
            sequences.append(np.concatenate(parts)[:length])
    return sequences


def bench_radix(sequences: list[np.ndarray], page: int, capacity: int | None,
                repeats: int) -> dict[str, float]:
    """Match+insert of every sequence on Pythia's tree and on SGLang's, same run.

    With `capacity` (tokens), each insert is followed by LRU eviction down to the capacity, as a
    server's finite KV pool forces; without it the trees grow without bound. Each variant runs
    `repeats` times on a fresh tree, the variants alternating; medians are reported.
    """
    import torch

    from benchmarks.sglang_radix import SGLangRadixCache

    page_ids = [np.arange(len(s) // page, dtype=np.int32) + i * (MAX_PROMPT // page)
                for i, s in enumerate(sequences)]
    flat = np.concatenate(sequences)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sequences])]).astype(np.int64)
    flat_pages = np.concatenate(page_ids)
    keys = SGLangRadixCache(page_size=page).key
    sglang_keys = [keys(s.tolist()) for s in sequences]
    sglang_values = [torch.arange(i * MAX_PROMPT, i * MAX_PROMPT + len(s), dtype=torch.int64)
                     for i, s in enumerate(sequences)]

    def pythia_per_call() -> list[int]:
        """Driven from Python one call per operation, as SGLang's tree is driven."""
        tree = _core.PrefixTree(page_size=page)
        matched = []
        for seq, pages in zip(sequences, page_ids):
            matched.append(len(tree.match_prefix(seq)) * page)
            tree.insert(seq, pages)
            if capacity is not None:
                over = tree.evictable_pages - capacity // page
                if over > 0:
                    tree.evict(over)
        tree.check_integrity()
        return matched

    def pythia_in_core() -> list[int]:
        """The same operations in one call, as the scheduler runs them inside the core."""
        tree = _core.PrefixTree(page_size=page)
        matched = tree.match_insert_many(flat, offsets, flat_pages,
                                         -1 if capacity is None else capacity // page)
        tree.check_integrity()
        return (matched * page).tolist()

    def sglang() -> list[int]:
        tree = SGLangRadixCache(page_size=page)
        matched = []
        for key, value in zip(sglang_keys, sglang_values):
            matched.append(tree.match(key))
            tree.insert(key, value)
            if capacity is not None:
                over = tree.evictable_tokens() - capacity
                if over > 0:
                    tree.evict(over)
        return matched

    variants = {"pythia_per_call": pythia_per_call, "pythia_in_core": pythia_in_core, "sglang": sglang}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    matched: dict[str, list[int]] = {}
    for _ in range(repeats):
        for name, run in variants.items():
            # SGLang's nodes reference their parents, so a finished tree lingers until the cycle
            # collector runs; collect it here and keep the collector out of every timed run.
            gc.collect()
            gc.disable()
            t0 = time.perf_counter()
            matched[name] = run()
            seconds[name].append(time.perf_counter() - t0)
            gc.enable()
    med = {name: statistics.median(times) for name, times in seconds.items()}

    assert matched["pythia_in_core"] == matched["pythia_per_call"], "batched and per-call runs disagree"
    if capacity is None and matched["pythia_per_call"] != matched["sglang"]:
        # Without eviction both trees must find exactly the same prefixes.
        bad = next(i for i, (a, b) in enumerate(zip(matched["pythia_per_call"], matched["sglang"])) if a != b)
        sys.exit(f"matched lengths differ at request {bad}: pythia {matched['pythia_per_call'][bad]}, "
                 f"sglang {matched['sglang'][bad]}")
    n, total = len(sequences), len(flat)
    mode = f"capacity {capacity / 1e6:.0f}M tokens" if capacity else "unbounded"
    hit = {name: sum(m) / total for name, m in matched.items()}
    print(f"radix page_size={page:<2} {mode:>19}: {n} requests, {total / 1e6:.1f}M tokens; "
          f"sglang {med['sglang'] * 1e6 / n:6.1f} us/req (hit {hit['sglang']:.1%}); "
          f"pythia per call {med['pythia_per_call'] * 1e6 / n:5.1f} us/req (hit {hit['pythia_per_call']:.1%}, "
          f"{med['sglang'] / med['pythia_per_call']:.1f}x), in core {med['pythia_in_core'] * 1e6 / n:5.1f} "
          f"us/req ({med['sglang'] / med['pythia_in_core']:.1f}x)")
    return {"speedup": med["sglang"] / med["pythia_per_call"],
            "speedup_in_core": med["sglang"] / med["pythia_in_core"]}


def retain_freed_memory() -> None:
    """Keeps glibc from handing freed memory back to the kernel between runs.

    The unbounded runs build trees of ~100 MB; with glibc's defaults each repeat gets its memory
    from the kernel afresh and pays a page fault per 4 KiB, which on these VMs costs more than
    the tree work and varies from run to run. Retaining freed memory (as jemalloc or tcmalloc
    would) removes that noise for both implementations alike.
    """
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 30)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000, help="trace requests replayed in the radix benchmark")
    parser.add_argument("--steps", type=int, default=300, help="steps timed in the step benchmark")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each radix variant (median)")
    parser.add_argument("--capacity", type=int, default=2_000_000,
                        help="tokens the bounded radix run keeps cached (LRU eviction beyond)")
    args = parser.parse_args()
    retain_freed_memory()

    step_us = bench_step(args.steps)

    sequences = trace_sequences(args.requests)
    runs = {}
    for page in (1, 16):
        for capacity in (None, args.capacity):
            runs[page, capacity] = bench_radix(sequences, page, capacity, args.repeats)

    print(f"RESULT schedule_step_us {step_us:.1f}")
    # Headline: page size 16, unbounded tree, both trees driven one Python call per operation.
    print(f"RESULT radix_speedup_vs_sglang {runs[16, None]['speedup']:.1f}")
    print(f"RESULT radix_speedup_vs_sglang_in_core {runs[16, None]['speedup_in_core']:.1f}")
    print(f"RESULT radix_speedup_vs_sglang_bounded {runs[16, args.capacity]['speedup']:.1f}")
    print(f"RESULT radix_speedup_vs_sglang_page1 {runs[1, None]['speedup']:.1f}")


if __name__ == "__main__":
    main()

"""The scheduler core through its pybind11 bindings: the same schedule/update cycle the engine runs."""

from __future__ import annotations

import numpy as np
import pytest

from pythia import _core


def make_scheduler(page_size: int = 4, pages: int = 64, batch_tokens: int = 16, policy: str = "fcfs",
                   max_running: int = 8) -> _core.Scheduler:
    config = _core.SchedulerConfig()
    config.page_size = page_size
    config.num_device_pages = pages
    config.max_batch_tokens = batch_tokens
    config.schedule_policy = policy
    config.max_running_requests = max_running
    return _core.Scheduler(config)


def next_token(seq: np.ndarray) -> int:
    """A deterministic stand-in for the model: depends on the whole sequence."""
    return int((seq.astype(np.int64) * np.arange(1, len(seq) + 1)).sum() % 97)


def reference(prompt: list[int], max_new: int) -> list[int]:
    seq = list(prompt)
    for _ in range(max_new):
        seq.append(next_token(np.array(seq)))
    return seq[len(prompt):]


def run(sched: _core.Scheduler, prompts: dict[int, list[int]], max_steps: int = 1000) -> dict[int, list[int]]:
    """Drives schedule/update to completion; returns each request's output."""
    outputs: dict[int, list[int]] = {}
    for _ in range(max_steps):
        stats = sched.stats()
        if stats.num_running + stats.num_waiting == 0:
            return outputs
        plan = sched.schedule()
        n = len(plan.req_ids)
        assert plan.page_table_offsets.shape == (n + 1,)
        assert plan.input_ids.shape == (int(plan.num_tokens.sum()),)
        tokens = np.zeros(n, dtype=np.int32)
        for i, rid in enumerate(plan.req_ids):
            seq = sched.tokens(int(rid))
            start, count = plan.start_pos[i], plan.num_tokens[i]
            offset = int(plan.num_tokens[:i].sum())
            np.testing.assert_array_equal(plan.input_ids[offset:offset + count], seq[start:start + count])
            if plan.samples[i]:
                tokens[i] = next_token(seq)
                outputs[int(rid)] = list(seq[len(prompts[int(rid)]):]) + [int(tokens[i])]
        sched.update(plan.req_ids, tokens, np.zeros(n, dtype=bool))
        sched.check_integrity()
    raise AssertionError("requests did not finish")


def test_cycle_produces_each_requests_own_tokens_and_reuses_the_shared_prefix():
    sched = make_scheduler()
    system = list(range(20))
    prompts = {i: system + [100 + i, 101 + i] for i in range(5)}
    for rid, prompt in prompts.items():
        sched.add_request(rid, np.array(prompt, dtype=np.int32), 6, tags=_core.WorkflowTags(type=1, job=rid, agent=0))
    outputs = run(sched, prompts)
    for rid, prompt in prompts.items():
        assert outputs[rid][:6] == reference(prompt, 6)
    stats = sched.stats()
    assert stats.cached_prompt_tokens > 0, "requests after the first share the 20-token system prompt"
    assert stats.prompt_tokens == sum(len(p) for p in prompts.values())
    sched.check_integrity()


def test_chunked_prefill_plan_arrays():
    sched = make_scheduler(batch_tokens=8)
    sched.add_request(7, list(range(20)), 2)  # a list is accepted as well as an array
    plan = sched.schedule()
    assert plan.req_ids.tolist() == [7]
    assert plan.num_tokens.tolist() == [8]
    assert plan.samples.tolist() == [False]
    assert plan.page_table.tolist() == [0, 1]  # pages are allocated chunk by chunk
    sched.update(plan.req_ids, np.zeros(1, np.int32), np.zeros(1, bool))
    plan = sched.schedule()
    assert plan.start_pos.tolist() == [8]
    assert plan.page_table.tolist() == [0, 1, 2, 3]
    sched.update(plan.req_ids, np.zeros(1, np.int32), np.zeros(1, bool))
    sched.check_integrity()


def test_caller_finish_flag_and_abort_free_pages():
    sched = make_scheduler()
    sched.add_request(1, list(range(10)), 100)
    sched.add_request(2, list(range(50, 60)), 100)
    plan = sched.schedule()
    done = sched.update(plan.req_ids, np.array([5, 6], np.int32), np.array([True, False]))
    assert done.tolist() == [1]
    assert not sched.has_request(1)
    assert sched.abort(2) is True
    assert sched.abort(2) is False
    sched.check_integrity()
    stats = sched.stats()
    assert stats.free_pages + stats.evictable_pages == 64
    assert sched.flush_cache() == stats.evictable_pages
    assert sched.stats().free_pages == 64


def test_bad_input_raises_clear_errors_and_leaves_state_intact():
    sched = make_scheduler(pages=8)
    sched.add_request(1, [1, 2, 3], 2)
    with pytest.raises(ValueError, match="already in use"):
        sched.add_request(1, [1, 2, 3], 2)
    with pytest.raises(ValueError, match="empty prompt"):
        sched.add_request(2, [], 2)
    with pytest.raises(ValueError, match="negative"):
        sched.add_request(3, [1], -1)
    with pytest.raises(ValueError, match="KV pages"):
        sched.add_request(4, list(range(40)), 1)
    with pytest.raises(ValueError, match="1-D"):
        sched.add_request(5, np.zeros((2, 2), np.int32), 1)
    plan = sched.schedule()
    with pytest.raises(RuntimeError, match="awaits update"):
        sched.schedule()
    with pytest.raises(ValueError, match="equal lengths"):
        sched.update(plan.req_ids, np.zeros(3, np.int32), np.zeros(1, bool))
    sched.update(plan.req_ids, np.zeros(1, np.int32), np.zeros(1, bool))
    assert sched.stats().num_running == 1
    sched.check_integrity()


def test_unknown_policy_is_rejected_by_name():
    config = _core.SchedulerConfig()
    config.schedule_policy = "random"
    with pytest.raises(ValueError, match="fcfs, lpm"):
        _core.Scheduler(config)
    assert "lru" in _core.eviction_policy_names()


def test_prefix_tree_match_insert_evict():
    tree = _core.PrefixTree(page_size=2)
    a = np.arange(8, dtype=np.int32)
    assert tree.insert(a, np.array([10, 11, 12, 13], np.int32)) == 0
    b = a.copy()
    b[5] = 99
    assert tree.insert(b, np.array([20, 21, 22, 23], np.int32)) == 2
    assert tree.match_prefix(b).tolist() == [10, 11, 22, 23]
    assert tree.peek_prefix_pages(a[:5]) == 2
    assert tree.evictable_pages == 6
    assert tree.evict(1).tolist() == [12, 13]  # a's tail is the least recently used leaf
    tree.check_integrity()


def test_prefix_tree_reads_int32_arrays_in_place_and_converts_anything_else():
    tree = _core.PrefixTree(page_size=2)
    assert tree.insert([0, 1, 2, 3], [5, 6]) == 0  # lists are converted
    assert tree.match_prefix(np.arange(4, dtype=np.int64)).tolist() == [5, 6]  # other dtypes too
    assert tree.match_prefix(np.arange(8, dtype=np.int32)[::2]).tolist() == []  # a strided view: 0, 2, ...
    big_endian = np.arange(4, dtype=">i4")
    assert tree.peek_prefix_pages(big_endian) == 2
    matched = tree.match_prefix(np.arange(4, dtype=np.int32))
    assert matched.dtype == np.int32 and matched.flags["C_CONTIGUOUS"] and matched.tolist() == [5, 6]
    with pytest.raises(ValueError, match="1-D"):
        tree.match_prefix(np.zeros((2, 2), np.int32))
    with pytest.raises(TypeError):
        tree.match_prefix("abc")
    with pytest.raises(ValueError, match="pages need"):
        tree.insert(np.arange(2, dtype=np.int32), np.arange(3, dtype=np.int32))
    assert tree.evict(5).tolist() == [5, 6]
    tree.check_integrity()

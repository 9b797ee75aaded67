"""Workload generators: deterministic per seed, and shaped as WORKLOADS.md says."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.workloads import GENERATORS, load_workload, save_workload
from benchmarks.workloads.coding_agent import CALLS_PER_TURN_MEAN, TURNS_MEAN
from benchmarks.workloads.mooncake import TRACES

needs_traces = pytest.mark.skipif(not TRACES.is_dir(), reason=f"the public traces are not at {TRACES} "
                                  "(they come with the project's shared/ folder beside the clone)")


def generator_params():
    return [pytest.param(n, marks=needs_traces) if n.startswith("mooncake") else n for n in sorted(GENERATORS)]


@pytest.mark.parametrize("name", generator_params())
def test_same_seed_same_workload_and_valid_graphs(name, tmp_path):
    a, b = GENERATORS[name](scale="cpu", seed=3), GENERATORS[name](scale="cpu", seed=3)
    assert a == b
    for job in a.jobs:
        job.check()
    save_workload(a, tmp_path / "w.jsonl")
    assert load_workload(tmp_path / "w.jsonl") == a
    if not name.startswith("mooncake"):
        assert GENERATORS[name](scale="cpu", seed=4) != a


def test_coding_agent_matches_published_session_statistics():
    w = GENERATORS["coding-agent"](scale="gpu", seed=0, num_jobs=600)
    turns = [sum(1 for c in j.calls if c.id.endswith("c0")) for j in w.jobs]
    calls_per_turn = sum(len(j.calls) for j in w.jobs) / sum(turns)
    assert abs(np.mean(turns) - TURNS_MEAN) / TURNS_MEAN < 0.10
    assert abs(calls_per_turn - CALLS_PER_TURN_MEAN) / CALLS_PER_TURN_MEAN < 0.10
    gaps = [c.gap_s for j in w.jobs for c in j.calls if not c.id.endswith("c0")]
    assert 0.8 < np.median(gaps) < 1.25, "tool time has a median near one second"
    assert np.percentile(gaps, 99) > 5 * np.median(gaps), "and a heavy tail"
    # Every call extends the previous one's prompt: the context grows within a session.
    assert all(c.parent == prev.id for j in w.jobs for prev, c in zip(j.calls, j.calls[1:]))


def test_prompt_to_completion_ratio_is_agent_like():
    w = GENERATORS["coding-agent"](scale="gpu", seed=1, num_jobs=200)
    prompt, completion = 0, 0
    for job in w.jobs:
        body = 0
        for call in job.calls:
            body += call.fresh_tokens
            prompt += w.agents[call.agent] + body
            body += call.output_tokens
            completion += call.output_tokens
    assert 60 < prompt / completion < 250  # the trace reports about 128:1


def test_multi_agent_dag_fans_out_to_two_to_four_engineers():
    w = GENERATORS["multi-agent-dag"](scale="cpu", seed=0, num_jobs=200)
    fan_out = [sum(1 for c in j.calls if c.id.startswith("code")) for j in w.jobs]
    assert set(fan_out) == {2, 3, 4}
    loops = [sum(1 for c in j.calls if c.id.startswith("fix")) for j in w.jobs]
    assert max(loops) <= 2 and 0.25 < np.mean([n > 0 for n in loops]) < 0.55


def test_long_context_mix_has_repository_sized_contexts():
    w = GENERATORS["long-context-mix"](scale="gpu", seed=0, num_jobs=300)
    first = np.array([j.calls[0].fresh_tokens for j in w.jobs])
    long = first > 8 * np.median(first)
    assert 0.10 <= long.mean() <= 0.20


def test_scales_shrink_tokens_not_structure():
    gpu = GENERATORS["peer"](scale="gpu", seed=0, num_jobs=10)
    cpu = GENERATORS["peer"](scale="cpu", seed=0, num_jobs=10)
    assert [len(j.calls) for j in gpu.jobs] == [len(j.calls) for j in cpu.jobs]
    assert sum(cpu.agents.values()) * 12 < sum(gpu.agents.values())


@needs_traces
def test_mooncake_blocks_share_prefixes():
    w = GENERATORS["mooncake-conversation"](scale="cpu", num_jobs=50)
    firsts = [j.calls[0].blocks[0] for j in w.jobs]
    assert len(set(firsts)) < len(firsts), "requests share leading blocks"

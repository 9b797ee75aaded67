"""The host KV tier in the real engine: greedy output is identical token for token with and
without it, through evict -> offload -> load cycles, on the tiny model and on SmolLM2; the pages
that come back are counted as host hits; nothing leaks."""

from __future__ import annotations

import pytest

from pythia.managers.engine import Engine
from pythia.managers.io_struct import GenerateRequest, WorkflowMeta
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs

# A pool of 16 pages of 16 tokens: three 100-token contexts do not fit together.
POOL = dict(max_total_tokens=256, page_size=16, chunked_prefill_size=256)


def run(engine: Engine, rid: str, prompt: list[int], job: str, max_new_tokens: int = 8):
    req = GenerateRequest(rid=rid, input_ids=prompt,
                          params=SamplingParams(max_new_tokens=max_new_tokens, temperature=0, ignore_eos=True),
                          workflow=WorkflowMeta(type="chat", id=job, agent="assistant"))
    assert engine.add_request(req) is None
    outputs = []
    while engine.has_work():
        outputs += [o for o in engine.step() if o.finished]
    engine.check_integrity()
    (out,) = [o for o in outputs if o.rid == rid]
    return out


def conversation(engine: Engine, vocab: int) -> tuple[list[list[int]], list]:
    """Three jobs take turns; each turn's prompt is the job's previous prompt and answer plus new
    text, so a job's context must come back after the other two evicted it."""
    contexts = {job: [(7 * job + 11 * i) % (vocab - 10) + 5 for i in range(96)] for job in range(3)}
    answers, outs = [], []
    for turn in range(3):
        for job in range(3):
            out = run(engine, f"j{job}-t{turn}", contexts[job], f"job-{job}")
            answers.append(out.new_token_ids)
            outs.append(out)
            contexts[job] = contexts[job] + out.new_token_ids + [(turn * 13 + job) % (vocab - 10) + 5] * 4
    return answers, outs


def engine_for(model_path: str, **host) -> Engine:
    return Engine(ServerArgs(model_path=model_path, **POOL, **host))


@pytest.fixture(scope="module")
def tiny_path() -> str:
    from pythia.models.tiny_model import tiny_model_path

    return str(tiny_model_path())


@pytest.mark.parametrize("host", [
    dict(hicache_write_policy="write_through", hicache_policy="lru"),
    dict(hicache_write_policy="write_back", hicache_policy="lru", hicache_io_backend="direct"),
    dict(hicache_write_policy="write_through_selective", hicache_policy="pythia"),
], ids=["write_through-lru", "write_back-lru-direct", "selective-pythia"])
def test_greedy_output_is_identical_with_the_host_tier(tiny_path, host):
    plain = engine_for(tiny_path)
    expected, plain_outs = conversation(plain, plain.model_config.vocab_size)
    tiered = engine_for(tiny_path, enable_hierarchical_cache=True, hicache_ratio=4.0, **host)
    got, outs = conversation(tiered, tiered.model_config.vocab_size)
    assert got == expected
    stats = tiered.stats()
    # Pages came back from host memory: loaded for a waiting call (a host hit) or, under the pythia
    # policy, prefetched before the job's predicted call (then found on the device).
    assert stats["pages_loaded"] > 0, stats
    assert stats["host_hit_tokens"] + stats["prefetched_pages"] * tiered.args.page_size > 0, stats
    assert sum(o.host_cached_tokens for o in outs) == stats["host_hit_tokens"]
    # Without the tier those contexts were recomputed: fewer cached tokens.
    assert sum(o.cached_tokens for o in outs) > sum(o.cached_tokens for o in plain_outs)
    assert tiered.flush_cache() >= 0 and tiered.stats()["free_pages"] == tiered.num_pages
    assert tiered.stats()["free_host_pages"] == tiered.num_host_pages


def test_greedy_output_is_identical_with_the_host_tier_on_smollm2(default_model):
    plain = engine_for(str(default_model))
    expected, _ = conversation(plain, plain.model_config.vocab_size)
    tiered = engine_for(str(default_model), enable_hierarchical_cache=True)
    got, _ = conversation(tiered, tiered.model_config.vocab_size)
    assert got == expected
    assert tiered.stats()["pages_loaded"] > 0


@pytest.mark.parametrize("flags, message", [
    (dict(hicache_ratio=3.0), "--hicache-ratio needs --enable-hierarchical-cache"),
    (dict(enable_hierarchical_cache=True, hicache_ratio=0.0), "--hicache-ratio must be positive"),
    (dict(enable_hierarchical_cache=True, hicache_write_policy="write_around"), "host_write_policy|hicache-write-policy"),
    (dict(enable_hierarchical_cache=True, hicache_io_backend="gds"), "--hicache-io-backend"),
    (dict(enable_hierarchical_cache=True, hicache_size=-1), "--hicache-size"),
])
def test_a_bad_host_tier_flag_is_a_startup_error_naming_it(flags, message):
    with pytest.raises(ValueError, match=message):
        args = ServerArgs(**POOL, **flags)
        args.validate()
        args.scheduler_config()

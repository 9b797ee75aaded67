"""A bad request fails alone: every sampling parameter, token id and length at its extremes is either
refused with a message naming it or served, nothing raises inside the engine, and a step that does
fail ends only its own requests (the engine goes on, no page leaks, nothing it computed is cached)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pythia.managers.engine import Engine
from pythia.managers.io_struct import GenerateOutput, GenerateRequest
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs

HUGE = 10**30


@pytest.fixture(scope="module")
def engine() -> Engine:
    from pythia.models.tiny_model import tiny_model_path

    return Engine(ServerArgs(model_path=str(tiny_model_path()), max_total_tokens=2048, chunked_prefill_size=256))


def run(engine: Engine, *requests: GenerateRequest, max_steps: int = 200) -> dict[str, GenerateOutput]:
    """Queues the requests and steps until all are done; returns each one's final output."""
    final: dict[str, GenerateOutput] = {}
    for req in requests:
        error = engine.add_request(req)
        if error is not None:
            final[req.rid] = error
    for _ in range(max_steps):
        if not engine.has_work():
            break
        for out in engine.step():
            if out.finished:
                final[out.rid] = out
    assert not engine.has_work(), "requests still running after max_steps"
    engine.check_integrity()
    return final


def good_request(rid: str) -> GenerateRequest:
    return GenerateRequest(rid=rid, input_ids=list(range(10, 30)),
                           params=SamplingParams(max_new_tokens=4, temperature=0, ignore_eos=True))


extreme_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
    [0.0, 1e-300, 1e-40, 5e-7, 1e-6, 0.5, 1.0, 2.0, 1e30, -1e-300, -2.0, 1e308]))
extreme_ints = st.one_of(st.integers(-3, 8), st.integers(-HUGE, HUGE), st.sampled_from([2**31, 2**63, 2**64, -2**63]))
sampling_dicts = st.fixed_dictionaries({}, optional={
    "max_new_tokens": st.one_of(st.integers(0, 4), extreme_ints),
    "min_new_tokens": st.one_of(st.integers(0, 4), extreme_ints),
    "temperature": extreme_floats, "top_p": extreme_floats, "top_k": extreme_ints, "min_p": extreme_floats,
    "frequency_penalty": extreme_floats, "presence_penalty": extreme_floats, "repetition_penalty": extreme_floats,
    "stop_token_ids": st.lists(st.one_of(st.integers(0, 300), extreme_ints), max_size=4),
    "seed": extreme_ints, "n": extreme_ints, "ignore_eos": st.booleans(),
    "logit_bias": st.dictionaries(st.one_of(st.integers(-5, 300), extreme_ints), extreme_floats, max_size=3),
})
prompts = st.lists(st.one_of(st.integers(0, 255), extreme_ints), min_size=0, max_size=40)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(raw=sampling_dicts, prompt=prompts)
def test_every_extreme_input_is_refused_by_name_or_served(engine, raw, prompt):
    try:
        params = SamplingParams.from_dict(raw)
    except ValueError as e:
        assert any(name in str(e) for name in raw), f"{e} names none of {sorted(raw)}"
        return
    if params.n != 1:
        return  # n > 1 fans out into separate requests in the front
    bad = GenerateRequest(rid="bad", input_ids=prompt, params=params)
    final = run(engine, bad, good_request("good"))
    out = final["bad"]
    if out.error is not None:
        assert out.error_status == 400, f"failed inside the engine: {out.error}"
        assert any(word in out.error for word in ("input_ids", "prompt", "stop_token_ids", "max_new_tokens",
                                                  "logit_bias")), out.error
    else:
        assert out.completion_tokens <= params.max_new_tokens
    assert final["good"].error is None and final["good"].completion_tokens == 4


@pytest.mark.parametrize("raw", [
    {"temperature": 1e-40}, {"repetition_penalty": 1e-300}, {"top_k": HUGE},
    {"stop_token_ids": [-5000], "min_new_tokens": 2}, {"stop_token_ids": [10**9], "min_new_tokens": 2},
    {"seed": HUGE, "temperature": 1.0},
])
def test_the_inputs_that_once_killed_the_engine_are_served_or_refused(engine, raw):
    params = SamplingParams.from_dict({"max_new_tokens": 3, **raw})
    final = run(engine, GenerateRequest(rid="bad", input_ids=list(range(5, 25)), params=params),
                good_request("good"))
    assert final["bad"].error is None or final["bad"].error_status == 400, final["bad"].error
    assert final["good"].error is None and final["good"].completion_tokens == 4


def test_a_request_whose_sampling_raises_fails_alone(engine, monkeypatch):
    real_sample = engine.runner.sample

    def sample(logits, rows):  # a fault that only the request with this prompt triggers
        if any(row.prompt_ids[:1] == [99] for row in rows):
            raise RuntimeError("injected sampler fault")
        return real_sample(logits, rows)

    monkeypatch.setattr(engine.runner, "sample", sample)
    doomed = GenerateRequest(rid="doomed", input_ids=[99] + list(range(40, 60)),
                             params=SamplingParams(max_new_tokens=4, temperature=0, ignore_eos=True))
    final = run(engine, doomed, good_request("good"))
    assert final["doomed"].error_status == 500 and "injected sampler fault" in final["doomed"].error
    assert final["good"].error is None and final["good"].completion_tokens == 4


def test_a_seeded_request_draws_the_same_tokens_when_a_batch_beside_it_fails(engine, monkeypatch):
    def seeded(rid):
        return GenerateRequest(rid=rid, input_ids=list(range(70, 90)),
                               params=SamplingParams(max_new_tokens=8, temperature=1.0, seed=7, ignore_eos=True))

    alone = run(engine, seeded("alone"))["alone"]
    real_sample = engine.runner.sample

    def sample(logits, rows):  # fails after every row has drawn, as a late fault would
        picked = real_sample(logits, rows)
        if any(row.prompt_ids[:1] == [99] for row in rows):
            raise RuntimeError("injected late sampler fault")
        return picked

    monkeypatch.setattr(engine.runner, "sample", sample)
    doomed = GenerateRequest(rid="doomed", input_ids=[99] + list(range(40, 60)),
                             params=SamplingParams(max_new_tokens=4, temperature=1.0, seed=3, ignore_eos=True))
    final = run(engine, doomed, seeded("beside"))
    assert final["doomed"].error_status == 500
    assert final["beside"].text == alone.text


def test_a_failed_forward_pass_ends_its_batch_and_caches_nothing_it_computed(engine, monkeypatch):
    engine.flush_cache()
    real_forward = engine.runner.forward
    calls = {"n": 0}

    def forward(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected forward fault")
        return real_forward(batch)

    monkeypatch.setattr(engine.runner, "forward", forward)
    prompt = list(range(100, 164))  # four whole pages of 16
    first = GenerateRequest(rid="first", input_ids=prompt, params=SamplingParams(max_new_tokens=2, temperature=0))
    final = run(engine, first)
    assert final["first"].error_status == 500 and "injected forward fault" in final["first"].error
    again = GenerateRequest(rid="again", input_ids=prompt, params=SamplingParams(max_new_tokens=2, temperature=0))
    final = run(engine, again)
    assert final["again"].error is None
    assert final["again"].cached_tokens == 0, "the failed step's KV must not be served from the cache"


def test_logit_bias_is_applied(engine):
    plain = run(engine, GenerateRequest(rid="plain", input_ids=list(range(10, 30)), params=SamplingParams(
        max_new_tokens=4, temperature=0, ignore_eos=True)))["plain"]
    token = 77 if 77 not in plain.new_token_ids else 78
    biased = run(engine, GenerateRequest(rid="biased", input_ids=list(range(10, 30)), params=SamplingParams.from_dict(
        {"max_new_tokens": 4, "temperature": 0, "ignore_eos": True, "logit_bias": {str(token): 100}})))["biased"]
    assert biased.error is None and biased.new_token_ids == [token] * 4
    with pytest.raises(ValueError, match="logit_bias values"):
        SamplingParams.from_dict({"logit_bias": {"5": 1000}})
    out = run(engine, GenerateRequest(rid="far", input_ids=[5, 6], params=SamplingParams.from_dict(
        {"logit_bias": {"999999": 1}})))["far"]
    assert out.error_status == 400 and "logit_bias keys must be token ids" in out.error

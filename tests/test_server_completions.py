"""/v1/completions against a live server with the openai client: OpenAI's legacy logprobs shape,
echo, several prompts in one body, seeded n > 1, clean grammar errors, and streaming requests that
are refused before streaming starts getting their real status."""

from __future__ import annotations

import json
import threading

import openai
import pytest
import requests

MODEL = "SmolLM2-135M-Instruct"
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def tokenizer(default_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model)


def greedy(client, **kwargs):
    return client.completions.create(model=MODEL, temperature=0, **kwargs)


def beside_a_good_request(server, send):
    """Runs `send` while a well-formed completion runs; checks the good one's full answer."""
    good: dict = {}

    def run_good():
        good["r"] = requests.post(server.url + "/v1/completions", timeout=300, json={
            "prompt": "one two three", "max_tokens": 12, "temperature": 0, "ignore_eos": True})

    worker = threading.Thread(target=run_good)
    worker.start()
    try:
        return send()
    finally:
        worker.join()
        assert good["r"].status_code == 200, good["r"].text
        assert good["r"].json()["usage"]["completion_tokens"] == 12


def check_legacy_logprobs(lp, text: str, top: int, greedy_from: int = 0) -> None:
    """Per-token lists of one length; offsets are where each token's text sits in `text`; tokens
    from `greedy_from` on were picked greedily (before it: an echoed prompt)."""
    n = len(lp.tokens)
    assert len(lp.token_logprobs) == len(lp.text_offset) == n > 0
    assert lp.text_offset == sorted(lp.text_offset)
    for token, offset in zip(lp.tokens, lp.text_offset):
        assert text[offset:].startswith(token), (token, offset, text)
    if top == 0:
        assert lp.top_logprobs is None
        return
    assert len(lp.top_logprobs) == n
    for k, (chosen, logprob, alternatives) in enumerate(zip(lp.tokens, lp.token_logprobs, lp.top_logprobs)):
        if logprob is None:  # the first prompt token under echo
            assert k == 0 and alternatives is None
            continue
        assert len(alternatives) == top
        assert all(v <= 0 for v in alternatives.values())
        assert max(alternatives.values()) >= logprob - 1e-4
        if k >= greedy_from:  # the chosen token is the most likely one
            assert max(alternatives.values()) == pytest.approx(logprob, abs=1e-4)
            assert alternatives[chosen] == pytest.approx(logprob, abs=1e-4)


def stream_events(server, body: dict) -> list[dict]:
    r = requests.post(server.url + "/v1/completions", json={**body, "stream": True}, stream=True, timeout=300)
    assert r.status_code == 200, r.text
    lines = [line[len(b"data: "):] for line in r.iter_lines() if line.startswith(b"data: ")]
    assert lines[-1] == b"[DONE]"
    return [json.loads(line) for line in lines[:-1]]


# ------------------------------------------------------------------ logprobs

def test_logprobs_have_the_legacy_shape_with_top_alternatives_and_offsets(client, server):
    reply = beside_a_good_request(server, lambda: greedy(client, prompt=PROMPT, max_tokens=6, logprobs=3))
    choice = reply.choices[0]
    assert len(choice.logprobs.tokens) == reply.usage.completion_tokens == 6
    check_legacy_logprobs(choice.logprobs, choice.text, top=3)
    assert "".join(choice.logprobs.tokens) == choice.text  # ASCII output: the tokens spell the text
    assert choice.logprobs.text_offset[0] == 0

    only_chosen = greedy(client, prompt=PROMPT, max_tokens=6, logprobs=0).choices[0]
    assert only_chosen.logprobs.tokens == choice.logprobs.tokens
    assert only_chosen.logprobs.token_logprobs == pytest.approx(choice.logprobs.token_logprobs, abs=1e-4)
    check_legacy_logprobs(only_chosen.logprobs, only_chosen.text, top=0)
    server.assert_no_leaks()


@pytest.mark.parametrize("value", [21, -1, True, "2"])
def test_logprobs_out_of_range_is_a_400(client, server, value):
    with pytest.raises(openai.BadRequestError, match="logprobs must be"):
        beside_a_good_request(server, lambda: greedy(client, prompt=PROMPT, max_tokens=2, logprobs=value))
    server.assert_no_leaks()


def test_streamed_logprobs_continue_across_chunks_as_in_the_whole_answer(client, server):
    body = {"prompt": PROMPT, "max_tokens": 8, "temperature": 0, "logprobs": 2}
    whole = greedy(client, prompt=PROMPT, max_tokens=8, logprobs=2).choices[0]
    chunks = [e["choices"][0] for e in stream_events(server, body) if e["choices"]]
    assert len(chunks) > 1
    assert "".join(c["text"] for c in chunks) == whole.text
    joined = {key: sum((c["logprobs"][key] for c in chunks), []) for key in ("tokens", "text_offset", "top_logprobs")}
    assert joined["tokens"] == whole.logprobs.tokens
    assert joined["text_offset"] == whole.logprobs.text_offset
    assert [sorted(d) for d in joined["top_logprobs"]] == [sorted(d) for d in whole.logprobs.top_logprobs]
    server.assert_no_leaks()


# ------------------------------------------------------------------ echo

def test_echo_prepends_the_prompt_and_its_logprobs(client, server):
    plain = greedy(client, prompt=PROMPT, max_tokens=4, logprobs=1).choices[0]
    reply = beside_a_good_request(server, lambda: greedy(client, prompt=PROMPT, max_tokens=4, logprobs=1, echo=True))
    choice = reply.choices[0]
    assert choice.text == PROMPT + plain.text
    lp = choice.logprobs
    prompt_len = reply.usage.prompt_tokens
    assert len(lp.tokens) == prompt_len + reply.usage.completion_tokens
    assert "".join(lp.tokens[:prompt_len]) == PROMPT
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None  # nothing precedes the first token
    assert all(v is not None and v <= 0 for v in lp.token_logprobs[1:])
    assert lp.text_offset[prompt_len] == len(PROMPT)  # the output's offsets count the echoed prompt
    assert lp.tokens[prompt_len:] == plain.logprobs.tokens
    assert lp.token_logprobs[prompt_len:] == pytest.approx(plain.logprobs.token_logprobs, abs=1e-3)
    check_legacy_logprobs(lp, choice.text, top=1, greedy_from=prompt_len)
    server.assert_no_leaks()


def test_echoed_prompt_logprobs_line_up_with_the_tokens_they_score(client):
    """A prompt token's logprob is the model's logprob of that token after the tokens before it:
    echo over PROMPT + its greedy continuation scores that continuation as generation did."""
    plain = greedy(client, prompt=PROMPT, max_tokens=1, logprobs=1).choices[0]
    extended = PROMPT + plain.text
    echoed = greedy(client, prompt=extended, max_tokens=0, logprobs=1, echo=True).choices[0]
    assert echoed.logprobs.tokens[-1] == plain.logprobs.tokens[0]
    assert echoed.logprobs.token_logprobs[-1] == pytest.approx(plain.logprobs.token_logprobs[0], abs=1e-3)


def test_echo_with_max_tokens_zero_returns_just_the_prompt(client, server, tokenizer):
    reply = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=0, echo=True, logprobs=0)
    assert reply.choices[0].text == PROMPT and reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 0
    assert len(reply.choices[0].logprobs.tokens) == reply.usage.prompt_tokens
    # A token-id prompt is echoed decoded.
    ids = tokenizer.encode(PROMPT)
    by_ids = client.completions.create(model=MODEL, prompt=ids, max_tokens=0, echo=True)
    assert by_ids.choices[0].text == PROMPT and by_ids.usage.prompt_tokens == len(ids)
    server.assert_no_leaks()


def test_echo_streams_the_prompt_first(client, server):
    events = stream_events(server, {"prompt": PROMPT, "max_tokens": 4, "temperature": 0, "echo": True, "n": 2})
    texts = {0: "", 1: ""}
    for e in events:
        for c in e["choices"]:
            if not texts[c["index"]]:
                assert c["text"].startswith(PROMPT)
            texts[c["index"]] += c["text"]
    plain = greedy(client, prompt=PROMPT, max_tokens=4).choices[0].text
    assert texts == {0: PROMPT + plain, 1: PROMPT + plain}
    server.assert_no_leaks()


def test_echo_must_be_a_boolean(client, server):
    with pytest.raises(openai.BadRequestError, match="echo must be true or false"):
        greedy(client, prompt=PROMPT, max_tokens=1, extra_body={"echo": "yes"})
    server.assert_no_leaks()


# ------------------------------------------------------------------ several prompts

def test_several_prompts_give_prompt_major_choices_and_summed_usage(client, server, tokenizer):
    prompts = [PROMPT, "One, two, three,"]
    alone = [greedy(client, prompt=p, max_tokens=4) for p in prompts]
    reply = beside_a_good_request(server, lambda: greedy(client, prompt=prompts, max_tokens=4, n=2))
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert [c.text for c in reply.choices] == [alone[0].choices[0].text] * 2 + [alone[1].choices[0].text] * 2
    assert reply.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)
    assert reply.usage.completion_tokens == 2 * sum(a.usage.completion_tokens for a in alone)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

    by_ids = greedy(client, prompt=[tokenizer.encode(p) for p in prompts], max_tokens=4, echo=True)
    assert [c.text for c in by_ids.choices] == [p + a.choices[0].text for p, a in zip(prompts, alone)]
    server.assert_no_leaks()


def test_several_prompts_stream_every_choice(client, server):
    prompts = [PROMPT, "One, two, three,"]
    alone = [greedy(client, prompt=p, max_tokens=4).choices[0].text for p in prompts]
    events = stream_events(server, {"prompt": prompts, "max_tokens": 4, "temperature": 0, "n": 2,
                                    "stream_options": {"include_usage": True}})
    texts = ["", "", "", ""]
    for e in events:
        for c in e["choices"]:
            texts[c["index"]] += c["text"]
    assert texts == [alone[0], alone[0], alone[1], alone[1]]
    assert events[-1]["usage"]["completion_tokens"] == 16
    server.assert_no_leaks()


@pytest.mark.parametrize("prompt, param, words", [
    ([], "prompt", "non-empty list"), ([[]], "prompt[0]", "non-empty list"), ([1, "a"], "prompt[0]", "must be"),
    ([[1, 2], 3], "prompt[0]", "must be"), (None, "prompt", "must be"), (["ok", ""], "prompt[1]", "must not be empty"),
])
def test_malformed_prompt_lists_are_400s(server, prompt, param, words):
    r = beside_a_good_request(server, lambda: requests.post(server.url + "/v1/completions", timeout=60, json={
        "prompt": prompt, "max_tokens": 1}))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text
    server.assert_no_leaks()


def test_prompts_times_n_are_bounded_by_the_queue_limit(server):
    r = requests.post(server.url + "/v1/completions", timeout=60, json={
        "prompt": ["hi"] * 300, "n": 2, "max_tokens": 1})
    assert r.status_code == 400, r.text
    assert "--max-queued-requests" in r.json()["error"]["message"]
    server.assert_no_leaks()


# ------------------------------------------------------------------ seeded samples

# Sixteen tokens sampled at temperature 1 after an open-ended prompt: two samples agreeing on all of
# them is vanishingly unlikely, so "some choices differ" cannot fail by chance.
SEEDED = dict(prompt="Here is a list of random words:", max_tokens=16, temperature=1.0, seed=4321, n=3)


def test_seeded_samples_differ_and_repeat(client, server):
    first = [c.text for c in client.completions.create(model=MODEL, **SEEDED).choices]
    again = [c.text for c in client.completions.create(model=MODEL, **SEEDED).choices]
    assert len(set(first)) > 1, first
    assert again == first
    server.assert_no_leaks()


def test_seeded_chat_samples_differ_and_repeat(client, server):
    kwargs = dict(model=MODEL, messages=[{"role": "user", "content": "Say some random words."}], max_tokens=16,
                  temperature=1.0, seed=99, n=3)
    first = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
    assert len(set(first)) > 1, first
    assert [c.message.content for c in client.chat.completions.create(**kwargs).choices] == first
    server.assert_no_leaks()


def test_seeded_generate_samples_differ_and_repeat(server):
    body = {"text": SEEDED["prompt"], "sampling_params": {"max_new_tokens": 16, "temperature": 1.0, "seed": 4321,
                                                          "n": 3}}
    first = [r["text"] for r in server.post("/generate", json=body).json()]
    assert len(set(first)) > 1, first
    assert [r["text"] for r in server.post("/generate", json=body).json()] == first
    server.assert_no_leaks()


# ------------------------------------------------------------------ grammar errors

@pytest.mark.parametrize("field, value, words", [
    ("json_schema", json.dumps({"type": "frobnicate"}), 'invalid json_schema: Unsupported type "frobnicate"'),
    ("json_schema", "{not json", "invalid json_schema: Failed to parse JSON"),
    ("regex", "(abc", "invalid regex: Regex parsing error at position 5"),
    ("ebnf", "root ::= foo", 'invalid ebnf: EBNF parser error at line 1, column 10: Rule "foo" is not defined'),
])
@pytest.mark.parametrize("stream", [False, True])
def test_invalid_grammars_are_400s_without_dependency_internals(server, field, value, words, stream):
    r = beside_a_good_request(server, lambda: requests.post(server.url + "/v1/completions", timeout=120, json={
        "prompt": PROMPT, "max_tokens": 4, field: value, "stream": stream}))
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert words in message
    for internal in (".cc", "/project", "Check failed", "Stack trace", "[0"):
        assert internal not in message, message
    server.assert_no_leaks()


# ------------------------------------------------------------------ refused streams

@pytest.mark.parametrize("path, body, words", [
    ("/v1/completions", {"prompt": [10**7], "max_tokens": 2}, "input_ids must be token ids"),
    ("/v1/completions", {"prompt": PROMPT, "max_tokens": 10**6}, "exceeds the context length"),
    ("/v1/completions", {"prompt": [PROMPT, PROMPT], "n": 2, "max_tokens": 2, "logit_bias": {"99999999": 1}},
     "logit_bias keys must be token ids"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**6},
     "exceeds the context length"),
])
def test_a_stream_refused_before_it_starts_gets_a_plain_400(server, path, body, words):
    r = beside_a_good_request(server, lambda: requests.post(server.url + path, timeout=120,
                                                            json={**body, "stream": True}))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert words in r.json()["error"]["message"]
    server.assert_no_leaks()


def test_the_openai_client_raises_for_a_refused_stream(client, server):
    with pytest.raises(openai.BadRequestError, match="invalid json_schema"):
        client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4, stream=True,
                                  extra_body={"json_schema": json.dumps({"type": "frobnicate"})})
    server.assert_no_leaks()



def test_a_client_leaving_mid_stream_aborts_every_sample(server):
    body = {"prompt": "Tell me a very long story.", "max_tokens": 1500, "ignore_eos": True, "n": 2, "stream": True}
    before = server.stats()["generation_tokens"]
    r = requests.post(server.url + "/v1/completions", json=body, stream=True, timeout=300)
    lines = (line for line in r.iter_lines() if line.startswith(b"data: "))
    next(lines), next(lines)
    r.close()  # the client goes away after two events
    server.assert_no_leaks()  # waits for both samples to be gone
    assert server.stats()["generation_tokens"] - before < 2 * 1500, "the samples ran on to the end"

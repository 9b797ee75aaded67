"""SGLang-native HTTP routes, bad input, disconnects and metrics against a live server."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
import requests

from pythia.testing.live_server import LiveServer


def generate(server, **body):
    return server.post("/generate", json=body)


def test_batched_text_returns_a_list_in_order(server):
    r = generate(server, text=["The capital of France is", "The capital of Italy is"],
                 sampling_params={"max_new_tokens": 4, "temperature": 0})
    assert r.status_code == 200
    out = r.json()
    assert [o["meta_info"]["completion_tokens"] for o in out] == [4, 4]
    assert "Paris" in out[0]["text"] and "Rome" in out[1]["text"]


def test_input_ids_and_text_give_the_same_output(server):
    by_text = generate(server, text="Hello, my name is", sampling_params={"max_new_tokens": 5, "temperature": 0}).json()
    ids = server.post("/generate", json={"text": "Hello, my name is", "sampling_params": {"max_new_tokens": 0}}).json()
    assert ids["meta_info"]["prompt_tokens"] == by_text["meta_info"]["prompt_tokens"]
    r = generate(server, input_ids=[19556, 28, 957, 1462, 314], sampling_params={"max_new_tokens": 5, "temperature": 0})
    assert r.status_code == 200 and r.json()["meta_info"]["prompt_tokens"] == 5


def test_prefill_only_then_cached_prefix(server):
    prefix = "In a quiet village by the mountains there lived an old clockmaker. " * 4
    first = generate(server, text=prefix, sampling_params={"max_new_tokens": 0}).json()
    assert first["text"] == "" and first["meta_info"]["completion_tokens"] == 0
    second = generate(server, text=prefix + "One day", sampling_params={"max_new_tokens": 2}).json()
    assert second["meta_info"]["cached_tokens"] >= 48


def test_input_logprobs_score_the_prompt(server):
    body = {"text": ["The sky is blue", "The sky is purple"], "sampling_params": {"max_new_tokens": 0},
            "return_logprob": True, "return_text_in_logprobs": True, "logprob_start_len": 2}
    out = server.post("/generate", json=body).json()
    for item in out:
        lps = item["meta_info"]["input_token_logprobs"]
        assert len(lps) == item["meta_info"]["prompt_tokens"] - 2
        assert all(lp is not None and lp <= 0 for lp, _, _ in lps)
    assert out[0]["meta_info"]["input_token_logprobs"][-1][2] == " blue"
    assert out[0]["meta_info"]["input_token_logprobs"][-1][0] > out[1]["meta_info"]["input_token_logprobs"][-1][0]


def test_output_logprobs_match_greedy_choice_and_top_k(server):
    out = generate(server, text="The capital of France is", return_logprob=True, top_logprobs_num=3,
                   sampling_params={"max_new_tokens": 3, "temperature": 0}).json()["meta_info"]
    assert len(out["output_token_logprobs"]) == 3 == out["output_token_logprobs_length"]
    for (lp, token, _), top in zip(out["output_token_logprobs"], out["output_top_logprobs"]):
        assert len(top) == 3
        assert top[0][1] == token and math.isclose(top[0][0], lp)  # greedy picks the top token


def test_streaming_is_cumulative_and_ends_with_done(server):
    r = server.post("/generate", json={"text": "Count: 1, 2, 3,", "stream": True,
                                       "sampling_params": {"max_new_tokens": 8, "temperature": 0}}, stream=True)
    lines = [line.decode() for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    texts = [json.loads(line[5:])["text"] for line in lines[:-1]]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))
    assert json.loads(lines[-2][5:])["meta_info"]["finish_reason"] == {"type": "length", "length": 8}


@pytest.mark.parametrize("body,message", [
    ({"text": "hi", "sampling_params": {"max_new_tokens": -1}}, "max_new_tokens"),
    ({"text": "hi", "sampling_params": {"max_new_tokens": "ten"}}, "max_new_tokens must be an integer"),
    ({"text": "hi", "sampling_params": {"temperature": -0.5}}, "temperature"),
    ({"text": "hi", "sampling_params": {"bogus": 1}}, "unknown sampling parameter"),
    ({"text": 42}, "text must be"),
    ({}, "exactly one of text and input_ids"),
    ({"input_ids": [1, -5]}, "token ids"),
    ({"text": "hi", "sampling_params": {"regex": "("}}, "invalid regex"),
    ({"text": "hi", "workflow": {"id": 7}}, "workflow.id must be a string"),
    ({"text": "hello " * 9000}, "context length"),
])
def test_bad_input_is_a_400_with_a_message(server, body, message):
    r = server.post("/generate", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


def test_malformed_json_is_a_400(server):
    r = server.post("/generate", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]["message"]


def test_client_disconnect_mid_stream_aborts_and_frees_pages(server):
    r = server.post("/generate", json={"text": "Tell me a very long story.", "stream": True,
                                       "sampling_params": {"max_new_tokens": 400, "ignore_eos": True}}, stream=True)
    lines = r.iter_lines()
    next(lines)
    next(lines)
    r.close()  # the client goes away after two events
    deadline = time.time() + 30
    while server.stats()["num_running"] and time.time() < deadline:
        time.sleep(0.2)
    stats = server.stats()
    assert stats["num_running"] == 0 and stats["protected_pages"] == 0
    # The server keeps serving.
    assert generate(server, text="Hi", sampling_params={"max_new_tokens": 1}).status_code == 200


def test_health_answers_during_a_long_prefill(server):
    long_prompt = "The history of the world is long and full of events. " * 250  # ~3k tokens
    done = threading.Event()

    def slow():
        generate(server, text=long_prompt, sampling_params={"max_new_tokens": 1})
        done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.5)
    answered_while_busy = requests.get(server.url + "/health", timeout=10).status_code == 200 and not done.is_set()
    metrics = server.get("/metrics")
    worker.join()
    assert answered_while_busy, "the prefill finished before /health could be checked; use a longer prompt"
    assert metrics.status_code == 200


def test_workflow_headers_reach_the_engine(server):
    before = server.stats()
    r = server.post("/generate", json={"text": "Plan the work.", "sampling_params": {"max_new_tokens": 1}},
                    headers={"X-Workflow-Type": "code-review", "X-Workflow-Id": "job-h1",
                             "X-Workflow-Agent": "planner"})
    assert r.json()["meta_info"]["workflow"] == {"type": "code-review", "id": "job-h1", "agent": "planner"}
    after = server.stats()
    assert after["workflow_jobs_seen"] == before["workflow_jobs_seen"] + 1
    assert after["workflow_agents_seen"] >= 1


def test_metrics_count_tokens(server):
    generate(server, text="Hello", sampling_params={"max_new_tokens": 2})
    text = server.get("/metrics").text
    for name in ("pythia_prompt_tokens_total", "pythia_generation_tokens_total", "pythia_cache_hit_tokens_total",
                 "pythia_num_waiting_requests", "pythia_num_running_requests",
                 "pythia_time_to_first_token_seconds_bucket", "pythia_time_per_output_token_seconds_bucket"):
        assert name in text, name


def test_misc_routes(server):
    assert server.post("/concate_and_append_request", json={"src_rids": ["a"], "dst_rid": "b"}).status_code == 200
    assert server.post("/abort_request", json={"rid": "never-seen"}).status_code == 200
    assert server.get("/health_generate").status_code == 200
    assert server.get("/model_info").json()["is_generation"] is True


def test_api_key_is_required_when_set(default_model):
    live = LiveServer("--max-total-tokens", "2048", api_key="s3cret")
    try:
        no_key = requests.post(live.url + "/generate", json={"text": "hi"}, timeout=30)
        assert no_key.status_code == 401
        wrong = requests.get(live.url + "/v1/models", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401
        assert requests.get(live.url + "/health", timeout=30).status_code == 200
        ok = live.post("/generate", json={"text": "hi", "sampling_params": {"max_new_tokens": 1}})
        assert ok.status_code == 200
        # The key check must not hide a client's disconnect from the route (which aborts on it).
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(live.url + "/generate", headers=live.headers, timeout=2, json={
                "text": "Tell me a long story.", "sampling_params": {"max_new_tokens": 400, "ignore_eos": True}})
        deadline = time.time() + 15
        while live.stats()["num_running"] and time.time() < deadline:
            time.sleep(0.2)
        assert live.stats()["num_running"] == 0, "the orphaned request still runs"
        live.assert_no_leaks()
    finally:
        live.stop()

"""Bad requests against a live server fail alone, with a 4xx in OpenAI's error format naming the
problem, while a well-formed request sent beside each one succeeds and no KV page leaks."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from pythia.testing.live_server import LiveServer

CONTEXT = 128  # small, so that the character bound before tokenization is small too


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from pythia.models.tiny_model import tiny_model_path

    server = LiveServer("--model-path", str(tiny_model_path()), "--max-total-tokens", "4096",
                        "--context-length", str(CONTEXT), "--max-queued-requests", "6",
                        "--max-request-bytes", "200000", log_path=tmp_path_factory.mktemp("faults") / "server.log")
    yield server
    server.close()


def post_raw(live: LiveServer, path: str, data: str) -> requests.Response:
    return requests.post(live.url + path, data=data, headers={"Content-Type": "application/json"}, timeout=120)


def beside_a_good_request(live: LiveServer, send_bad) -> requests.Response:
    """Sends the bad request while a well-formed one runs; checks the good one's full answer."""
    good: dict = {}

    def run_good():
        good["r"] = live.post("/generate", json={"text": "one two three", "sampling_params": {
            "max_new_tokens": 24, "temperature": 0, "ignore_eos": True}})

    worker = threading.Thread(target=run_good)
    worker.start()
    bad = send_bad()
    worker.join()
    assert good["r"].status_code == 200, good["r"].text
    assert good["r"].json()["meta_info"]["completion_tokens"] == 24
    return bad


def assert_openai_error(r: requests.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status
    assert words in error["message"], error["message"]


@pytest.mark.parametrize("params", [
    {"temperature": 1e-40}, {"repetition_penalty": 1e-300}, {"top_k": 10**30},
    {"stop_token_ids": [-5000], "min_new_tokens": 1}, {"stop_token_ids": [10**9], "min_new_tokens": 1},
])
def test_inputs_that_once_killed_the_engine_leave_it_serving(live, params):
    r = beside_a_good_request(live, lambda: live.post("/generate", json={
        "text": "hello", "sampling_params": {"max_new_tokens": 4, **params}}))
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert "stop_token_ids" in r.json()["error"]["message"]
    live.assert_no_leaks()


@pytest.mark.parametrize("path, body, words", [
    ("/generate", '{"text": "hi", "sampling_params": [1]}', "sampling_params must be a JSON object"),
    ("/generate", '{"text": "hi", "sampling_params": 3}', "sampling_params must be a JSON object"),
    ("/generate", '{"text": []}', "non-empty list"),
    ("/generate", '{"text": "\\ud800"}', "not valid Unicode"),
    ("/generate", '{"text": "hi", "x": ' + "[" * 50000 + "]" * 50000 + "}", "nested too deeply"),
    ("/generate", json.dumps({"text": "hi", "sampling_params": {"n": 1000}}), "--max-n"),
    ("/generate", json.dumps({"text": "hi", "sampling_params": {"stop": ["x"] * 100}}), "--max-stop-sequences"),
    ("/generate", json.dumps({"text": "word " * 30000}), "characters"),
    ("/v1/workflows", json.dumps({"type": "chain", "agents": [{"name": f"a{i}"} for i in range(2000)],
                                  "edges": [{"from": f"a{i}", "to": f"a{i + 1}"} for i in range(1999)]}),
     "at most 256"),
])
def test_bad_bodies_are_400s_naming_the_problem(live, path, body, words):
    assert_openai_error(beside_a_good_request(live, lambda: post_raw(live, path, body)), 400, words)


def test_a_client_chat_template_is_refused_and_a_raising_one_never_runs(live):
    chat = {"model": live.get("/v1/models").json()["data"][0]["id"], "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}]}
    for kwargs in ({"chat_template": "{{ raise_exception('boom') }}"}, {"tokenize": False}):
        r = beside_a_good_request(live, lambda: live.post("/v1/chat/completions",
                                                          json={**chat, "chat_template_kwargs": kwargs}))
        assert_openai_error(r, 400, "chat_template_kwargs may not set")


def test_a_body_over_the_limit_is_413(live):
    r = beside_a_good_request(live, lambda: post_raw(live, "/generate", json.dumps({"text": "x" * 300000})))
    assert_openai_error(r, 413, "--max-request-bytes")


def test_a_chunked_body_over_the_limit_is_413_without_reading_all_of_it(live):
    def chunks():  # no Content-Length: requests sends it chunked
        for _ in range(100):
            yield b"x" * 10000

    r = beside_a_good_request(live, lambda: requests.post(live.url + "/generate", data=chunks(), timeout=120,
                                                          headers={"Content-Type": "application/json"}))
    assert_openai_error(r, 413, "--max-request-bytes")


def test_a_duplicate_rid_in_flight_is_a_400_and_the_first_goes_on(live):
    first = requests.post(live.url + "/generate", stream=True, timeout=120, json={
        "text": "a b", "rid": "same", "stream": True, "sampling_params": {"max_new_tokens": 100, "ignore_eos": True}})
    lines = first.iter_lines()
    assert next(line for line in lines if line.startswith(b"data:"))  # streaming: the first is in flight
    r = live.post("/generate", json={"text": "c", "rid": "same", "sampling_params": {"max_new_tokens": 1}})
    assert_openai_error(r, 400, "already in use")
    events = [line for line in lines if line.startswith(b"data:")]
    assert events[-1] == b"data: [DONE]"
    assert json.loads(events[-2][5:])["meta_info"]["completion_tokens"] == 100, "the first went on to the end"
    live.assert_no_leaks()


def test_past_the_queue_limit_requests_get_503_with_retry_after(live):
    results: list[requests.Response] = []
    lock = threading.Lock()

    def run():
        r = live.post("/generate", json={"text": "q", "sampling_params": {"max_new_tokens": 96, "ignore_eos": True}})
        with lock:
            results.append(r)

    workers = [threading.Thread(target=run) for _ in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    refused = [r for r in results if r.status_code == 503]
    assert refused and all(r.headers.get("Retry-After") == "1" for r in refused)
    assert_openai_error(refused[0], 503, "--max-queued-requests")
    assert all(r.status_code in (200, 503) for r in results)
    assert any(r.status_code == 200 for r in results)
    live.assert_no_leaks()


def test_streams_past_the_queue_limit_get_a_plain_503_and_the_others_stream(live):
    model = live.get("/v1/models").json()["data"][0]["id"]
    results: list[tuple[int, str, bytes]] = []
    lock = threading.Lock()

    def run():
        r = requests.post(live.url + "/v1/completions", stream=True, timeout=120, json={
            "model": model, "prompt": "q", "max_tokens": 96, "ignore_eos": True, "stream": True})
        with lock:
            results.append((r.status_code, r.headers.get("Retry-After", ""), r.content))

    workers = [threading.Thread(target=run) for _ in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    refused = [(retry, body) for status, retry, body in results if status == 503]
    assert refused, "more streams than the queue limit, yet none refused"
    for retry, body in refused:  # a JSON error, not an event stream
        assert retry == "1" and "--max-queued-requests" in json.loads(body)["error"]["message"]
    streamed = [body for status, _, body in results if status == 200]
    assert streamed and len(streamed) + len(refused) == len(results)
    for body in streamed:  # (the tiny model may well write the word "error" itself)
        events = [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: {")]
        errors = [e for e in events if "error" in e]
        assert not errors and body.endswith(b"data: [DONE]\n\n"), errors[:3]
    live.assert_no_leaks()


def test_unknown_routes_and_methods_answer_in_the_error_format(live):
    assert_openai_error(live.get("/no-such-route"), 404, "no route /no-such-route")
    assert_openai_error(live.get("/generate"), 405, "GET is not allowed")


def test_health_answers_while_a_large_batch_is_tokenized(tmp_path):
    from pythia.models.tiny_model import tiny_model_path

    server = LiveServer("--model-path", str(tiny_model_path()), "--max-request-bytes", str(64 << 20),
                        log_path=tmp_path / "server.log")
    try:
        # 30 MB of prompts, each within the character bound: seconds of tokenizing, then a 400
        # for their number (more than --max-queued-requests, known once they are tokenized).
        body = json.dumps({"text": ["word " * 4000] * 1500, "sampling_params": {"max_new_tokens": 1}})
        done = threading.Event()
        reply: dict = {}

        def send():
            reply["r"] = post_raw(server, "/generate", body)
            done.set()

        worker = threading.Thread(target=send)
        worker.start()
        time.sleep(1.0)
        answered_while_busy = requests.get(server.url + "/health", timeout=60).status_code == 200 and not done.is_set()
        worker.join()
        assert answered_while_busy, "the batch was tokenized before /health could be checked; use a larger one"
        assert_openai_error(reply["r"], 400, "--max-queued-requests")
        server.assert_no_leaks()
    finally:
        server.stop()

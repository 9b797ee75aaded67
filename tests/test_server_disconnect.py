"""A non-streaming request whose client goes away is aborted, on the SGLang and the OpenAI routes,
and counted as finished by abort; the server keeps serving and no page leaks."""

from __future__ import annotations

import re
import time

import pytest
import requests


def finished_by_abort(server) -> float:
    text = server.get("/metrics").text
    match = re.search(r'^pythia_requests_finished_total\{finish_reason="abort"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


# Thousands of tokens of prefill: seconds on a CPU, so the client gives up before the first token.
LONG_PROMPT = "The history of the world is long and full of events. " * 500


@pytest.mark.parametrize("path, body", [
    ("/generate", {"text": "Tell me a very long story.", "sampling_params": {"max_new_tokens": 400, "ignore_eos": True}}),
    ("/v1/completions", {"prompt": "Tell me a very long story.", "max_tokens": 400, "ignore_eos": True}),
    ("/v1/completions", {"prompt": LONG_PROMPT, "max_tokens": 400, "ignore_eos": True, "stream": True}),
], ids=["generate", "completions", "completions-stream-before-first-token"])
def test_a_non_streaming_request_is_aborted_when_its_client_goes_away(server, path, body):
    if path.startswith("/v1"):
        body = {**body, "model": server.get("/v1/models").json()["data"][0]["id"]}
    aborted = finished_by_abort(server)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(server.url + path, json=body, timeout=2)  # SmolLM2 on 2 cores: 400 tokens take ~40 s
    deadline = time.time() + 15
    while server.stats()["num_running"] and time.time() < deadline:
        time.sleep(0.2)
    assert server.stats()["num_running"] == 0, "the orphaned request still runs"
    assert finished_by_abort(server) == aborted + 1
    assert server.post("/generate", json={"text": "Hi", "sampling_params": {"max_new_tokens": 1}}).status_code == 200
    server.assert_no_leaks()


def test_a_stream_cut_mid_way_is_counted_as_finished_by_abort(server):
    aborted = finished_by_abort(server)
    body = {"text": "Tell me a very long story.", "stream": True,
            "sampling_params": {"max_new_tokens": 400, "ignore_eos": True}}
    with requests.post(server.url + "/generate", json=body, stream=True, timeout=60) as r:
        next(line for line in r.iter_lines() if line.startswith(b"data: "))  # then the client leaves
    deadline = time.time() + 15
    while (server.stats()["num_running"] or finished_by_abort(server) == aborted) and time.time() < deadline:
        time.sleep(0.2)
    assert finished_by_abort(server) == aborted + 1
    server.assert_no_leaks()


def test_an_openai_request_is_abortable_by_its_rid(server):
    import threading

    body = {"model": server.get("/v1/models").json()["data"][0]["id"], "prompt": "Tell me a very long story.",
            "max_tokens": 400, "ignore_eos": True, "rid": "openai-abort-me"}
    reply: dict = {}
    worker = threading.Thread(target=lambda: reply.setdefault("r", server.post("/v1/completions", json=body)))
    worker.start()
    deadline = time.time() + 30
    while not server.stats()["num_running"] and time.time() < deadline:
        time.sleep(0.1)
    assert server.post("/abort_request", json={"rid": "openai-abort-me"}).status_code == 200
    worker.join(timeout=30)
    assert not worker.is_alive(), "the aborted request did not end"
    r = reply["r"]
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "abort", r.text
    assert r.json()["usage"]["completion_tokens"] < 400
    server.assert_no_leaks()

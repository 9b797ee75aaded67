"""A crashed engine process is restarted: the requests that were in it fail with 503, every route
answers within a second meanwhile, registered workflows survive, and once the restart budget
(--max-engine-restarts) is spent /health fails for good."""

from __future__ import annotations

import json
import threading
import time

import requests

from pythia.testing.live_server import LiveServer

TOPOLOGY = {"type": "restart-check", "agents": [{"name": "planner"}, {"name": "coder"}],
            "edges": [{"from": "planner", "to": "coder"}]}


def _stream_until_cut(live: LiveServer, events: list, started: threading.Event) -> None:
    body = {"text": "count", "stream": True, "sampling_params": {"max_new_tokens": 6000, "ignore_eos": True}}
    with requests.post(live.url + "/generate", json=body, stream=True, timeout=120) as r:
        events.append(r.status_code)
        for line in r.iter_lines():
            if line.startswith(b"data: "):
                events.append(line[6:].decode())
                started.set()
    started.set()


def _kill_during_a_stream(live: LiveServer) -> list:
    """Starts a long stream, kills the engine once it has sent something, and returns the
    stream's status and events once it has ended."""
    events: list = []
    started = threading.Event()
    streamer = threading.Thread(target=_stream_until_cut, args=(live, events, started))
    streamer.start()
    assert started.wait(60)
    live.kill_engine()
    streamer.join(30)
    assert not streamer.is_alive()
    return events


def _wait_healthy(live: LiveServer, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(live.url + "/health", timeout=2).status_code == 200:
            return
        time.sleep(0.2)
    raise TimeoutError("the engine was not restarted")


def test_a_crashed_engine_is_restarted_and_only_its_requests_fail(tmp_path):
    from pythia.models.tiny_model import tiny_model_path

    live = LiveServer("--model-path", str(tiny_model_path()), "--max-engine-restarts", "1",
                      log_path=tmp_path / "server.log")
    try:
        assert live.post("/v1/workflows", json=TOPOLOGY).status_code == 200
        events = _kill_during_a_stream(live)
        # The stream in the dead engine ends with an error event, then [DONE].
        assert events[0] == 200 and events[-1] == "[DONE]", events[-3:]
        assert "engine process died" in json.loads(events[-2])["error"]["message"]

        # While the engine restarts, every route answers at once.
        for method, path, body in [("get", "/health", None), ("get", "/server_info", None),
                                   ("post", "/generate", {"text": "hi", "sampling_params": {"max_new_tokens": 1}})]:
            start = time.monotonic()
            r = requests.request(method, live.url + path, json=body, timeout=5)
            assert time.monotonic() - start < 1.0, path
            if r.status_code != 200:  # the restart may already be done
                assert r.status_code == 503, (path, r.text)
                assert "restart" in r.text, (path, r.text)

        _wait_healthy(live)
        r = live.post("/generate", json={"text": "hi", "sampling_params": {"max_new_tokens": 4}})
        assert r.status_code == 200 and r.json()["meta_info"]["completion_tokens"] == 4, r.text
        assert live.get("/v1/workflows/restart-check").status_code == 200  # sent again to the new engine
        live.assert_no_leaks()

        # The budget is spent: the next crash is final.
        live.kill_engine()
        time.sleep(0.5)
        r = requests.get(live.url + "/health", timeout=2)
        assert r.status_code == 503 and "could not be restarted" in r.text, r.text
        r = requests.post(live.url + "/generate", json={"text": "hi"}, timeout=2)
        assert r.status_code == 503 and "Retry-After" not in r.headers, r.text
    finally:
        live.stop()


def test_a_request_in_the_engine_at_two_crashes_is_refused_afterwards(tmp_path):
    from pythia.models.tiny_model import tiny_model_path

    live = LiveServer("--model-path", str(tiny_model_path()), "--max-engine-restarts", "3",
                      log_path=tmp_path / "server.log")
    try:
        for _ in range(2):  # the same request is in flight at two crashes
            _kill_during_a_stream(live)
            time.sleep(0.5)
            _wait_healthy(live)
        body = {"text": "count", "stream": True, "sampling_params": {"max_new_tokens": 6000, "ignore_eos": True}}
        r = requests.post(live.url + "/generate", json=body, timeout=30)
        assert r.status_code == 400 and "2 of its crashes" in r.json()["error"]["message"], r.text
        r = live.post("/generate", json={"text": "count", "sampling_params": {"max_new_tokens": 3, "ignore_eos": True}})
        assert r.status_code == 200, r.text  # another request with the same prompt is served
        live.assert_no_leaks()
    finally:
        live.stop()

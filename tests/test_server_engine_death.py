"""Once the engine process is gone for good (--max-engine-restarts 0), every route answers within a
second (503, or a plain answer for what needs no engine), instead of waiting for a reply that never
comes. tests/test_server_engine_restart.py covers the restart."""

from __future__ import annotations

import time

import requests

from pythia.testing.live_server import LiveServer


def test_every_route_answers_within_a_second_after_the_engine_dies(tmp_path):
    from pythia.models.tiny_model import tiny_model_path

    live = LiveServer("--model-path", str(tiny_model_path()), "--max-engine-restarts", "0",
                      log_path=tmp_path / "server.log")
    try:
        live.kill_engine()
        time.sleep(0.5)  # the front hears of the exit at once; give it a moment to fail the requests
        calls = [("get", "/server_info", None), ("get", "/metrics", None), ("get", "/check_integrity", None),
                 ("post", "/flush_cache", None), ("post", "/abort_request", {"rid": "x"}),
                 ("get", "/v1/workflows", None), ("get", "/health", None),
                 ("post", "/generate", {"text": "hi", "sampling_params": {"max_new_tokens": 1}})]
        for method, path, body in calls:
            start = time.monotonic()
            r = requests.request(method, live.url + path, json=body, timeout=5)
            assert time.monotonic() - start < 1.0, f"{path} took {time.monotonic() - start:.1f} s"
            assert r.status_code in (200, 503), (path, r.status_code, r.text)
            if r.status_code == 503 and path != "/health":
                assert "could not be restarted" in r.json()["error"]["message"], (path, r.text)
    finally:
        live.stop()

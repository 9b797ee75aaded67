"""A live server with the host KV tier: a job paused while others fill the device pool comes back
as a host hit, seen in the response's cached-token fields, in /server_info and in /metrics."""

from __future__ import annotations

import pytest

from pythia.testing.live_server import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from pythia.models.tiny_model import tiny_model_path

    # 16 pages of 16 tokens: two 120-token contexts do not fit beside a third.
    server = LiveServer("--model-path", str(tiny_model_path()), "--max-total-tokens", "256", "--page-size", "16",
                        "--enable-hierarchical-cache", "--hicache-ratio", "4",
                        # No prefetch: the context must come back at the call (a prefetch would make it a device hit).
                        "--hicache-prefetch-s", "0",
                        log_path=tmp_path_factory.mktemp("hicache") / "server.log")
    yield server
    server.close()


def generate(live: LiveServer, job: str, input_ids: list[int]) -> dict:
    r = live.post("/generate", json={"input_ids": input_ids, "sampling_params": {
        "max_new_tokens": 4, "temperature": 0, "ignore_eos": True},
        "workflow": {"type": "chat", "id": job, "agent": "assistant"}})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_paused_job_past_the_device_pool_comes_back_as_a_host_hit(live):
    contexts = {job: [5 + (31 * n + 7 * i) % 200 for i in range(120)] for n, job in enumerate("abc")}
    first = generate(live, "a", contexts["a"])
    assert first["meta_info"]["cached_tokens_details"] == {"device": 0, "host": 0}
    for job in ("b", "c"):  # while job a waits on its tool, b and c evict its pages from the device
        generate(live, job, contexts[job])
    again = generate(live, "a", contexts["a"] + first["output_ids"] + [9, 9, 9])
    details = again["meta_info"]["cached_tokens_details"]
    assert details["host"] >= 112, details  # a's 7 whole pages of prompt, back from host memory
    assert again["meta_info"]["cached_tokens"] == details["device"] + details["host"]
    stats = live.stats()
    assert stats["host_hit_tokens"] >= details["host"] and stats["host_bytes_loaded"] > 0
    metrics = live.get("/metrics").text
    hits = [line for line in metrics.splitlines() if line.startswith("pythia_host_cache_hit_tokens_total")]
    assert hits and float(hits[0].split()[-1]) >= details["host"], hits
    assert 'pythia_host_kv_pages{state="cached"}' in metrics
    live.assert_no_leaks()

"""A bounded soak: steady well-formed traffic with random aborts, disconnects, bad requests and one
engine kill mixed in. Afterwards every well-formed request has either its full answer or a clear
error (a 503 or 499 in the error format, an abort it asked for, or a stream's error event before
[DONE]), nothing answered 5xx otherwise, and the page accounting is exact."""

from __future__ import annotations

import json
import random
import threading
import time

import requests

from pythia.testing.live_server import LiveServer

KILL_AT_S = 12.0  # steady traffic, then the engine is killed
AFTER_RESTART_S = 15.0  # and traffic goes on this long once the engine is back
WORKERS = 4
BAD_BODIES = [
    ("/generate", {"text": "x", "sampling_params": {"temperature": -1}}),
    ("/generate", {"text": [], "sampling_params": {}}),
    ("/generate", {"input_ids": [10**9]}),
    ("/generate", {"text": "x", "sampling_params": [1, 2]}),
    ("/v1/completions", {"prompt": "x", "max_tokens": -5}),
    ("/v1/chat/completions", {"messages": "not a list"}),
    ("/v1/workflows", {"type": "t", "agents": [{"name": "a"}], "edges": [{"from": "a", "to": "a"}]}),  # unbounded
    ("/v1/workflows", {"type": "t", "agents": [{"name": "a", "after": ["a"]}]}),  # no such field
]


class Soak:
    def __init__(self, live: LiveServer, seed: int) -> None:
        self.live = live
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.outcomes: dict[str, int] = {}
        self.problems: list[str] = []
        self.serial = 0

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def clear_error(self, r: requests.Response) -> bool:
        try:
            return r.status_code in (499, 503) and bool(r.json()["error"]["message"])
        except ValueError:
            return False

    def back_off(self, r: requests.Response) -> None:
        if "Retry-After" in r.headers:  # as a polite client does, rather than spinning on 503s
            time.sleep(0.25)

    def generate(self, tokens: int, rid: str | None = None, abortable: bool = False) -> None:
        body = {"text": "count to ten", "sampling_params": {"max_new_tokens": tokens, "ignore_eos": True}}
        if rid:
            body["rid"] = rid
        r = requests.post(self.live.url + "/generate", json=body, timeout=120)
        if r.status_code == 200:
            meta = r.json()["meta_info"]
            if meta["completion_tokens"] == tokens or (abortable and meta["finish_reason"]["type"] == "abort"):
                self.count("full answer" if meta["completion_tokens"] == tokens else "aborted as asked")
                return
            self.problem(f"truncated answer without an error: {meta}")
        elif self.clear_error(r):
            self.count(f"error {r.status_code}")
            self.back_off(r)
        else:
            self.problem(f"/generate: {r.status_code} {r.text[:200]}")

    def stream(self, tokens: int) -> None:
        body = {"text": "count to ten", "stream": True, "sampling_params": {"max_new_tokens": tokens, "ignore_eos": True}}
        with requests.post(self.live.url + "/generate", json=body, stream=True, timeout=120) as r:
            if r.status_code != 200:
                if not self.clear_error(r):
                    self.problem(f"stream: {r.status_code} {r.text[:200]}")
                self.count(f"error {r.status_code}")
                self.back_off(r)
                return
            events = [line[6:].decode() for line in r.iter_lines() if line.startswith(b"data: ")]
        if not events or events[-1] != "[DONE]":
            self.problem(f"stream without [DONE]: {events[-2:]}")
            return
        last = json.loads(events[-2])
        if "error" in last:
            self.count("stream error event")
        elif last["meta_info"]["completion_tokens"] == tokens:
            self.count("full stream")
        else:
            self.problem(f"stream truncated without an error: {last['meta_info']}")

    def chat(self) -> None:
        r = requests.post(self.live.url + "/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "ignore_eos": True})
        if r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 8:
            self.count("full chat")
        elif self.clear_error(r):
            self.count(f"error {r.status_code}")
            self.back_off(r)
        else:
            self.problem(f"chat: {r.status_code} {r.text[:200]}")

    def abort_one(self) -> None:
        with self.lock:
            self.serial += 1
            rid = f"soak-abort-{self.serial}"
        worker = threading.Thread(target=self.generate, args=(64, rid, True))
        worker.start()
        time.sleep(self.rng.uniform(0.0, 1.0))
        requests.post(self.live.url + "/abort_request", json={"rid": rid}, timeout=10)
        worker.join()

    def disconnect(self) -> None:
        body = {"text": "a long story", "sampling_params": {"max_new_tokens": 200, "ignore_eos": True}}
        try:
            requests.post(self.live.url + "/generate", json=body, timeout=self.rng.uniform(0.1, 1.0))
        except requests.exceptions.RequestException:
            pass
        self.count("disconnected")

    def bad(self) -> None:
        path, body = self.rng.choice(BAD_BODIES)
        r = requests.post(self.live.url + path, json=body, timeout=30)
        if 400 <= r.status_code < 500 or self.clear_error(r):
            self.count("refused bad request")
        else:
            self.problem(f"bad request {path} {body}: {r.status_code} {r.text[:200]}")

    def worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            action = self.rng.choices(["generate", "stream", "chat", "abort", "disconnect", "bad"],
                                      weights=[4, 2, 2, 1, 1, 2])[0]
            try:
                {"generate": lambda: self.generate(self.rng.randint(1, 24)), "stream": lambda: self.stream(16),
                 "chat": self.chat, "abort": self.abort_one, "disconnect": self.disconnect, "bad": self.bad}[action]()
            except requests.exceptions.RequestException as e:
                self.problem(f"{action}: {type(e).__name__}: {e}")


def test_soak_with_aborts_disconnects_bad_requests_and_an_engine_kill(tmp_path):
    from pythia.models.tiny_model import tiny_model_path

    live = LiveServer("--model-path", str(tiny_model_path()), "--max-engine-restarts", "2",
                      "--max-total-tokens", "4096", log_path=tmp_path / "server.log")
    try:
        soak = Soak(live, seed=12)
        stop = threading.Event()
        threads = [threading.Thread(target=soak.worker, args=(stop,)) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        time.sleep(KILL_AT_S)
        before_kill = dict(soak.outcomes)
        live.kill_engine()
        time.sleep(0.5)  # the front hears of it at once
        deadline = time.monotonic() + 180
        while requests.get(live.url + "/health", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the engine was not restarted"
            time.sleep(0.2)
        after_restart = dict(soak.outcomes)
        time.sleep(AFTER_RESTART_S)
        stop.set()
        for t in threads:
            t.join(180)
        print("soak outcomes:", before_kill, after_restart, soak.outcomes)
        assert not soak.problems, soak.problems[:10]
        for phase in (before_kill, soak.outcomes):
            assert phase.get("full answer", 0) > 0 and phase.get("refused bad request", 0) > 0, phase
        assert soak.outcomes["full answer"] > after_restart.get("full answer", 0), "nothing served after the restart"
        assert after_restart.get("error 503", 0) > 0, "nothing met the engine's restart"
        live.assert_no_leaks()
        r = live.post("/generate", json={"text": "hi", "sampling_params": {"max_new_tokens": 4, "ignore_eos": True}})
        assert r.status_code == 200 and r.json()["meta_info"]["completion_tokens"] == 4
    finally:
        live.stop()

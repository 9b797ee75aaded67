"""Graceful shutdown on SIGTERM: new requests get 503 at once, those in flight get
--shutdown-timeout-s to finish, the rest end with a clear error (a stream with an error event and
[DONE]), the server exits 0 and leaves no socket files behind."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

from pythia.managers.engine_supervisor import IPC_DIR_PREFIX, remove_stale_ipc_dirs
from pythia.testing.live_server import LiveServer

# Thousands of tokens take far longer than the 10 s bound on a CPU; eight take well under a second.
LONG = {"max_new_tokens": 7000, "ignore_eos": True}
SHORT = {"max_new_tokens": 8, "ignore_eos": True}


def _ipc_dirs(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{IPC_DIR_PREFIX}{pid}-*"))


def test_sigterm_drains_then_ends_what_is_left_and_cleans_up(tmp_path):
    from pythia.models.tiny_model import tiny_model_path

    live = LiveServer("--model-path", str(tiny_model_path()), "--shutdown-timeout-s", "10",
                      log_path=tmp_path / "server.log")
    results: dict[str, object] = {}
    stream_started = threading.Event()

    def stream() -> None:
        body = {"text": "a long story", "stream": True, "sampling_params": LONG}
        with requests.post(live.url + "/generate", json=body, stream=True, timeout=120) as r:
            lines = [line[6:].decode() for line in r.iter_lines() if line.startswith(b"data: ")
                     and (stream_started.set() or True)]
        results["stream"] = (r.status_code, lines)

    def post(name: str, params: dict) -> None:
        r = requests.post(live.url + "/generate", json={"text": name, "sampling_params": params}, timeout=120)
        results[name] = (r.status_code, r.json())

    try:
        assert _ipc_dirs(live.proc.pid), "the server keeps its sockets in its own folder"
        threads = [threading.Thread(target=stream),
                   threading.Thread(target=post, args=("long", LONG)),
                   threading.Thread(target=post, args=("short", SHORT))]
        for t in threads:
            t.start()
        assert stream_started.wait(60)
        deadline = time.monotonic() + 60
        # All three in the server (the short one may be done already) before the signal.
        while "short" not in results and sum(live.stats()[k] for k in ("num_running", "num_waiting")) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        live.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        refused = requests.post(live.url + "/generate", json={"text": "late"}, timeout=5)
        assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
        assert refused.headers.get("Retry-After") == "1"
        assert requests.get(live.url + "/health", timeout=5).status_code == 503  # out of the balancer's rotation
        for t in threads:
            t.join(60)
        assert live.proc.wait(30) == 0
    finally:
        if live.proc.poll() is None:
            live.proc.kill()
        live.stop()

    status, body = results["short"]
    assert status == 200 and body["meta_info"]["completion_tokens"] == 8, body  # finished within the bound
    status, body = results["long"]
    assert status == 503 and "shutting down" in body["error"]["message"], body
    status, lines = results["stream"]
    assert status == 200 and lines[-1] == "[DONE]"
    assert "shutting down" in json.loads(lines[-2])["error"]["message"]
    assert not _ipc_dirs(live.proc.pid)


def test_socket_folders_of_dead_servers_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{IPC_DIR_PREFIX}{dead.pid}-abc"
    mine = tmp_path / f"{IPC_DIR_PREFIX}{__import__('os').getpid()}-abc"
    unrelated = tmp_path / f"{IPC_DIR_PREFIX}not-a-pid"
    for d in (stale, mine, unrelated):
        d.mkdir()
        (d / "engine-1-requests").touch()
    remove_stale_ipc_dirs(tmp_path)
    assert not stale.exists() and mine.exists() and unrelated.exists()

"""Starts a real Pythia server as a subprocess on a free loopback port (tests, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, *flags: str, api_key: str | None = None, log_path: str | Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        cmd = [sys.executable, "-m", "pythia.launch_server", "--port", str(self.port), "--log-level", "warning", *flags]
        if api_key:
            cmd += ["--api-key", api_key]
        self.log = open(log_path, "w") if log_path else None
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.wait_ready()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise TimeoutError("server did not become healthy")

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, timeout=120, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, headers={**self.headers, **kw.pop("headers", {})}, timeout=300, **kw)

    def kill_engine(self) -> None:
        """SIGKILLs the server's engine process (its one spawned child) and waits until it is gone."""
        import psutil

        engines = [p for p in psutil.Process(self.proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(engines) == 1, engines
        engines[0].kill()
        engines[0].wait(10)

    def stats(self) -> dict:
        return self.get("/server_info").json()["internal_states"][0]

    def assert_no_leaks(self) -> None:
        """Nothing running, every page free or cached, and the core's own integrity check."""
        deadline = time.time() + 30
        while True:
            stats = self.stats()
            if stats["num_running"] + stats["num_waiting"] == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert stats["num_running"] + stats["num_waiting"] == 0, stats
        assert stats["protected_pages"] == 0, stats
        assert stats["free_pages"] + stats["evictable_pages"] == stats["num_pages"], stats
        reply = self.get("/check_integrity")
        assert reply.status_code == 200 and reply.json() == {"ok": True}, reply.text

    def close(self) -> None:
        """Stops the server after checking that it leaked no KV pages."""
        try:
            self.assert_no_leaks()
        finally:
            self.stop()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.log:
            self.log.close()

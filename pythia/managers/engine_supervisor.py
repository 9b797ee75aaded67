"""Starts the engine process, notices when it dies, and restarts it within a budget.

Each incarnation of the engine talks to the front over its own pair of IPC sockets, so that a
message sent to a dead engine can never reach its successor. The sockets live in one private
directory per server, removed when the server stops; directories that servers killed with
SIGKILL left behind are removed by the next server that starts.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pythia.server_args import ServerArgs

logger = logging.getLogger(__name__)

IPC_DIR_PREFIX = "pythia-ipc-"
RESTART_WINDOW_S = 600.0  # --max-engine-restarts counts restarts within this window
READY_TIMEOUT_S = 600.0  # converting and loading a model can take minutes on a slow disk


class EngineStartError(RuntimeError):
    pass


def remove_stale_ipc_dirs(tmp: Path | None = None) -> None:
    """Removes the socket directories of servers that are no longer running (killed by SIGKILL,
    which no cleanup survives). Only this user's, and only those whose owner pid is gone."""
    tmp = tmp or Path(tempfile.gettempdir())
    for path in tmp.glob(IPC_DIR_PREFIX + "*"):
        try:
            pid = int(path.name[len(IPC_DIR_PREFIX):].split("-")[0])
            if path.stat().st_uid != os.getuid() or _pid_running(pid):
                continue
        except (ValueError, OSError):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class EngineSupervisor:
    def __init__(self, args: ServerArgs) -> None:
        self.args = args
        self.max_restarts = args.max_engine_restarts
        self.ipc_dir = Path(tempfile.mkdtemp(prefix=f"{IPC_DIR_PREFIX}{os.getpid()}-"))
        self.process: mp.process.BaseProcess | None = None
        self.incarnation = 0
        self.restarts: collections.deque[float] = collections.deque()
        self.closed = False
        self._ready: Any = None  # the pipe the spawned engine reports ready on

    def addresses(self) -> tuple[str, str]:
        """The socket addresses of the next incarnation."""
        base = f"ipc://{self.ipc_dir}/engine-{self.incarnation + 1}"
        return base + "-requests", base + "-outputs"

    def start(self, requests_addr: str, outputs_addr: str) -> dict[str, Any]:
        """Starts an engine and waits until it is ready; returns its info. Blocks for as long as
        the model takes to load."""
        self.spawn(requests_addr, outputs_addr)
        return self.wait_ready()

    def spawn(self, requests_addr: str, outputs_addr: str) -> None:
        """Starts an engine process connected to the given addresses. Call it from the main thread:
        the engine asks Linux to kill it when the thread that started it exits."""
        from pythia.managers.engine_process import run_engine_process

        if self.closed:
            raise EngineStartError("the server is stopping")
        self.incarnation += 1
        ctx = mp.get_context("spawn")
        self._ready, child_end = ctx.Pipe(duplex=False)
        process = ctx.Process(target=run_engine_process, args=(self.args, requests_addr, outputs_addr, child_end),
                              name=f"pythia-engine-{self.incarnation}", daemon=True)
        process.start()
        child_end.close()
        self.process = process

    def wait_ready(self) -> dict[str, Any]:
        """Waits for the spawned engine's ready message; EngineStartError if it exits first or
        reports an error. Blocking: off the event loop, call it in a thread."""
        process, ready = self.process, self._ready
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            while not ready.poll(0.1):
                if not process.is_alive():
                    raise EngineStartError(f"the engine process exited with code {process.exitcode} while starting")
                if time.monotonic() > deadline:
                    raise EngineStartError(f"the engine was not ready after {READY_TIMEOUT_S:.0f} s")
            status, payload = ready.recv()
        except EOFError:
            raise EngineStartError(f"the engine process exited with code {process.exitcode} while starting") from None
        finally:
            ready.close()
        if status != "ready":
            self.kill()
            raise EngineStartError(payload)
        return payload

    async def wait_exit(self) -> int | None:
        """Returns once the current engine process has exited, with its exit code."""
        process = self.process
        if process is None:
            return None
        loop = asyncio.get_running_loop()
        exited = loop.create_future()
        loop.add_reader(process.sentinel, lambda: exited.done() or exited.set_result(None))
        try:
            if process.is_alive():
                await exited
        finally:
            loop.remove_reader(process.sentinel)
        process.join(1)
        return process.exitcode

    def may_restart(self) -> bool:
        """Takes one restart from the budget if any is left (--max-engine-restarts per window)."""
        now = time.monotonic()
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW_S:
            self.restarts.popleft()
        if len(self.restarts) >= self.max_restarts:
            return False
        self.restarts.append(now)
        return True

    def kill(self) -> None:
        process = self.process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)

    def close(self) -> None:
        """Stops the engine and removes every socket file the server created."""
        self.closed = True
        self.kill()
        shutil.rmtree(self.ipc_dir, ignore_errors=True)

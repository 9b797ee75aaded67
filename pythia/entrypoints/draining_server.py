"""uvicorn's server with a graceful shutdown in front of its own.

On the first SIGTERM or SIGINT the server state drains (`ServerState.drain`: new requests get 503,
those in flight get `--shutdown-timeout-s` to finish, the rest an error) while uvicorn still
answers; only then does uvicorn close its connections and run the app's shutdown, which stops the
engine and removes the IPC files. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn

from pythia.entrypoints.server_state import ServerState

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state
        self.drain_requested = False
        self.drain_task: asyncio.Future | None = None

    def handle_exit(self, sig: int, frame) -> None:
        # uvicorn's own handler also records the signal to raise it again after shutdown, which
        # would end a gracefully stopped server with "killed by SIGTERM"; this one exits 0.
        if self.drain_requested:
            self.force_exit = self.should_exit = True
            return
        self.drain_requested = True
        logger.info("received %s: draining", signal.Signals(sig).name)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_requested and self.drain_task is None:
            self.drain_task = asyncio.ensure_future(self.state.drain(self.state.args.shutdown_timeout_s))
        if self.drain_task is not None and self.drain_task.done():
            self.should_exit = True
        return await super().on_tick(counter)

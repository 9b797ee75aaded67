"""What every route handler reaches through `request.app.state.pythia`, and `state_of` to reach it.

`state_of` lives beside `ServerState` rather than in `generation.py`: every route module needs it,
the workflow routes generate nothing, and `http_server.create_app` is what puts the state where
`state_of` looks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from pythia import __version__
from pythia.entrypoints.metrics import Metrics
from pythia.managers.engine_supervisor import EngineSupervisor
from pythia.managers.frontend import Frontend
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs

if TYPE_CHECKING:
    from fastapi import Request

logger = logging.getLogger(__name__)


class ServerState:
    def __init__(self, args: ServerArgs, frontend: Frontend, supervisor: EngineSupervisor | None) -> None:
        self.args = args
        self.frontend = frontend
        self.info = frontend.info
        self.supervisor = supervisor
        self.metrics = Metrics(frontend)
        self.version = __version__
        self.draining = False  # set on SIGTERM: new requests get 503 while in-flight ones finish
        self.http_in_flight = 0  # requests past the gate and not yet answered (RequestGate counts them)

    @property
    def model_name(self) -> str:
        return self.info["served_model_name"]

    async def drain(self, timeout: float) -> None:
        """Graceful shutdown: refuse new requests, give the ones in flight `timeout` seconds to
        finish, then end the rest with an error (streams get an error event and [DONE])."""
        self.draining = True
        logger.info("shutting down: waiting up to %.0f s for %d requests in flight", timeout, self.http_in_flight)
        deadline = time.monotonic() + timeout
        while self.http_in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.http_in_flight:
            logger.warning("shutting down: ending %d requests still in flight", self.http_in_flight)
            self.frontend.engine_state = "stopped"  # a request still on its way in is refused too
            self.frontend.fail_all(f"the server is shutting down; the request did not finish within {timeout:g} s "
                                   "(--shutdown-timeout-s)", 503)
            # Their handlers write the errors out; uvicorn's own shutdown waits for the connections.
            deadline = time.monotonic() + 2.0
            while self.http_in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    def close(self) -> None:
        """Stops the engine and removes the files the server created."""
        self.frontend.close()
        if self.supervisor is not None:
            self.supervisor.close()

    def check_limits(self, params: SamplingParams, num_prompts: int) -> None:
        """ValueError naming the limit a request's parameters exceed (the --max-* flags)."""
        args = self.args
        if params.n > args.max_n:
            raise ValueError(f"n ({params.n}) exceeds the limit of {args.max_n} (--max-n)")
        stops = len(params.stop) + len(params.stop_regex) + len(params.stop_token_ids)
        if stops > args.max_stop_sequences:
            raise ValueError(f"{stops} stop strings, patterns and token ids exceed the limit of "
                             f"{args.max_stop_sequences} (--max-stop-sequences)")
        if params.n * num_prompts > args.max_queued_requests:
            raise ValueError(f"{num_prompts} prompts x n={params.n} exceed the queue limit of "
                             f"{args.max_queued_requests} requests (--max-queued-requests)")

    def args_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self.args)
        values.pop("api_key", None)
        return values

    @functools.lru_cache(maxsize=65536)
    def token_text(self, token: int) -> str:
        """One token decoded alone, special tokens kept (SGLang's logprob token text)."""
        return self.frontend.tokenizer.decode([token], skip_special_tokens=False)


def state_of(request: Request) -> ServerState:
    return request.app.state.pythia

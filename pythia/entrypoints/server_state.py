"""What every route handler reaches through `request.app.state.pythia`, and `state_of` to reach it.

`state_of` lives beside `ServerState` rather than in `generation.py`: every route module needs it,
the workflow routes generate nothing, and `http_server.create_app` is what puts the state where
`state_of` looks.
"""

from __future__ import annotations

import dataclasses
import functools
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from pythia import __version__
from pythia.entrypoints.metrics import Metrics
from pythia.managers.frontend import Frontend
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs

if TYPE_CHECKING:
    from fastapi import Request


class ServerState:
    def __init__(self, args: ServerArgs, frontend: Frontend, engine: BaseProcess | None) -> None:
        self.args = args
        self.frontend = frontend
        self.info = frontend.info
        self.engine = engine
        self.metrics = Metrics(frontend)
        self.version = __version__

    @property
    def model_name(self) -> str:
        return self.info["served_model_name"]

    def engine_alive(self) -> bool:
        return self.engine is None or self.engine.is_alive()

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

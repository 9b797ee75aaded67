"""Running generate requests and building their results, for every route module that generates.

The SGLang routes (`sglang_api`) and the OpenAI routes (`openai_api`) both run requests through
the frontend, accumulate each one's outputs in a `ResultBuilder` and stream server-sent events;
each then shapes the result its own way.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from pythia.entrypoints.errors import HTTPError, output_error
from pythia.entrypoints.server_state import ServerState
from pythia.managers.io_struct import GenerateOutput, GenerateRequest


DISCONNECT_POLL_S = 0.25  # how often a non-streaming request checks that its client is still there
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a request its client gave up on


class ResultBuilder:
    """Accumulates a request's outputs into SGLang's response shape."""

    def __init__(self, req: GenerateRequest, state: ServerState) -> None:
        self.req = req
        self.state = state
        self.start = time.perf_counter()
        self.first_token_at: float | None = None
        self.out: GenerateOutput | None = None
        self.output_ids: list[int] = []
        self.logprobs: dict[str, list] = {k: [] for k in ("input_token_logprobs", "input_top_logprobs",
                                                          "output_token_logprobs", "output_top_logprobs")}

    def add(self, out: GenerateOutput) -> dict[str, list]:
        """Takes one engine output; returns this output's logprob deltas in response form."""
        if out.error is not None:
            raise output_error(out.error_status, out.error, out.retry)
        if out.new_token_ids and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.out = out
        self.output_ids.extend(out.new_token_ids)
        delta = self._format_logprobs(out)
        for key, values in delta.items():
            self.logprobs[key].extend(values)
        return delta

    def _entry(self, logprob: float | None, token: int) -> list:
        text = self.state.token_text(token) if self.req.return_text_in_logprobs else None
        return [logprob, token, text]

    def _format_logprobs(self, out: GenerateOutput) -> dict[str, list]:
        if not self.req.return_logprob:
            return {}
        top = lambda rows: [None if r is None else [self._entry(lp, t) for lp, t in r] for r in rows]  # noqa: E731
        delta = {"input_token_logprobs": [self._entry(lp, t) for lp, t in out.input_token_logprobs],
                 "output_token_logprobs": [self._entry(lp, t) for lp, t in out.output_token_logprobs]}
        if self.req.top_logprobs_num:
            delta["input_top_logprobs"] = top(out.input_top_logprobs)
            delta["output_top_logprobs"] = top(out.output_top_logprobs)
        return delta

    def response(self, logprobs: dict[str, list] | None = None) -> dict[str, Any]:
        out = self.out
        meta: dict[str, Any] = {
            "id": self.req.rid,
            "finish_reason": out.finish_reason if out.finished else None,
            "prompt_tokens": out.prompt_tokens,
            "completion_tokens": out.completion_tokens,
            "cached_tokens": out.cached_tokens,
            "cached_tokens_details": {"device": out.cached_tokens - out.host_cached_tokens,
                                      "host": out.host_cached_tokens},
            "e2e_latency": time.perf_counter() - self.start,
        }
        if self.req.workflow.type or self.req.workflow.id or self.req.workflow.agent:
            meta["workflow"] = vars(self.req.workflow)
        if self.req.return_logprob:
            chosen = self.logprobs if logprobs is None else logprobs
            meta["input_token_logprobs"] = chosen["input_token_logprobs"]
            meta["output_token_logprobs"] = chosen["output_token_logprobs"]
            meta["output_token_logprobs_length"] = len(self.logprobs["output_token_logprobs"])
            if self.req.top_logprobs_num:
                meta["input_top_logprobs"] = chosen.get("input_top_logprobs", [])
                meta["output_top_logprobs"] = chosen.get("output_top_logprobs", [])
        return {"text": out.text, "output_ids": list(self.output_ids), "meta_info": meta}


async def run_to_completion(req: GenerateRequest, state: ServerState) -> ResultBuilder:
    builder = ResultBuilder(req, state)
    try:
        async for out in state.frontend.generate(req):
            builder.add(out)
    except asyncio.CancelledError:  # its client went away: the frontend aborted it
        state.metrics.requests.labels(finish_reason="abort").inc()
        raise
    state.metrics.observe(builder)
    return builder


async def run_many(requests: list[GenerateRequest], state: ServerState,
                   http_request: Request | None = None) -> list[ResultBuilder]:
    """Runs the requests to completion. With `http_request`, a client that disconnects before the
    answer cancels them, so that a non-streaming request does not run on for nobody; the route
    then ends with a 499 that nobody reads (rather than a cancellation uvicorn logs as a crash)."""
    tasks = [asyncio.ensure_future(run_to_completion(r, state)) for r in requests]
    watcher = asyncio.ensure_future(cancel_on_disconnect(http_request, tasks)) if http_request else None
    try:
        return list(await asyncio.gather(*tasks))
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        if watcher is not None and watcher.done() and not watcher.cancelled() and watcher.result():
            raise HTTPError(CLIENT_CLOSED_REQUEST, "the client disconnected") from None
        raise
    except BaseException:
        for t in tasks:
            t.cancel()
        raise
    finally:
        if watcher is not None:
            watcher.cancel()


async def cancel_on_disconnect(http_request: Request, tasks: list[asyncio.Future]) -> bool:
    """Cancels the tasks if the client goes away first; says whether it did."""
    while not all(t.done() for t in tasks):
        if await http_request.is_disconnected():
            for t in tasks:
                t.cancel()
            return True
        await asyncio.sleep(DISCONNECT_POLL_S)
    return False


async def json_response(obj: Any, status_code: int = 200) -> Response:
    """A JSON response rendered off the event loop: a batch's results with logprobs, or a large
    workflow profile, take long enough to serialize to stall every other request."""
    body = await asyncio.to_thread(json.dumps, obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body.encode(), status_code=status_code, media_type="application/json")


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"

"""The HTTP side of the server: tokenizes, hands requests to the engine process, routes its
outputs back to the waiting HTTP handlers, and aborts requests whose client went away."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import zmq
import zmq.asyncio

from pythia.managers.io_struct import AbortRequest, ControlReply, ControlRequest, GenerateOutput, GenerateRequest
from pythia.managers.request_validation import RequestLimits, validate_request

logger = logging.getLogger(__name__)


def ipc_addresses() -> tuple[str, str]:
    base = f"ipc:///tmp/pythia-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return base + "-requests", base + "-outputs"


class EngineDied(RuntimeError):
    pass


class EngineBusy(RuntimeError):
    """The engine did not answer a control request in time: it answers between steps, and one long
    prefill on a loaded machine can take longer. The server is not broken, so a 503, not a 500."""


class Frontend:
    def __init__(self, tokenizer: Any, info: dict[str, Any], requests_addr: str, outputs_addr: str,
                 max_queued_requests: int = 512) -> None:
        self.tokenizer = tokenizer
        self.info = info
        self.limits = RequestLimits.from_info(info)
        self.max_queued_requests = max_queued_requests
        # A text of C characters is at least C / (longest token's length) tokens: past this many
        # characters a prompt cannot fit the context, so it is refused before tokenizing it.
        longest_token = max((len(t) for t in tokenizer.get_vocab()), default=1)
        self.max_prompt_chars = max(1, longest_token) * self.limits.context_length
        self.ctx = zmq.asyncio.Context()
        self.to_engine = self.ctx.socket(zmq.PUSH)
        self.to_engine.bind(requests_addr)
        self.from_engine = self.ctx.socket(zmq.PULL)
        self.from_engine.bind(outputs_addr)
        self.queues: dict[str, asyncio.Queue[GenerateOutput]] = {}
        self.control_waiters: dict[int, asyncio.Future[ControlReply]] = {}
        self.control_tokens = itertools.count()
        self.receiver: asyncio.Task | None = None
        self.engine_alive = True

    def start(self, engine_alive=None) -> None:
        """Starts routing engine outputs; call from the server's event loop. With `engine_alive`,
        a watchdog fails every waiting request if the engine process dies, instead of letting
        its clients wait forever."""
        if self.receiver is None:
            loop = asyncio.get_running_loop()
            self.receiver = loop.create_task(self._receive_loop())
            if engine_alive is not None:
                self.watchdog = loop.create_task(self._watch(engine_alive))

    async def _watch(self, engine_alive) -> None:
        while engine_alive():
            await asyncio.sleep(0.5)
        self.engine_alive = False
        logger.error("the engine process died; failing %d waiting requests", len(self.queues))
        for rid, queue in list(self.queues.items()):
            queue.put_nowait(GenerateOutput(rid=rid, new_token_ids=[], text="", finished=True,
                                            finish_reason={"type": "abort", "message": "engine process died"},
                                            prompt_tokens=0, completion_tokens=0, cached_tokens=0,
                                            error="the engine process died", error_status=503))
        for waiter in self.control_waiters.values():
            if not waiter.done():
                waiter.set_exception(EngineDied("the engine process died"))

    async def _receive_loop(self) -> None:
        while True:
            msg = await self.from_engine.recv_pyobj()
            if isinstance(msg, ControlReply):
                waiter = self.control_waiters.pop(msg.token, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(msg)
                continue
            for out in msg:
                queue = self.queues.get(out.rid)
                if queue is not None:
                    queue.put_nowait(out)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text`; ValueError as check_prompt_text says."""
        self.check_prompt_text(text)
        # Special-token strings in the text (e.g. "<|im_start|>") map to their ids, as in SGLang.
        return self.tokenizer.encode(text)

    def check_prompt_text(self, text: str) -> None:
        """ValueError for a text too long to fit the context or that is not valid Unicode (a lone
        surrogate, which JSON can carry)."""
        if len(text) > self.max_prompt_chars:
            raise ValueError(f"the prompt has {len(text)} characters, more than any prompt that fits the context "
                             f"length of {self.limits.context_length} tokens ({self.max_prompt_chars} characters)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"the prompt is not valid Unicode: {e.reason} at character {e.start}") from None

    def new_rid(self) -> str:
        return uuid.uuid4().hex

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateOutput]:
        """Yields the request's outputs until it finishes. If the consumer stops early (client
        disconnected), the request is aborted so that its KV pages are freed."""
        if not self.engine_alive:
            raise EngineDied("the engine process died")
        try:  # refused here, a bad request never reaches the engine process
            if req.rid in self.queues:
                raise ValueError(f"request id {req.rid!r} is already in use")
            validate_request(req, self.limits)
        except ValueError as e:
            yield GenerateOutput.failure(req, str(e))
            return
        if len(self.queues) >= self.max_queued_requests:  # the server's state, not the request's fault
            yield GenerateOutput.failure(req, f"the server has {len(self.queues)} requests in flight, its limit "
                                              "(--max-queued-requests); retry later", 503)
            return
        queue: asyncio.Queue[GenerateOutput] = asyncio.Queue()
        self.queues[req.rid] = queue
        finished = False
        try:
            await self.to_engine.send_pyobj(req)
            while not finished:
                out = await queue.get()
                finished = out.finished
                yield out
        finally:
            self.queues.pop(req.rid, None)
            if not finished:
                await self.abort(req.rid)

    async def abort(self, rid: str) -> None:
        if self.engine_alive:  # a dead engine holds nothing, and a send to it would wait for a peer
            await self.to_engine.send_pyobj(AbortRequest(rid))

    async def control(self, kind: str, payload: dict[str, Any] | None = None, timeout: float = 60.0) -> ControlReply:
        if not self.engine_alive:  # answered now: a scraper must not pile up on a dead engine
            raise EngineDied("the engine process died")
        token = next(self.control_tokens)
        waiter: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()
        self.control_waiters[token] = waiter
        await self.to_engine.send_pyobj(ControlRequest(kind, token, payload or {}))
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise EngineBusy(f"the engine did not answer {kind} within {timeout:g} s; it is busy, try again") from None
        finally:
            self.control_waiters.pop(token, None)

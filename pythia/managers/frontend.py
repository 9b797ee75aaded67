"""The HTTP side of the server: tokenizes, hands requests to the engine process, routes its
outputs back to the waiting HTTP handlers, and aborts requests whose client went away."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import zmq
import zmq.asyncio

from pythia.managers.engine_supervisor import EngineSupervisor
from pythia.managers.io_struct import AbortRequest, ControlReply, ControlRequest, GenerateOutput, GenerateRequest
from pythia.managers.request_validation import RequestLimits, validate_request

logger = logging.getLogger(__name__)
T = TypeVar("T")


class EngineDied(RuntimeError):
    """The engine cannot take the request now; `retry` says whether a client should come back."""

    def __init__(self, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


MAX_RESTART_BACKOFF_S = 30.0
QUARANTINE_AFTER_CRASHES = 2  # a request in the engine at this many of its crashes is refused
MAX_SUSPECTS = 4096


def fingerprint(req: GenerateRequest) -> int:
    return hash((tuple(req.input_ids), repr(req.params)))


class CrashSuspects:
    """Requests that were in the engine when it crashed, by fingerprint: a client that retries a
    request that kills the engine would otherwise spend the whole restart budget."""

    def __init__(self) -> None:
        self.crashes: collections.OrderedDict[int, int] = collections.OrderedDict()

    def record_crash(self, fingerprints) -> None:
        for fp in set(fingerprints):
            self.crashes[fp] = self.crashes.get(fp, 0) + 1
            self.crashes.move_to_end(fp)
        while len(self.crashes) > MAX_SUSPECTS:
            self.crashes.popitem(last=False)

    def refused(self, fp: int) -> bool:
        return self.crashes.get(fp, 0) >= QUARANTINE_AFTER_CRASHES


# What a request is told while the engine is not running, by the front's engine state.
UNAVAILABLE = {"restarting": ("the engine process died and is being restarted; retry shortly", True),
               "dead": ("the engine process died and could not be restarted", False),
               "stopped": ("the server is shutting down", True)}


class EngineBusy(RuntimeError):
    """The engine did not answer a control request in time: it answers between steps, and one long
    prefill on a loaded machine can take longer. The server is not broken, so a 503, not a 500."""


class Frontend:
    def __init__(self, tokenizer: Any, info: dict[str, Any], max_queued_requests: int = 512) -> None:
        self.tokenizer = tokenizer
        self.info = info
        self.limits = RequestLimits.from_info(info)
        self.max_queued_requests = max_queued_requests
        # A text of C characters is at least C / (longest token's length) tokens: past this many
        # characters a prompt cannot fit the context, so it is refused before tokenizing it.
        longest_token = max((len(t) for t in tokenizer.get_vocab()), default=1)
        self.max_prompt_chars = max(1, longest_token) * self.limits.context_length
        self.ctx = zmq.asyncio.Context()
        self.to_engine: zmq.asyncio.Socket | None = None
        self.from_engine: zmq.asyncio.Socket | None = None
        self.queues: dict[str, asyncio.Queue[GenerateOutput]] = {}
        self.control_waiters: dict[int, asyncio.Future[ControlReply]] = {}
        self.control_tokens = itertools.count()
        self.receiver: asyncio.Task | None = None
        self.supervision: asyncio.Task | None = None
        self.engine_state = "running"
        # Controls that changed the engine's state and are sent again to a restarted engine
        # (registered workflow topologies), by key.
        self.replayed: dict[str, tuple[str, dict[str, Any]]] = {}
        self.in_flight: dict[str, int] = {}  # rid -> fingerprint, of the requests sent to the engine
        self.tokenizer_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pythia-tokenizer")
        self.suspects = CrashSuspects()

    def attach(self, requests_addr: str, outputs_addr: str) -> None:
        """Binds fresh sockets for an engine incarnation; the previous ones, and whatever was still
        queued in them for a dead engine, are dropped."""
        for sock in (self.to_engine, self.from_engine):
            if sock is not None:
                sock.close(linger=0)
        self.to_engine = self.ctx.socket(zmq.PUSH)
        self.to_engine.bind(requests_addr)
        self.from_engine = self.ctx.socket(zmq.PULL)
        self.from_engine.bind(outputs_addr)
        if self.receiver is not None:
            self.receiver.cancel()
            self.receiver = asyncio.get_running_loop().create_task(self._receive_loop(self.from_engine))

    def start(self, supervisor: EngineSupervisor | None = None) -> None:
        """Starts routing engine outputs; call from the server's event loop. With a supervisor, a
        dead engine fails the requests that were in it and is restarted within the supervisor's
        budget; meanwhile every request is answered at once with 503."""
        if self.receiver is None:
            loop = asyncio.get_running_loop()
            self.receiver = loop.create_task(self._receive_loop(self.from_engine))
            if supervisor is not None:
                self.supervision = loop.create_task(self._supervise(supervisor))

    async def _supervise(self, supervisor: EngineSupervisor) -> None:
        try:
            while await self._restart_after_exit(supervisor):
                pass
        except Exception:  # a bug here must not leave every request told "retry shortly" forever
            logger.exception("engine supervision failed")
            self.engine_state = "dead"

    async def _restart_after_exit(self, supervisor: EngineSupervisor) -> bool:
        """Waits for the engine to exit, fails what was in it and restarts it; False when it stays down."""
        code = await supervisor.wait_exit()
        if self.engine_state == "stopped":
            return False
        self.engine_state = "restarting"
        logger.error("the engine process died (exit code %s); failing the %d requests in it", code, len(self.queues))
        self.suspects.record_crash(self.in_flight.values())
        self.fail_all("the engine process died while serving this request", 503)
        for attempt in itertools.count():
            if not supervisor.may_restart():
                logger.error("not restarting the engine: --max-engine-restarts (%d) reached", supervisor.max_restarts)
                self.engine_state = "dead"
                return False
            await asyncio.sleep(min(2.0 ** attempt - 1, MAX_RESTART_BACKOFF_S))  # at once, then 1, 3, 7... s
            addrs = supervisor.addresses()
            try:
                self.attach(*addrs)
                supervisor.spawn(*addrs)
                await asyncio.to_thread(supervisor.wait_ready)
                await self._replay()
                break
            except Exception as e:
                if self.engine_state == "stopped":
                    return False
                logger.error("the engine failed to restart: %s: %s", type(e).__name__, e)
                await asyncio.to_thread(supervisor.kill)
        self.engine_state = "running"
        logger.warning("the engine process was restarted (incarnation %d)", supervisor.incarnation)
        return True

    async def _replay(self) -> None:
        for kind, payload in list(self.replayed.values()):
            reply = await self._control(kind, payload, 60.0)
            if not reply.ok:
                logger.error("could not restore %s after the restart: %s", kind, reply.payload.get("error"))

    def fail_all(self, message: str, status: int) -> None:
        """Ends every request in flight with an error, and every control waiter with EngineDied."""
        for rid, queue in list(self.queues.items()):
            queue.put_nowait(GenerateOutput.error_for(rid, message, status))
        for waiter in self.control_waiters.values():
            if not waiter.done():
                waiter.set_exception(EngineDied(message, retry=True))

    def unavailable(self) -> EngineDied | None:
        """Why the engine cannot take work now, or None when it can."""
        if self.engine_state == "running":
            return None
        return EngineDied(*UNAVAILABLE[self.engine_state])

    async def _receive_loop(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            msg = await sock.recv_pyobj()
            if isinstance(msg, ControlReply):
                waiter = self.control_waiters.pop(msg.token, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(msg)
                continue
            for out in msg:
                queue = self.queues.get(out.rid)
                if queue is not None:
                    queue.put_nowait(out)

    async def _send(self, msg: Any) -> bool:
        """Sends to the current engine; False if the engine died while the message was on its way
        (attach() closed the socket, cancelling the send), in which case fail_all has already
        answered whoever waits for a reply."""
        sock = self.to_engine
        try:
            await sock.send_pyobj(msg)
            return True
        except (asyncio.CancelledError, zmq.ZMQError):
            if sock is self.to_engine and not sock.closed:
                raise  # a real cancellation: the client went away
            return False

    async def in_tokenizer_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs `fn` (a route's parsing: tokenizing, rendering a chat template) on the tokenizer's
        own thread, so that a large batch of prompts does not stall the event loop, and so health
        checks and streams, for seconds. One thread: a fast tokenizer is not safe to call from
        several at once."""
        return await asyncio.get_running_loop().run_in_executor(self.tokenizer_thread, functools.partial(fn, *args))

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
        unavailable = self.unavailable()
        if unavailable is not None:
            yield GenerateOutput.failure(req, str(unavailable), 503, unavailable.retry)
            return
        fp = fingerprint(req)
        try:  # refused here, a bad request never reaches the engine process
            if req.rid in self.queues:
                raise ValueError(f"request id {req.rid!r} is already in use")
            validate_request(req, self.limits)
            if self.suspects.refused(fp):
                raise ValueError(f"this request (same prompt and parameters) was in the engine process at "
                                 f"{QUARANTINE_AFTER_CRASHES} of its crashes; it is refused")
        except ValueError as e:
            yield GenerateOutput.failure(req, str(e))
            return
        if len(self.queues) >= self.max_queued_requests:  # the server's state, not the request's fault
            yield GenerateOutput.failure(req, f"the server has {len(self.queues)} requests in flight, its limit "
                                              "(--max-queued-requests); retry later", 503)
            return
        queue: asyncio.Queue[GenerateOutput] = asyncio.Queue()
        self.queues[req.rid] = queue
        self.in_flight[req.rid] = fp
        finished = False
        try:
            await self._send(req)
            while not finished:
                out = await queue.get()
                finished = out.finished
                yield out
        finally:
            self.queues.pop(req.rid, None)
            self.in_flight.pop(req.rid, None)
            if not finished:
                await self.abort(req.rid)

    async def abort(self, rid: str) -> None:
        if self.engine_state == "running":  # a dead engine holds nothing
            await self._send(AbortRequest(rid))

    async def control(self, kind: str, payload: dict[str, Any] | None = None, timeout: float = 60.0,
                      replay_key: str | None = None) -> ControlReply:
        """Asks the engine; EngineDied at once when it is not running (a scraper must not pile up on
        a dead engine). With `replay_key`, a successful control is sent again to a restarted engine."""
        unavailable = self.unavailable()
        if unavailable is not None:
            raise unavailable
        reply = await self._control(kind, payload or {}, timeout)
        if replay_key is not None and reply.ok:
            self.replayed[replay_key] = (kind, payload or {})
        return reply

    async def _control(self, kind: str, payload: dict[str, Any], timeout: float) -> ControlReply:
        token = next(self.control_tokens)
        waiter: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()
        self.control_waiters[token] = waiter
        try:
            if not await self._send(ControlRequest(kind, token, payload)):
                raise EngineDied("the engine process died while answering", retry=True)
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise EngineBusy(f"the engine did not answer {kind} within {timeout:g} s; it is busy, try again") from None
        finally:
            self.control_waiters.pop(token, None)

    def close(self) -> None:
        self.engine_state = "stopped"
        for task in (self.receiver, self.supervision):
            if task is not None:
                task.cancel()
        self.ctx.destroy(linger=0)
        self.tokenizer_thread.shutdown(wait=False, cancel_futures=True)

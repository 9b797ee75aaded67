"""The model process: runs the Engine and talks to the HTTP front over ZeroMQ.

The model has its own process so that the front keeps answering health checks, metrics and
aborts while a long prefill runs (one forward pass holds this process for its whole length).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import traceback
from typing import Any

import zmq

from pythia.managers.engine import Engine
from pythia.managers.io_struct import AbortRequest, ControlReply, ControlRequest, GenerateOutput, GenerateRequest
from pythia.server_args import ServerArgs

logger = logging.getLogger(__name__)
HELD_POLL_MS = 5


def die_with_parent() -> None:
    """Asks Linux to kill this process when its parent dies, however the parent dies (a
    SIGKILLed server must not leave an engine holding gigabytes of KV pool behind)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def run_engine_process(args: ServerArgs, requests_addr: str, outputs_addr: str, ready: Any) -> None:
    """Entry point of the engine process. Sends ("ready", info) or ("error", message) on `ready`."""
    die_with_parent()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s engine %(levelname)s %(message)s")
    try:
        import torch

        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
        engine = Engine(args)
    except Exception as e:  # reported to the front, which exits with the message
        ready.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        return
    ctx = zmq.Context()
    inbox = ctx.socket(zmq.PULL)
    inbox.connect(requests_addr)
    outbox = ctx.socket(zmq.PUSH)
    outbox.connect(outputs_addr)
    ready.send(("ready", engine.info()))
    EngineLoop(engine, inbox, outbox).run()


class EngineLoop:
    def __init__(self, engine: Engine, inbox: zmq.Socket, outbox: zmq.Socket) -> None:
        self.engine = engine
        self.inbox = inbox
        self.outbox = outbox

    def run(self) -> None:
        held = False
        while True:
            if held:
                # The last step started nothing though work is queued: wait a moment for a
                # message instead of spinning on empty steps.
                self.inbox.poll(HELD_POLL_MS)
            # Block only when there is nothing to compute.
            self.receive(block=not self.engine.has_work())
            if self.engine.has_work():
                outputs = self.engine.step()
                held = not self.engine.last_step_ran
                if outputs:
                    self.outbox.send_pyobj(outputs)

    def receive(self, block: bool) -> None:
        flags = 0 if block else zmq.NOBLOCK
        while True:
            try:
                msg = self.inbox.recv_pyobj(flags)
            except zmq.Again:
                return
            self.handle(msg)
            flags = zmq.NOBLOCK

    def handle(self, msg: Any) -> None:
        try:
            self._handle(msg)
        except Exception as e:  # a bug met by one message: that request fails, the engine goes on
            logger.exception("handling %s failed", type(msg).__name__)
            if isinstance(msg, GenerateRequest):
                try:  # if it got in: the front forgets it, so must the engine
                    self.engine.abort(msg.rid)
                except Exception:
                    logger.exception("aborting %s after the failure failed too", msg.rid)
                self.outbox.send_pyobj([GenerateOutput.failure(msg, f"internal error: {type(e).__name__}: {e}", 500)])

    def _handle(self, msg: Any) -> None:
        engine = self.engine
        if isinstance(msg, GenerateRequest):
            error = engine.add_request(msg)
            if error is not None:
                self.outbox.send_pyobj([error])
        elif isinstance(msg, AbortRequest):
            out = engine.abort(msg.rid)
            if out is not None:
                self.outbox.send_pyobj([out])
        elif isinstance(msg, ControlRequest):
            self.outbox.send_pyobj(self.control(msg))
        else:
            logger.error("unknown message %r", type(msg))

    def control(self, msg: ControlRequest) -> ControlReply:
        engine = self.engine
        try:
            if msg.kind == "flush_cache":
                return ControlReply(msg.token, True, {"evicted_pages": engine.flush_cache()})
            if msg.kind == "stats":
                return ControlReply(msg.token, True, engine.stats())
            if msg.kind == "check_integrity":
                engine.check_integrity()
                return ControlReply(msg.token, True, {})
            if msg.kind.startswith("workflow_"):
                return ControlReply(msg.token, *engine.workflow_control(msg.kind, msg.payload))
            return ControlReply(msg.token, False, {"error": f"unknown control request {msg.kind}"})
        except Exception as e:
            return ControlReply(msg.token, False, {"error": str(e)})

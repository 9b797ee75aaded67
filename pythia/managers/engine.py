"""The engine: the C++ core's plans, carried out on the model, one step at a time.

Transport-free on purpose: the engine process (engine_process.py) feeds it messages, and
benchmarks and tests can drive it directly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pythia import _core
from pythia.managers.io_struct import GenerateOutput, GenerateRequest
from pythia.managers.request_state import RequestState
from pythia.managers.request_validation import RequestLimits, validate_request
from pythia.kernels.kv_transfer import KVTransfer
from pythia.managers.step_log import StepLog
from pythia.mem_cache.host_pool import HostKVPool
from pythia.mem_cache.offload_controller import OffloadController
from pythia.model_executor.grammar import GrammarBackend
from pythia.model_executor.model_runner import ModelRunner
from pythia.model_executor.sampler import SampleRow
from pythia.server_args import ServerArgs
from pythia.workflow.tracker import WorkflowTracker

logger = logging.getLogger(__name__)


DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"


def resolve_model_path(args: ServerArgs) -> Path:
    if args.model_path:
        return Path(args.model_path)
    from pythia.models.default_model import default_model_path

    return default_model_path()


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


class Engine:
    def __init__(self, args: ServerArgs) -> None:
        self.args = args
        args.scheduler_config()  # a bad flag fails here, before the model loads
        self.num_pages = args.max_total_tokens // args.page_size
        self.max_total_tokens = self.num_pages * args.page_size
        self.init_model()
        self.init_core()
        self.init_host_tier()
        self.init_state()

    def init_core(self) -> None:
        pool = self.runner.pool
        # --hicache-size is in GB: its pages follow from the model's KV bytes per token.
        config = self.args.scheduler_config(pool.bytes // (pool.num_pages * pool.page_size))
        self.core = _core.Scheduler(config)
        self.num_host_pages = config.num_host_pages

    def init_host_tier(self) -> None:
        """The host KV pool and the copies into and out of it, when the core has a host tier."""
        self.offload: OffloadController | None = None
        if not self.num_host_pages:
            return
        pool = self.runner.pool
        host = HostKVPool(pool, self.num_host_pages)
        self.offload = OffloadController(KVTransfer(pool, host, self.args.hicache_io_backend))
        logger.info("host KV tier: %d pages (%.2f GB), write policy %s, policy %s, io backend %s",
                    host.num_pages, host.bytes / 2**30, self.args.hicache_write_policy, self.args.hicache_policy,
                    self.args.hicache_io_backend)

    def init_model(self) -> None:
        self.model_path = resolve_model_path(self.args)
        self.runner = ModelRunner(self.model_path, self.args.device, self.args.dtype, self.num_pages,
                                  self.args.page_size)
        self.model_config = self.runner.model_config
        self.tokenizer = load_tokenizer(self.model_path)
        self.eos_ids = frozenset(self.model_config.eos_token_ids) | (
            {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set())
        self.context_length = self.args.context_length or self.model_config.max_position_embeddings
        self.limits = RequestLimits(self.model_config.vocab_size, self.context_length, self.max_total_tokens)
        self.grammar = GrammarBackend(self.tokenizer, self.model_config.vocab_size)

    def init_state(self) -> None:
        self.requests: dict[int, RequestState] = {}
        self.by_rid: dict[str, RequestState] = {}
        self.next_core_id = 0
        self.last_step_ran = False  # whether the latest step() computed anything
        self.counters = {"prompt_tokens": 0, "generation_tokens": 0, "requests_finished": 0}
        self.tracker = WorkflowTracker(self.core, self.args.job_idle_timeout_s)
        self.clock_origin = time.monotonic()
        self.step_log = StepLog(self.args.step_log) if self.args.step_log else None

    def now(self) -> float:
        """Seconds since start: the clock of the profiler and of the core's predictions."""
        return time.monotonic() - self.clock_origin

    # ---------------------------------------------------------------- requests

    def info(self) -> dict[str, Any]:
        return {
            "model_path": str(self.model_path),
            "served_model_name": self.args.served_model_name or self.args.model_path or DEFAULT_MODEL_NAME,
            "architecture": self.model_config.architecture,
            "vocab_size": self.model_config.vocab_size,
            "context_length": self.context_length,
            "max_total_tokens": self.max_total_tokens,
            "page_size": self.args.page_size,
            "eos_token_ids": sorted(self.eos_ids),
            "device": str(self.runner.device),
            "dtype": str(self.runner.dtype).removeprefix("torch."),
        }

    def add_request(self, req: GenerateRequest) -> GenerateOutput | None:
        """Queues a request; returns an error output instead when it cannot be served (400 for a
        request the engine refuses, 500 for a bug it met, with nothing of it left behind)."""
        wf = req.workflow
        state = None
        try:
            if req.rid in self.by_rid:
                raise ValueError(f"request id {req.rid!r} is already in use")
            self.validate(req)
            state = RequestState(req=req, core_id=self.next_core_id, eos_ids=self.eos_ids)
            state.grammar = self.grammar.matcher(req.params)
            tags, hints = self.tracker.on_arrival(wf)
            hints.max_cached_tokens = max(state.logprob_start - 1, 0) if req.return_logprob else -1
            self.core.add_request(state.core_id, np.asarray(req.input_ids, dtype=np.int32), req.params.max_new_tokens,
                                  arrival_time=time.time(), tags=tags, hints=hints)
        except ValueError as e:
            self.tracker.on_rejected(wf)
            return GenerateOutput.failure(req, str(e))
        except Exception as e:
            logger.exception("adding request %s failed", req.rid)
            if state is not None and self.core.has_request(state.core_id):
                self.core.abort(state.core_id)
            self.tracker.on_rejected(wf)
            self.next_core_id += 1  # the id may be in the core's books: never reuse it
            return GenerateOutput.failure(req, f"internal error adding the request: {type(e).__name__}: {e}", 500)
        self.next_core_id += 1
        self.requests[state.core_id] = state
        self.by_rid[req.rid] = state
        self.counters["prompt_tokens"] += len(req.input_ids)
        state.arrival_s = now = self.now()
        self.tracker.on_queued(wf, len(req.input_ids), now)
        return None

    def _finished(self, state: RequestState) -> None:
        now = self.now()
        self.tracker.on_finish(state.req.workflow, len(state.output_ids), now, now - state.arrival_s)

    def validate(self, req: GenerateRequest) -> None:
        validate_request(req, self.limits)

    def abort(self, rid: str) -> GenerateOutput | None:
        state = self.by_rid.pop(rid, None)
        if state is None:
            return None
        self.core.abort(state.core_id)
        del self.requests[state.core_id]
        self._finished(state)
        state.finish_reason = {"type": "abort", "message": "aborted"}
        return state.take_output(finished=True)

    def has_work(self) -> bool:
        return bool(self.requests) or self._transfers_in_flight()

    def _transfers_in_flight(self) -> bool:
        # Copies the core has decided (the last finished request's backups) or the GPU has not finished.
        return self.offload is not None and (bool(self.offload.in_flight) or self.core.has_pending_transfers())

    # ---------------------------------------------------------------- step

    def step(self) -> list[GenerateOutput]:
        """One schedule -> forward -> sample -> update cycle; returns outputs to send."""
        started = time.perf_counter()
        now = self.now()
        self.core.set_time(now)
        self.tracker.sweep(now)
        plan = self.core.schedule()
        num = len(plan)
        # Page copies first: a load's request runs in a later step, an offload's pages may be
        # overwritten by this one's forward pass.
        transfers_done = self.offload.run(plan) if self.offload is not None else []
        self.last_step_ran = num > 0 or bool(transfers_done) or self._transfers_in_flight()
        if num == 0:
            # Work is queued but none could start (waiting for a load, or a guard: the working-set
            # gate never holds everything, since with nothing running held jobs go ahead): close
            # the empty step.
            empty = np.zeros(0, dtype=np.int32)
            self.core.update(plan.req_ids, empty, np.zeros(0, dtype=bool), transfers_done)
            return []
        states = [self.requests[int(c)] for c in plan.req_ids]
        tokens = np.zeros(num, dtype=np.int32)
        finished = np.zeros(num, dtype=np.uint8)
        failed: dict[int, str]  # entry -> why its step failed; it alone ends, with a 500
        try:
            logits, logit_start = self._forward(plan, states)
        except Exception as e:  # nothing says which entry broke the batch: all of them end
            logger.exception("the forward pass failed; ending the %d requests in its batch", num)
            failed = {i: f"the forward pass failed: {type(e).__name__}: {e}" for i in range(num)}
        else:
            failed = self._sample_step(plan, states, logits, logit_start, tokens, finished)
        for i in failed:
            finished[i] = _core.STEP_FAILED
        self.core.update(plan.req_ids, tokens, finished, transfers_done)
        if self.step_log is not None:
            self.step_log.write(plan, now, time.perf_counter() - started)
        outputs = []
        for i, st in enumerate(states):
            if finished[i]:
                self.requests.pop(st.core_id, None)
                self.by_rid.pop(st.req.rid, None)
                self.counters["requests_finished"] += 1
                self._finished(st)
                outputs.append(GenerateOutput.failure(st.req, failed[i], 500) if i in failed
                               else st.take_output(finished=True))
            elif st.req.stream and st.pending_ids:
                outputs.append(st.take_output(finished=False))
        return outputs

    def _forward(self, plan: Any, states: list[RequestState]) -> tuple[torch.Tensor, np.ndarray]:
        """Runs the step's batch; returns the logits and where each entry's rows start."""
        extra_rows: dict[int, np.ndarray] = {}
        # Each property read builds a numpy view through the bindings: once per step, not per entry.
        cached, start_pos, num_tokens = plan.cached_tokens, plan.start_pos, plan.num_tokens
        host_cached = plan.host_cached_tokens
        for i, st in enumerate(states):
            if st.cached_tokens < 0:
                st.cached_tokens = int(cached[i])
                st.host_cached_tokens = int(host_cached[i])
            rows = self._input_logprob_rows(st, int(start_pos[i]), int(num_tokens[i]))
            if rows is not None:
                extra_rows[i] = rows
        batch, logit_start = self.runner.prepare(plan, extra_rows)
        logits = self.runner.forward(batch)
        for i, rows in extra_rows.items():
            self._collect_input_logprobs(states[i], logits[logit_start[i]:logit_start[i] + len(rows)])
        return logits, logit_start

    def _sample_step(self, plan: Any, states: list[RequestState], logits: torch.Tensor, logit_start: np.ndarray,
                     tokens: np.ndarray, finished: np.ndarray) -> dict[int, str]:
        """Samples every entry that reaches its end and records its token and finish; returns
        the entries that failed. When the batch's sampling raises, each row is retried alone,
        so that only the rows that raise again fail."""
        samples = plan.samples
        sampling = [i for i in range(len(states)) if samples[i] and states[i].req.params.max_new_tokens > 0]
        for i in range(len(states)):
            if samples[i] and states[i].req.params.max_new_tokens == 0:
                states[i].finish_reason = {"type": "length", "length": 0}
                finished[i] = 1
        if not sampling:
            return {}
        rows = [int(logit_start[i + 1]) - 1 for i in sampling]
        failed: dict[int, str] = {}
        # A seeded request draws the same tokens whether or not a batch beside it failed: the
        # retry starts from the generator states the batch started from.
        seeded = [(g, g.get_state()) for g in (states[i].generator for i in sampling) if g is not None]
        try:
            picked = self._sample(logits[rows], [states[i] for i in sampling]).tolist()
        except Exception:
            logger.exception("sampling a batch of %d failed; retrying each request alone", len(sampling))
            for generator, state in seeded:
                generator.set_state(state)
            picked = []
            for i, row in zip(sampling, rows):
                try:
                    picked.append(int(self._sample(logits[[row]], [states[i]])[0]))
                except Exception as e:
                    failed[i] = f"sampling failed: {type(e).__name__}: {e}"
                    picked.append(None)
        for i, tok in zip(sampling, picked):
            if tok is None:
                continue
            try:
                self._accept(states[i], tok)
            except Exception as e:  # a grammar or a stop check that raises ends its request only
                logger.exception("request %s failed after sampling", states[i].req.rid)
                failed[i] = f"{type(e).__name__}: {e}"
                continue
            tokens[i] = tok
            finished[i] = states[i].finish_reason is not None
        self.counters["generation_tokens"] += len(sampling) - len(failed)
        return failed

    def _accept(self, st: RequestState, tok: int) -> None:
        st.output_ids.append(tok)
        st.pending_ids.append(tok)
        if st.grammar is not None and not st.grammar.is_terminated():
            st.grammar.accept_token(tok)
        st.check_finish(tok, self._decode_fn(st))

    def _decode_fn(self, st: RequestState):
        params = st.req.params
        return lambda ids: self.tokenizer.decode(ids, skip_special_tokens=params.skip_special_tokens,
                                                 spaces_between_special_tokens=params.spaces_between_special_tokens)

    def _input_logprob_rows(self, st: RequestState, start: int, n: int) -> np.ndarray | None:
        """Offsets within this step's tokens whose logits give still-missing prompt logprobs:
        the logprob of prompt token t comes from the logits at position t - 1."""
        if st.next_input_logprob >= st.prompt_len:
            return None
        if st.next_input_logprob == 0:  # the first token has nothing before it: no logprob
            st.input_logprobs.append((None, st.req.input_ids[0]))
            if st.req.top_logprobs_num:
                st.input_top.append(None)
            st.next_input_logprob = 1
        first_t = max(st.next_input_logprob, start + 1)
        last_t = min(st.prompt_len - 1, start + n)  # position prompt_len - 1 predicts the output
        if first_t > last_t or first_t != st.next_input_logprob:
            return None
        return np.arange(first_t - 1, last_t) - start

    def _collect_input_logprobs(self, st: RequestState, rows: torch.Tensor) -> None:
        logprobs = torch.log_softmax(rows.float(), dim=-1)
        t0 = st.next_input_logprob
        targets = torch.tensor(st.req.input_ids[t0:t0 + len(rows)])
        chosen = logprobs.gather(1, targets[:, None])[:, 0].tolist()
        st.input_logprobs.extend(zip(chosen, targets.tolist()))
        if st.req.top_logprobs_num:
            st.input_top.extend(_top_k(logprobs, st.req.top_logprobs_num))
        st.next_input_logprob = t0 + len(rows)

    def _sample(self, logits: torch.Tensor, states: list[RequestState]) -> torch.Tensor:
        raw_logprobs = None
        if any(st.req.return_logprob for st in states):
            raw_logprobs = torch.log_softmax(logits.float(), dim=-1)
        constrained = [j for j, st in enumerate(states) if st.grammar is not None]
        if constrained:
            sub = logits[constrained]
            self.grammar.apply_mask([states[j].grammar for j in constrained], sub)
            logits[constrained] = sub
        rows = [SampleRow(st.req.params, st.req.input_ids, st.output_ids, st.generator, st.banned_ids())
                for st in states]
        picked = self.runner.sample(logits, rows)
        if raw_logprobs is not None:
            # Computed first, attached only when all are: a raise here leaves no state half-written
            # for the per-row retry in _sample_step.
            entries = []
            for j, st in enumerate(states):
                if st.req.return_logprob:
                    tok = int(picked[j])
                    top = _top_k(raw_logprobs[j:j + 1], st.req.top_logprobs_num) if st.req.top_logprobs_num else []
                    entries.append((st, (float(raw_logprobs[j, tok]), tok), top))
            for st, chosen, top in entries:
                st.output_logprobs.append(chosen)
                st.output_top.extend(top)
        return picked

    # ---------------------------------------------------------------- control

    def flush_cache(self) -> int:
        return self.core.flush_cache()

    def stats(self) -> dict[str, Any]:
        host = {}
        if self.offload is not None:
            c = self.offload.counters
            host = {"num_host_pages": self.num_host_pages, "host_pool_bytes": self.offload.transfer.host.bytes,
                    "host_bytes_offloaded": c.bytes_offloaded, "host_bytes_loaded": c.bytes_loaded}
        return {**_fields(self.core.stats()), **self.counters, **self.tracker.stats(), **host,
                "max_total_tokens": self.max_total_tokens, "page_size": self.args.page_size,
                "num_pages": self.num_pages}

    def check_integrity(self) -> None:
        self.core.check_integrity()

    def workflow_control(self, kind: str, payload: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Registry and profile requests from the workflow routes: (ok, reply payload)."""
        return self.tracker.control(kind, payload, self.now())


def _fields(stats: Any) -> dict[str, Any]:
    """A bound core struct's read-only fields as a dict (for /server_info and /metrics)."""
    return {name: getattr(stats, name) for name, attr in vars(type(stats)).items() if isinstance(attr, property)}


def _top_k(logprobs: torch.Tensor, k: int) -> list[list[tuple[float, int]]]:
    values, ids = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
    return [list(zip(v, i)) for v, i in zip(values.tolist(), ids.tolist())]

"""What the engine tracks of one request between steps: output, text, stop conditions, logprobs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch

from pythia.managers.io_struct import GenerateOutput, GenerateRequest
from pythia.model_executor.sampling_params import SEED_RANGE


@dataclass
class RequestState:
    req: GenerateRequest
    core_id: int
    eos_ids: frozenset[int]
    output_ids: list[int] = field(default_factory=list)
    text: str = ""  # detokenized output, stop string trimmed once finished
    finish_reason: dict[str, Any] | None = None
    cached_tokens: int = -1  # -1 until first admitted
    host_cached_tokens: int = 0  # of cached_tokens, loaded from the host tier
    arrival_s: float = 0.0  # on the engine's clock
    generator: torch.Generator | None = None
    grammar: Any = None  # xgrammar.GrammarMatcher when the request is constrained
    # Next prompt position whose input logprob is still to be collected.
    next_input_logprob: int = 0
    # Unsent progress since the last GenerateOutput.
    pending_ids: list[int] = field(default_factory=list)
    input_logprobs: list[tuple[float | None, int]] = field(default_factory=list)
    input_top: list[list[tuple[float, int]] | None] = field(default_factory=list)
    output_logprobs: list[tuple[float, int]] = field(default_factory=list)
    output_top: list[list[tuple[float, int]]] = field(default_factory=list)
    sent_text_len: int = 0

    def __post_init__(self) -> None:
        params = self.req.params
        if params.seed is not None:
            self.generator = torch.Generator().manual_seed(params.seed % SEED_RANGE)
        self.next_input_logprob = self.logprob_start if self.req.return_logprob else len(self.req.input_ids)
        self.stop_regexes = [re.compile(r) for r in params.stop_regex]

    @property
    def logprob_start(self) -> int:
        """First prompt position reported: SGLang's default is none of the prompt, except for
        prefill-only requests, which exist to score the prompt (the DSL's select)."""
        start = self.req.logprob_start_len
        if start < 0:
            start = 0 if self.req.params.max_new_tokens == 0 else len(self.req.input_ids)
        return start

    @property
    def prompt_len(self) -> int:
        return len(self.req.input_ids)

    def banned_ids(self) -> list[int]:
        """EOS and stop ids may not end the output before min_new_tokens."""
        params = self.req.params
        if len(self.output_ids) >= params.min_new_tokens:
            return []
        return sorted(set(params.stop_token_ids) | (set() if params.ignore_eos else set(self.eos_ids)))

    def check_finish(self, token: int, decode) -> None:
        """Called after `token` was appended; sets finish_reason and trims the text on a stop."""
        params = self.req.params
        old_len = len(self.text)
        self.text = decode(self.output_ids)
        can_stop = len(self.output_ids) >= params.min_new_tokens
        if can_stop and ((token in self.eos_ids and not params.ignore_eos) or token in params.stop_token_ids):
            self.finish_reason = {"type": "stop", "matched": token}
        elif can_stop and params.stop:
            # Only the tail can hold a new match: text before it was checked already.
            window = max(0, old_len - max(len(s) for s in params.stop))
            hits = [(self.text.find(s, window), s) for s in params.stop]
            hits = [(i, s) for i, s in hits if i >= 0]
            if hits:
                at, matched = min(hits)
                if not params.no_stop_trim:
                    self.text = self.text[:at]
                self.finish_reason = {"type": "stop", "matched": matched}
        if self.finish_reason is None and can_stop:
            for pattern in self.stop_regexes:
                m = pattern.search(self.text)
                if m:
                    if not params.no_stop_trim:
                        self.text = self.text[:m.start()]
                    self.finish_reason = {"type": "stop", "matched": pattern.pattern}
                    break
        if self.finish_reason is None and self.grammar is not None and self.grammar.is_terminated():
            self.finish_reason = {"type": "stop", "matched": token}
        if self.finish_reason is None and len(self.output_ids) >= params.max_new_tokens:
            self.finish_reason = {"type": "length", "length": params.max_new_tokens}

    def streamable_text(self) -> str:
        """Output text that can be sent without ever being taken back: no half UTF-8
        character, and no tail that may still become a stop string."""
        if self.finish_reason is not None:
            return self.text
        text = self.text
        if text.endswith("\ufffd"):
            text = text.rstrip("\ufffd")
        hold = 0
        for stop in self.req.params.stop:
            for k in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:k]):
                    hold = max(hold, k)
                    break
        return text[:len(text) - hold] if hold else text

    def take_output(self, finished: bool) -> GenerateOutput:
        text = self.streamable_text()
        # Never send less than what was sent before (append-only streams).
        if len(text) < self.sent_text_len:
            text = self.text[:self.sent_text_len] if not finished else text
        self.sent_text_len = max(self.sent_text_len, len(text))
        out = GenerateOutput(
            rid=self.req.rid,
            new_token_ids=self.pending_ids,
            text=text,
            finished=finished,
            finish_reason=self.finish_reason,
            prompt_tokens=self.prompt_len,
            completion_tokens=len(self.output_ids),
            cached_tokens=max(self.cached_tokens, 0),
            host_cached_tokens=self.host_cached_tokens,
            input_token_logprobs=self.input_logprobs,
            input_top_logprobs=self.input_top,
            output_token_logprobs=self.output_logprobs,
            output_top_logprobs=self.output_top,
        )
        self.pending_ids, self.input_logprobs, self.input_top = [], [], []
        self.output_logprobs, self.output_top = [], []
        return out

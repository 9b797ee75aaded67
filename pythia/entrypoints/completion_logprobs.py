"""OpenAI's legacy /v1/completions logprobs: `tokens`, `token_logprobs`, `top_logprobs`, `text_offset`.

Built per choice as its outputs arrive, so that a streamed choice's chunks carry the same per-token
data as the whole answer would, with offsets continuing from chunk to chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pythia.entrypoints.server_state import ServerState
from pythia.managers.io_struct import GenerateRequest

# OpenAI's legacy API takes logprobs up to 5; this server takes up to the chat route's top_logprobs bound
# (as vLLM does), since the alternatives cost one top-k per token whatever their number.
MAX_COMPLETION_LOGPROBS = 20

# Tokens decoded before a window's first token: a tokenizer that drops the leading space of a text's
# first token (SentencePiece) would otherwise shorten every window by one character.
_CONTEXT_TOKENS = 4


class TextOffsets:
    """The character offset of each token in the text `decode` makes of all tokens so far.

    Decoding every prefix would cost quadratic time; instead, only the tokens since the last point
    where the text ended on a whole character are decoded again (a token can hold part of a UTF-8
    character, which decodes as U+FFFD until the rest arrives)."""

    def __init__(self, decode: Callable[[list[int]], str], start: int = 0) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._settled_at = 0  # tokens up to here decode to whole characters ...
        self._settled_len = start  # ... ending at this offset
        self._context_len = 0  # characters the context tokens before _settled_at decode to

    def extend(self, ids: list[int]) -> list[int]:
        offsets = []
        for token in ids:
            offsets.append(self._settled_len + len(self._pending_text().rstrip("\ufffd")))
            self._ids.append(token)
            pending = self._pending_text()
            if not pending.endswith("\ufffd"):
                self._settled_len += len(pending)
                self._settled_at = len(self._ids)
                self._context_len = len(self._decode(self._context()))
        return offsets

    def _context(self) -> list[int]:
        return self._ids[max(0, self._settled_at - _CONTEXT_TOKENS):self._settled_at]

    def _pending_text(self) -> str:
        """The text of the tokens after the settled point."""
        if self._settled_at == len(self._ids):
            return ""
        return self._decode(self._context() + self._ids[self._settled_at:])[self._context_len:]


class ChoiceLogprobs:
    """One choice's logprobs in the legacy shape. With echo, the prompt's tokens come first (the
    first has no logprob: nothing precedes it) and the output's offsets start after the prompt."""

    def __init__(self, req: GenerateRequest, state: ServerState, top: int, echo_text: str | None) -> None:
        self._state = state
        self._top = top
        self._echo = echo_text is not None
        tokenizer = state.frontend.tokenizer
        params = req.params
        # The prompt is echoed as given (special tokens included); the output as the engine decodes it.
        self._prompt_offsets = TextOffsets(lambda ids: tokenizer.decode(ids, skip_special_tokens=False))
        self._output_offsets = TextOffsets(
            lambda ids: tokenizer.decode(ids, skip_special_tokens=params.skip_special_tokens,
                                         spaces_between_special_tokens=params.spaces_between_special_tokens),
            start=len(echo_text) if echo_text is not None else 0)

    def add(self, logprobs: dict[str, list]) -> dict[str, Any]:
        """The legacy object for the tokens of one ResultBuilder delta (or of a whole result)."""
        entries, tops, offsets = [], [], []
        if self._echo:
            prompt = logprobs.get("input_token_logprobs", [])
            entries += prompt
            tops += logprobs.get("input_top_logprobs", []) if self._top else []
            offsets += self._prompt_offsets.extend([token for _, token, _ in prompt])
        output = logprobs.get("output_token_logprobs", [])
        entries += output
        tops += logprobs.get("output_top_logprobs", []) if self._top else []
        offsets += self._output_offsets.extend([token for _, token, _ in output])
        return {"tokens": [self._state.token_text(token) for _, token, _ in entries],
                "token_logprobs": [lp for lp, _, _ in entries],
                "top_logprobs": [self._top_dict(row) for row in tops] if self._top else None,
                "text_offset": offsets}

    def _top_dict(self, row: list | None) -> dict[str, float] | None:
        if row is None:  # the first prompt token
            return None
        top: dict[str, float] = {}
        for lp, token, _ in row:  # most likely first; two ids may decode alike: the likelier one stays
            top.setdefault(self._state.token_text(token), lp)
        return top

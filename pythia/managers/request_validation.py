"""What a request must satisfy to be served by this model, checked before it reaches the engine.

The front checks every request here, so that a bad one is refused with a 400 naming the problem
instead of raising inside the engine process; the engine checks again (a request can reach it
from a benchmark or test driving it directly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pythia.managers.io_struct import GenerateRequest


@dataclass(frozen=True)
class RequestLimits:
    vocab_size: int
    context_length: int  # prompt + output
    max_total_tokens: int  # the KV pool

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> RequestLimits:
        """From the engine's info (what /get_model_info reports)."""
        return cls(info["vocab_size"], info["context_length"], info["max_total_tokens"])


def validate_request(req: GenerateRequest, limits: RequestLimits) -> None:
    """Raises ValueError naming the first thing this model cannot serve."""
    n = len(req.input_ids)
    params = req.params
    vocab = limits.vocab_size
    if n == 0:
        raise ValueError("the prompt is empty")
    if min(req.input_ids) < 0 or max(req.input_ids) >= vocab:
        raise ValueError(f"input_ids must be token ids in [0, {vocab})")
    if params.stop_token_ids and (min(params.stop_token_ids) < 0 or max(params.stop_token_ids) >= vocab):
        raise ValueError(f"stop_token_ids must be token ids in [0, {vocab})")
    if params.logit_bias and (min(params.logit_bias) < 0 or max(params.logit_bias) >= vocab):
        raise ValueError(f"logit_bias keys must be token ids in [0, {vocab})")
    if n + params.max_new_tokens > limits.context_length:
        raise ValueError(f"prompt ({n} tokens) plus max_new_tokens ({params.max_new_tokens}) exceeds the "
                         f"context length of {limits.context_length} tokens")
    if n + params.max_new_tokens > limits.max_total_tokens:
        raise ValueError(f"prompt ({n} tokens) plus max_new_tokens ({params.max_new_tokens}) exceeds the KV "
                         f"pool of {limits.max_total_tokens} tokens (--max-total-tokens)")
    if req.logprob_start_len > n:
        raise ValueError(f"logprob_start_len ({req.logprob_start_len}) exceeds the prompt length ({n})")
    if not 0 <= req.top_logprobs_num <= vocab:
        raise ValueError(f"top_logprobs_num must be in [0, {vocab}], got {req.top_logprobs_num}")

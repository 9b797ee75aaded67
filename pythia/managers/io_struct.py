"""Messages between the HTTP front and the engine process (pickled over ZeroMQ)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pythia.model_executor.sampling_params import SamplingParams
from pythia.workflow.meta import WorkflowMeta

__all__ = ["AbortRequest", "ControlReply", "ControlRequest", "GenerateOutput", "GenerateRequest", "WorkflowMeta"]


@dataclass
class GenerateRequest:
    rid: str
    input_ids: list[int]
    params: SamplingParams
    stream: bool = False
    return_logprob: bool = False
    # First prompt position whose logprob is returned (SGLang semantics; -1: none of the prompt).
    logprob_start_len: int = -1
    top_logprobs_num: int = 0
    return_text_in_logprobs: bool = False
    workflow: WorkflowMeta = field(default_factory=WorkflowMeta)


@dataclass
class AbortRequest:
    rid: str


@dataclass
class ControlRequest:
    """flush_cache | stats | check_integrity | workflow_register | workflow_list | workflow_get |
    workflow_end_job; answered by a ControlReply with the same token."""

    kind: str
    token: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class ControlReply:
    token: int
    ok: bool
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerateOutput:
    """Progress of one request. Token and logprob lists hold only what is new since the last
    message for this request; `text` is the whole output so far."""

    rid: str
    new_token_ids: list[int]
    text: str
    finished: bool
    finish_reason: dict[str, Any] | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    host_cached_tokens: int = 0  # of cached_tokens, loaded from the host tier
    # Each logprob entry: (logprob, token_id); top entries: list of those per position.
    input_token_logprobs: list[tuple[float | None, int]] = field(default_factory=list)
    input_top_logprobs: list[list[tuple[float, int]] | None] = field(default_factory=list)
    output_token_logprobs: list[tuple[float, int]] = field(default_factory=list)
    output_top_logprobs: list[list[tuple[float, int]]] = field(default_factory=list)
    error: str | None = None
    error_status: int = 400  # HTTP status for `error`: 400 for the request's fault, 503 for the server's
    retry: bool = True  # with a 503: whether the client should come back (Retry-After)

    @classmethod
    def failure(cls, req: GenerateRequest, message: str, status: int = 400, retry: bool = True) -> GenerateOutput:
        """The final output of a request that could not be served: it fails alone."""
        return cls.error_for(req.rid, message, status, retry, prompt_tokens=len(req.input_ids))

    @classmethod
    def error_for(cls, rid: str, message: str, status: int, retry: bool = True, prompt_tokens: int = 0
                  ) -> GenerateOutput:
        return cls(rid=rid, new_token_ids=[], text="", finished=True,
                   finish_reason={"type": "abort", "message": message}, prompt_tokens=prompt_tokens,
                   completion_tokens=0, cached_tokens=0, error=message, error_status=status, retry=retry)

"""OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from pythia.entrypoints.errors import HTTPError, bad_request
from pythia.entrypoints.generation import ResultBuilder, run_many, sse
from pythia.entrypoints.protocol.errors import error_responses
from pythia.entrypoints.protocol.openai import ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, \
    CompletionChunk, CompletionRequest, CompletionResponse, ModelCard, ModelList
from pythia.entrypoints.protocol.openapi import event_stream, json_body
from pythia.entrypoints.protocol.validation import read_body
from pythia.entrypoints.server_state import ServerState, state_of
from pythia.entrypoints.workflow_meta import parse_workflow
from pythia.managers.io_struct import GenerateRequest
from pythia.model_executor.sampling_params import SamplingParams

router = APIRouter(prefix="/v1")

# OpenAI body fields and the SGLang sampling parameter each maps to. Fields not listed here and
# not handled below are rejected, so that a typo does not silently change nothing.
_SAMPLING_FIELDS = {
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
    "repetition_penalty": "repetition_penalty", "stop": "stop", "stop_token_ids": "stop_token_ids",
    "seed": "seed", "n": "n", "ignore_eos": "ignore_eos", "regex": "regex", "json_schema": "json_schema",
    "ebnf": "ebnf", "min_tokens": "min_new_tokens", "skip_special_tokens": "skip_special_tokens",
    "no_stop_trim": "no_stop_trim", "logit_bias": "logit_bias",
}
_OTHER_FIELDS = {"model", "stream", "stream_options", "user", "workflow", "logprobs", "top_logprobs",
                 "max_tokens", "max_completion_tokens", "prompt", "messages", "echo", "response_format",
                 "suffix", "best_of", "tools", "tool_choice", "parallel_tool_calls", "metadata",
                 "store", "service_tier", "chat_template_kwargs", "rid"}


@router.get("/models", operation_id="list_models", responses={200: {"model": ModelList}})
async def models(request: Request):
    return {"object": "list", "data": [_model_card(state_of(request))]}


@router.get("/models/{model_id:path}", operation_id="retrieve_model",
            responses={200: {"model": ModelCard}, **error_responses(404)})
async def model(model_id: str, request: Request):
    state = state_of(request)
    _check_model({"model": model_id}, state)
    return _model_card(state)


def _model_card(state: ServerState) -> dict[str, Any]:
    return {"id": state.model_name, "object": "model", "created": int(time.time()), "owned_by": "pythia",
            "max_model_len": state.info["context_length"]}


def _check_model(body: dict[str, Any], state: ServerState) -> None:
    model = body.get("model")
    if model is not None and model not in (state.model_name, state.info["model_path"]):
        raise HTTPError(404, f"model {model!r} is not served here; this server serves {state.model_name!r}")


def _sampling(body: dict[str, Any], default_max: int | None, state: ServerState) -> SamplingParams:
    unknown = set(body) - set(_SAMPLING_FIELDS) - _OTHER_FIELDS
    if unknown:
        raise bad_request(f"unknown field(s): {', '.join(sorted(unknown))}")
    raw = {dst: body[src] for src, dst in _SAMPLING_FIELDS.items() if body.get(src) is not None}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    raw["max_new_tokens"] = max_tokens if max_tokens is not None else default_max
    fmt = body.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
            raise bad_request("response_format.type must be text, json_object or json_schema")
        if fmt["type"] == "json_object":
            raw["json_schema"] = json.dumps({"type": "object"})
        elif fmt["type"] == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise bad_request("response_format.json_schema.schema must be an object")
            raw["json_schema"] = json.dumps(schema)
    try:
        params = SamplingParams.from_dict(raw)
        state.check_limits(params, 1)
        return params
    except ValueError as e:
        raise bad_request(str(e)) from None


def _requests(prompt_ids: list[int], params: SamplingParams, body: dict[str, Any], request: Request,
              state: ServerState, logprobs: bool, top: int) -> list[GenerateRequest]:
    if not prompt_ids:
        raise bad_request("the prompt is empty")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream must be true or false")
    workflow = parse_workflow(body, request.headers)
    rid = body.get("rid")  # SGLang's extension: the id /abort_request takes (n > 1: rid-0, rid-1, ...)
    if rid is not None and (not isinstance(rid, str) or not rid):
        raise bad_request("rid must be a non-empty string", "rid")
    if rid is not None:
        rids = [rid] if params.n == 1 else [f"{rid}-{k}" for k in range(params.n)]
    else:
        base = state.frontend.new_rid()
        rids = [f"{base}-{k}" for k in range(params.n)]
    return [GenerateRequest(rid=this_rid, input_ids=prompt_ids, params=params, stream=stream,
                            return_logprob=logprobs, top_logprobs_num=top, workflow=workflow)
            for this_rid in rids]


def _usage(results: list[ResultBuilder]) -> dict[str, Any]:
    prompt = results[0].out.prompt_tokens
    completion = sum(r.out.completion_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": results[0].out.cached_tokens}}


def _finish(out) -> str | None:
    if out is None or not out.finished or out.finish_reason is None:
        return None
    return {"length": "length", "abort": "abort"}.get(out.finish_reason["type"], "stop")


async def _stream(reqs: list[GenerateRequest], state: ServerState, chunk_fn, include_usage: bool
                  ) -> AsyncIterator[bytes]:
    """Streams every sample's deltas interleaved as they come; then usage and [DONE]."""
    import asyncio

    queue: asyncio.Queue = asyncio.Queue()

    async def pump(index: int, req: GenerateRequest) -> None:
        builder = ResultBuilder(req, state)
        try:
            async for out in state.frontend.generate(req):
                queue.put_nowait((index, builder, builder.add(out), out))
        except HTTPError as e:
            queue.put_nowait((index, builder, e, None))
        finally:
            queue.put_nowait((index, builder, None, None))

    tasks = [asyncio.ensure_future(pump(i, r)) for i, r in enumerate(reqs)]
    sent = [""] * len(reqs)
    builders: list[ResultBuilder] = [None] * len(reqs)  # type: ignore[list-item]
    try:
        for chunk in chunk_fn(None, None, None, first=True):
            yield sse(chunk)
        remaining = len(reqs)
        while remaining:
            index, builder, delta, out = await queue.get()
            builders[index] = builder
            if isinstance(delta, HTTPError):
                yield sse({"error": {"message": delta.message}})
                continue
            if out is None:
                remaining -= 1
                continue
            text = out.text[len(sent[index]):]
            sent[index] = out.text
            yield sse(chunk_fn(index, text, (delta, out), first=False))
            if out.finished:
                state.metrics.observe(builder)
        if include_usage and all(b is not None and b.out is not None for b in builders):
            yield sse({**chunk_fn(None, None, None, first=False, usage_only=True), "usage": _usage(builders)})
        yield b"data: [DONE]\n\n"
    finally:
        for t in tasks:
            t.cancel()


def _include_usage(body: dict[str, Any]) -> bool:
    opts = body.get("stream_options") or {}
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


# ------------------------------------------------------------------ completions

def _completion_logprobs(entries: list, state: ServerState) -> dict[str, Any]:
    """OpenAI's completion logprobs from [logprob, token, text] entries."""
    tokens = [state.token_text(t) for _, t, _ in entries]
    return {"tokens": tokens, "token_logprobs": [lp for lp, _, _ in entries],
            "text_offset": [], "top_logprobs": None}


@router.post("/completions", operation_id="create_completion", openapi_extra=json_body(CompletionRequest),
             responses={200: {"model": CompletionResponse, "content": event_stream(CompletionChunk)},
                        **error_responses(400, 404, 413, 500, 503)})
async def completions(request: Request):
    state = state_of(request)
    body = await read_body(request, CompletionRequest)
    _check_model(body, state)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        try:
            prompt_ids = state.frontend.tokenize(prompt)
        except ValueError as e:
            raise bad_request(str(e), "prompt") from None
    elif isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        prompt_ids = prompt
    else:
        raise bad_request("prompt must be a string or a list of token ids (one prompt per request)")
    if body.get("echo"):
        raise bad_request("echo is not supported")
    logprobs = body.get("logprobs")
    if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int) or logprobs < 0):
        raise bad_request("logprobs must be a non-negative integer")
    params = _sampling(body, 16, state)
    reqs = _requests(prompt_ids, params, body, request, state, logprobs is not None, logprobs or 0)
    rid, created = "cmpl-" + uuid.uuid4().hex, int(time.time())

    def chunk(index, text, progress, first, usage_only=False):
        if first:
            return []
        obj = {"id": rid, "object": "text_completion", "created": created, "model": state.model_name}
        if usage_only:
            return {**obj, "choices": []}
        delta, out = progress
        lp = _completion_logprobs(delta.get("output_token_logprobs", []), state) if logprobs is not None else None
        return {**obj, "choices": [{"index": index, "text": text, "logprobs": lp, "finish_reason": _finish(out)}]}

    if reqs[0].stream:
        return StreamingResponse(_stream(reqs, state, chunk, _include_usage(body)), media_type="text/event-stream")
    results = await run_many(reqs, state, request)
    choices = [{"index": i, "text": r.out.text, "finish_reason": _finish(r.out),
                "logprobs": (_completion_logprobs(r.logprobs["output_token_logprobs"], state)
                             if logprobs is not None else None)}
               for i, r in enumerate(results)]
    return {"id": rid, "object": "text_completion", "created": created, "model": state.model_name,
            "choices": choices, "usage": _usage(results)}


# ------------------------------------------------------------------ chat

# apply_chat_template arguments the server sets itself; `chat_template` would run a client's template.
RESERVED_TEMPLATE_KWARGS = {"chat_template", "conversation", "tokenize", "add_generation_prompt", "return_dict",
                            "return_tensors", "tokenizer_kwargs", "continue_final_message", "tools", "documents"}


def _chat_prompt(body: dict[str, Any], state: ServerState) -> list[int]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list")
    clean = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer", "tool"):
            raise bad_request("each message needs a role of system, developer, user, assistant or tool")
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            content = "".join(parts)
        if content is not None and not isinstance(content, str):
            raise bad_request("message content must be a string or a list of text parts")
        role = "system" if m["role"] == "developer" else m["role"]
        clean.append({"role": role, "content": content or ""})
    tokenizer = state.frontend.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise bad_request("this model's tokenizer has no chat template; use /v1/completions")
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise bad_request("chat_template_kwargs must be an object", "chat_template_kwargs")
    # A template is code: the model's own runs (in transformers' jinja sandbox), a client's is refused
    # rather than given a time bound, since a sandbox does not stop a template that loops for minutes.
    reserved = sorted(set(kwargs) & RESERVED_TEMPLATE_KWARGS)
    if reserved:
        raise bad_request(f"chat_template_kwargs may not set {', '.join(reserved)}: the server renders the model's "
                          "own chat template", "chat_template_kwargs")
    try:
        rendered = tokenizer.apply_chat_template(clean, add_generation_prompt=True, tokenize=False, **kwargs)
        state.frontend.check_prompt_text(rendered)
        # As apply_chat_template(tokenize=True) does: the template already wrote the special tokens.
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    except ValueError as e:
        raise bad_request(str(e), "messages") from None
    except Exception as e:  # the template itself refused the conversation (raise_exception, a type error)
        raise bad_request(f"the chat template could not render these messages: {type(e).__name__}: {e}",
                          "messages") from None


def _chat_logprobs(entries: list, state: ServerState, top: list | None) -> dict[str, Any]:
    content = []
    for k, (lp, token, _) in enumerate(entries):
        text = state.token_text(token)
        item = {"token": text, "logprob": lp, "bytes": list(text.encode()), "top_logprobs": []}
        if top is not None and k < len(top):
            item["top_logprobs"] = [{"token": state.token_text(t), "logprob": v, "bytes": list(state.token_text(t).encode())}
                                    for v, t, _ in top[k]]
        content.append(item)
    return {"content": content}


@router.post("/chat/completions", operation_id="create_chat_completion",
             openapi_extra=json_body(ChatCompletionRequest),
             responses={200: {"model": ChatCompletionResponse, "content": event_stream(ChatCompletionChunk)},
                        **error_responses(400, 404, 413, 500, 503)})
async def chat_completions(request: Request):
    state = state_of(request)
    body = await read_body(request, ChatCompletionRequest)
    _check_model(body, state)
    if body.get("tools"):
        raise bad_request("tool calling is not supported")
    prompt_ids = _chat_prompt(body, state)
    want_logprobs = body.get("logprobs", False)
    if not isinstance(want_logprobs, bool):
        raise bad_request("logprobs must be true or false")
    top = body.get("top_logprobs") or 0
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
        raise bad_request("top_logprobs must be an integer from 0 to 20")
    params = _sampling(body, None, state)
    if params.max_new_tokens is None:
        params.max_new_tokens = max(1, min(state.info["context_length"] - len(prompt_ids), 1024))
    reqs = _requests(prompt_ids, params, body, request, state, want_logprobs, top)
    rid, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": state.model_name}

    def chunk(index, text, progress, first, usage_only=False):
        if first:
            return [{**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                          "logprobs": None, "finish_reason": None}]} for i in range(len(reqs))]
        if usage_only:
            return {**base, "choices": []}
        delta, out = progress
        lp = (_chat_logprobs(delta.get("output_token_logprobs", []), state, delta.get("output_top_logprobs"))
              if want_logprobs else None)
        return {**base, "choices": [{"index": index, "delta": {"content": text} if text else {},
                                     "logprobs": lp, "finish_reason": _finish(out)}]}

    if reqs[0].stream:
        return StreamingResponse(_stream(reqs, state, chunk, _include_usage(body)), media_type="text/event-stream")
    results = await run_many(reqs, state, request)
    choices = []
    for i, r in enumerate(results):
        lp = (_chat_logprobs(r.logprobs["output_token_logprobs"], state, r.logprobs.get("output_top_logprobs"))
              if want_logprobs else None)
        choices.append({"index": i, "message": {"role": "assistant", "content": r.out.text}, "logprobs": lp,
                        "finish_reason": _finish(r.out)})
    return {"id": rid, "object": "chat.completion", "created": created, "model": state.model_name,
            "choices": choices, "usage": _usage(results)}

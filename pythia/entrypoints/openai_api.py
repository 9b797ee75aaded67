"""OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from pythia.entrypoints.chat_messages import normalize_messages, template_input
from pythia.entrypoints.completion_logprobs import MAX_COMPLETION_LOGPROBS, ChoiceLogprobs
from pythia.entrypoints.errors import HTTPError, bad_request
from pythia.entrypoints.generation import (CLIENT_CLOSED_REQUEST, ResultBuilder, cancel_on_disconnect, json_response,
                                           run_many, sse)
from pythia.entrypoints.protocol.errors import error_responses
from pythia.entrypoints.protocol.openai import ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, \
    CompletionChunk, CompletionRequest, CompletionResponse, ModelCard, ModelList
from pythia.entrypoints.protocol.openapi import event_stream, json_body
from pythia.entrypoints.protocol.validation import read_body
from pythia.entrypoints.server_state import ServerState, state_of
from pythia.entrypoints.tool_calls import ToolRequest, forced_call_grammar, parse_tool_request, tool_call_json
from pythia.entrypoints.tool_parsers import TOOL_CALL_PARSERS, ToolCallFormat, ToolCallStream, parse_tool_calls
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


def _sampling(body: dict[str, Any], default_max: int | None, state: ServerState,
              num_prompts: int = 1) -> SamplingParams:
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
        state.check_limits(params, num_prompts)
        return params
    except ValueError as e:
        raise bad_request(str(e)) from None


def _requests(prompt_ids: list[int], params: SamplingParams, body: dict[str, Any], request: Request,
              state: ServerState, logprobs: bool, top: int, prompt_index: int | None = None,
              prompt_logprobs: bool = False) -> list[GenerateRequest]:
    """The n samples of one prompt; `prompt_index` names the prompt's place when a body has several
    (rids rid-i-k), `prompt_logprobs` asks for the prompt's logprobs too (completions' echo)."""
    if not prompt_ids:
        raise bad_request("the prompt is empty")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream must be true or false")
    workflow = parse_workflow(body, request.headers)
    rid = body.get("rid")  # SGLang's extension: the id /abort_request takes (n > 1: rid-0, rid-1, ...)
    if rid is not None and (not isinstance(rid, str) or not rid):
        raise bad_request("rid must be a non-empty string", "rid")
    if prompt_index is not None:
        base = f"{rid or state.frontend.new_rid()}-{prompt_index}"
        rids = [f"{base}-{k}" for k in range(params.n)]
    elif rid is not None:
        rids = [rid] if params.n == 1 else [f"{rid}-{k}" for k in range(params.n)]
    else:
        base = state.frontend.new_rid()
        rids = [f"{base}-{k}" for k in range(params.n)]
    # Without echo no prompt logprob is wanted, whatever max_tokens is (SGLang's default would
    # score the whole prompt of a max_tokens=0 request).
    start = 0 if prompt_logprobs else len(prompt_ids)
    return [GenerateRequest(rid=this_rid, input_ids=prompt_ids, params=params.for_sample(k), stream=stream,
                            return_logprob=logprobs, logprob_start_len=start, top_logprobs_num=top,
                            workflow=workflow)
            for k, this_rid in enumerate(rids)]


def _usage(results: list[ResultBuilder], n: int | None = None) -> dict[str, Any]:
    """Usage of prompt-major results, n samples per prompt (default: all of one prompt). Each
    prompt counts once, as its first sample saw it."""
    firsts = results[::n or len(results)]
    prompt = sum(r.out.prompt_tokens for r in firsts)
    completion = sum(r.out.completion_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": sum(r.out.cached_tokens for r in firsts)}}


def _finish(out) -> str | None:
    if out is None or not out.finished or out.finish_reason is None:
        return None
    return {"length": "length", "abort": "abort"}.get(out.finish_reason["type"], "stop")


async def _pump(index: int, req: GenerateRequest, state: ServerState, queue: asyncio.Queue) -> None:
    """Feeds one sample's (index, builder, logprob delta or HTTPError, output) events to the queue,
    then (index, builder, None, None) once it is over."""
    builder = ResultBuilder(req, state)
    try:
        async for out in state.frontend.generate(req):
            queue.put_nowait((index, builder, builder.add(out), out))
    except HTTPError as e:
        queue.put_nowait((index, builder, e, None))
    except asyncio.CancelledError:  # the client went away: the frontend aborted the request
        state.metrics.requests.labels(finish_reason="abort").inc()
        raise
    finally:
        queue.put_nowait((index, builder, None, None))


async def _stream_response(reqs: list[GenerateRequest], state: ServerState, http_request: Request, chunk_fn,
                           include_usage: bool, n: int | None = None) -> StreamingResponse:
    """Starts every sample and waits for each one's first output before answering, as SGLang's
    /generate does: a request refused by the front or the engine (a validation error, the queue
    limit's 503) gets its real status as a plain JSON error instead of a 200 and an error event.
    Failures after that are in-stream error events. `n`: samples per prompt, for usage."""
    queue: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.ensure_future(_pump(i, r, state, queue)) for i, r in enumerate(reqs)]
    # A client that gives up while its request waits for the first token (queued behind others)
    # must not keep a place in the queue: as for a non-streaming request, that cancels the pumps.
    watcher = asyncio.ensure_future(cancel_on_disconnect(http_request, tasks))
    early: deque = deque()
    try:
        waiting = set(range(len(reqs)))
        while waiting:
            event = await queue.get()
            if isinstance(event[2], HTTPError):
                raise event[2]
            early.append(event)
            waiting.discard(event[0])
        if watcher.done() and watcher.result():
            raise HTTPError(CLIENT_CLOSED_REQUEST, "the client disconnected")
    except BaseException:
        for t in tasks:  # the other samples end too: a cancelled pump aborts its request
            t.cancel()
        raise
    finally:
        watcher.cancel()
    return StreamingResponse(_stream(len(reqs), tasks, queue, early, state, chunk_fn, include_usage, n),
                             media_type="text/event-stream")


async def _stream(num: int, tasks: list[asyncio.Future], queue: asyncio.Queue, early: deque, state: ServerState,
                  chunk_fn, include_usage: bool, n: int | None) -> AsyncIterator[bytes]:
    """Streams every sample's deltas interleaved as they come (the events read before the response
    started first); then usage and [DONE]."""
    sent = [""] * num
    builders: list[ResultBuilder] = [None] * num  # type: ignore[list-item]
    try:
        for chunk in chunk_fn(None, None, None, first=True):
            yield sse(chunk)
        remaining = num
        while remaining:
            index, builder, delta, out = early.popleft() if early else await queue.get()
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
            yield sse({**chunk_fn(None, None, None, first=False, usage_only=True), "usage": _usage(builders, n)})
        yield b"data: [DONE]\n\n"
    finally:
        for t in tasks:
            t.cancel()


def _include_usage(body: dict[str, Any]) -> bool:
    opts = body.get("stream_options") or {}
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


# ------------------------------------------------------------------ completions

def _is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def _completion_prompts(body: dict[str, Any]) -> list[str | list[int]]:
    """The body's prompts: a string, a list of token ids, or a non-empty list of either."""
    prompt = body.get("prompt")
    if isinstance(prompt, str) or _is_token_ids(prompt):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) or _is_token_ids(p) for p in prompt):
        return prompt
    raise bad_request("prompt must be a string, a list of token ids, or a non-empty list of strings or of "
                      "token id lists", "prompt")


def _tokenize(prompt: str | list[int], state: ServerState, echo: bool) -> tuple[list[int], str]:
    """Token ids and the text echo returns: a text prompt as given, token ids decoded."""
    if isinstance(prompt, list):
        vocab = state.info["vocab_size"]
        if not echo or any(not 0 <= t < vocab for t in prompt):  # bad ids: the front's validation names them
            return prompt, ""
        return prompt, state.frontend.tokenizer.decode(prompt, skip_special_tokens=False)
    try:
        return state.frontend.tokenize(prompt), prompt
    except ValueError as e:
        raise bad_request(str(e), "prompt") from None


def _completion_options(body: dict[str, Any]) -> tuple[bool, int | None]:
    echo = False if body.get("echo") is None else body["echo"]
    if not isinstance(echo, bool):
        raise bad_request("echo must be true or false", "echo")
    logprobs = body.get("logprobs")
    if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int)
                                 or not 0 <= logprobs <= MAX_COMPLETION_LOGPROBS):
        raise bad_request(f"logprobs must be an integer from 0 to {MAX_COMPLETION_LOGPROBS} (the number of most "
                          "likely tokens listed per position)", "logprobs")
    return echo, logprobs


@router.post("/completions", operation_id="create_completion", openapi_extra=json_body(CompletionRequest),
             responses={200: {"model": CompletionResponse, "content": event_stream(CompletionChunk)},
                        **error_responses(400, 404, 413, 500, 503)})
async def completions(request: Request):
    state = state_of(request)
    body = await read_body(request, CompletionRequest)
    _check_model(body, state)
    prompts = _completion_prompts(body)
    echo, logprobs = _completion_options(body)
    params = _sampling(body, 16, state, num_prompts=len(prompts))  # the limits before any tokenizing
    tokenized = await state.frontend.in_tokenizer_thread(lambda: [_tokenize(p, state, echo) for p in prompts])
    reqs: list[GenerateRequest] = []
    for i, (ids, _) in enumerate(tokenized):  # prompt-major: choice i * n + k is sample k of prompt i
        reqs += _requests(ids, params, body, request, state, logprobs is not None, logprobs or 0,
                          prompt_index=i if len(prompts) > 1 else None, prompt_logprobs=echo)
    # Each choice's echoed prompt (echo: every sample of a prompt starts with it) and logprobs builder.
    echo_texts = [tokenized[i // params.n][1] if echo else None for i in range(len(reqs))]
    choice_logprobs = [ChoiceLogprobs(r, state, logprobs, echo_texts[i]) if logprobs is not None else None
                       for i, r in enumerate(reqs)]
    rid, created = "cmpl-" + uuid.uuid4().hex, int(time.time())
    echoed: set[int] = set()

    def chunk(index, text, progress, first, usage_only=False):
        if first:
            return []
        obj = {"id": rid, "object": "text_completion", "created": created, "model": state.model_name}
        if usage_only:
            return {**obj, "choices": []}
        delta, out = progress
        if echo and index not in echoed:  # the prompt goes out with the choice's first chunk
            text = echo_texts[index] + text
            echoed.add(index)
        lp = choice_logprobs[index].add(delta) if logprobs is not None else None
        return {**obj, "choices": [{"index": index, "text": text, "logprobs": lp, "finish_reason": _finish(out)}]}

    if reqs[0].stream:
        return await _stream_response(reqs, state, request, chunk, _include_usage(body), params.n)
    results = await run_many(reqs, state, request)
    choices = [{"index": i, "text": (echo_texts[i] or "") + r.out.text, "finish_reason": _finish(r.out),
                "logprobs": choice_logprobs[i].add(r.logprobs) if logprobs is not None else None}
               for i, r in enumerate(results)]
    return await json_response({"id": rid, "object": "text_completion", "created": created, "model": state.model_name,
                                "choices": choices, "usage": _usage(results, params.n)})


# ------------------------------------------------------------------ chat

# apply_chat_template arguments the server sets itself; `chat_template` would run a client's template.
RESERVED_TEMPLATE_KWARGS = {"chat_template", "conversation", "tokenize", "add_generation_prompt", "return_dict",
                            "return_tensors", "tokenizer_kwargs", "continue_final_message", "tools", "documents"}


def _chat_prompt(body: dict[str, Any], state: ServerState, tools: ToolRequest | None) -> list[int]:
    messages = normalize_messages(body.get("messages"))
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
    # Tools are rendered unless tool_choice is "none" (see tool_calls).
    listed = [t.as_json() for t in tools.tools] if tools is not None and tools.active else None
    try:
        template = tokenizer.get_chat_template(tools=listed)
    except ValueError as e:  # several templates and none of them the default
        raise bad_request(str(e), "messages") from None
    conversation, template_tools = template_input(messages, listed, _tool_format(state), template)
    if template_tools is not None:  # the model's template renders them itself (see chat_messages)
        kwargs = {**kwargs, "tools": template_tools}
    try:
        rendered = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False, **kwargs)
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


def _tool_format(state: ServerState) -> ToolCallFormat:
    return TOOL_CALL_PARSERS[state.args.tool_call_parser]


def _finish_with_calls(out, made_calls: bool) -> str | None:
    """OpenAI's "tool_calls" for an answer that ended by itself after calling tools."""
    reason = _finish(out)
    return "tool_calls" if made_calls and reason == "stop" else reason


def _tool_message(text: str, tools: ToolRequest | None, fmt: ToolCallFormat) -> dict[str, Any]:
    if tools is None or not tools.active:
        return {"role": "assistant", "content": text}
    content, calls = parse_tool_calls(text, fmt, tools.names, tools.max_calls)
    if not calls:
        return {"role": "assistant", "content": text}
    return {"role": "assistant", "content": content, "tool_calls": [tool_call_json(c) for c in calls]}


@router.post("/chat/completions", operation_id="create_chat_completion",
             openapi_extra=json_body(ChatCompletionRequest),
             responses={200: {"model": ChatCompletionResponse, "content": event_stream(ChatCompletionChunk)},
                        **error_responses(400, 404, 413, 500, 503)})
async def chat_completions(request: Request):
    state = state_of(request)
    body = await read_body(request, ChatCompletionRequest)
    _check_model(body, state)
    tools = parse_tool_request(body)
    fmt = _tool_format(state)
    prompt_ids = await state.frontend.in_tokenizer_thread(_chat_prompt, body, state, tools)
    want_logprobs = body.get("logprobs", False)
    if not isinstance(want_logprobs, bool):
        raise bad_request("logprobs must be true or false")
    top = body.get("top_logprobs") or 0
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
        raise bad_request("top_logprobs must be an integer from 0 to 20")
    if top and not want_logprobs:  # as OpenAI answers: top-k work nobody would see
        raise bad_request("top_logprobs needs logprobs: true", "top_logprobs")
    params = _sampling(body, None, state)
    if tools is not None and tools.forces_call:
        if params.regex is not None or params.json_schema is not None or params.ebnf is not None:
            raise bad_request("tool_choice \"required\" or a named function constrains the output itself; it cannot "
                              "be combined with response_format, regex, json_schema or ebnf", "tool_choice")
        params.ebnf = forced_call_grammar(tools, fmt)
    if params.max_new_tokens is None:
        params.max_new_tokens = max(1, min(state.info["context_length"] - len(prompt_ids), 1024))
    reqs = _requests(prompt_ids, params, body, request, state, want_logprobs, top)
    rid, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": state.model_name}
    # Per choice, while tools are parsed: splits the streamed text into content and calls.
    streams = ([ToolCallStream(fmt, tools.names, tools.max_calls) for _ in reqs]
               if tools is not None and tools.active else None)

    def chunk(index, text, progress, first, usage_only=False):
        if first:
            return [{**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                          "logprobs": None, "finish_reason": None}]} for i in range(len(reqs))]
        if usage_only:
            return {**base, "choices": []}
        delta, out = progress
        lp = (_chat_logprobs(delta.get("output_token_logprobs", []), state, delta.get("output_top_logprobs"))
              if want_logprobs else None)
        if streams is None:
            return {**base, "choices": [{"index": index, "delta": {"content": text} if text else {},
                                         "logprobs": lp, "finish_reason": _finish(out)}]}
        stream = streams[index]
        called_before = len(stream.calls)
        content, calls = stream.feed(text, final=out.finished)
        message: dict[str, Any] = {"content": content} if content else {}
        if calls:
            message["tool_calls"] = [tool_call_json(c, called_before + k) for k, c in enumerate(calls)]
        return {**base, "choices": [{"index": index, "delta": message, "logprobs": lp,
                                     "finish_reason": _finish_with_calls(out, bool(stream.calls))}]}

    if reqs[0].stream:
        return await _stream_response(reqs, state, request, chunk, _include_usage(body))
    results = await run_many(reqs, state, request)
    choices = []
    for i, r in enumerate(results):
        lp = (_chat_logprobs(r.logprobs["output_token_logprobs"], state, r.logprobs.get("output_top_logprobs"))
              if want_logprobs else None)
        message = _tool_message(r.out.text, tools, fmt)
        choices.append({"index": i, "message": message, "logprobs": lp,
                        "finish_reason": _finish_with_calls(r.out, "tool_calls" in message)})
    return await json_response({"id": rid, "object": "chat.completion", "created": created, "model": state.model_name,
                                "choices": choices, "usage": _usage(results)})

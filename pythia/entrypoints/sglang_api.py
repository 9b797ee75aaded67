"""SGLang-native routes: /generate and the model/server/cache routes the SGLang DSL calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from pythia.entrypoints.errors import HTTPError, bad_request, output_error
from pythia.entrypoints.generation import ResultBuilder, json_response, run_many, run_to_completion, sse
from pythia.entrypoints.protocol.errors import error_responses
from pythia.entrypoints.protocol.openapi import event_stream, json_body
from pythia.entrypoints.protocol.sglang import AbortRequestBody, ConcateAndAppendRequestBody, GenerateRequestBody, \
    GenerateResponse, Integrity, ModelInfo, ServerInfo, Success
from pythia.entrypoints.protocol.validation import read_body
from pythia.entrypoints.server_state import ServerState, state_of
from pythia.entrypoints.workflow_meta import parse_workflow
from pythia.managers.io_struct import GenerateOutput, GenerateRequest
from pythia.model_executor.sampling_params import SamplingParams

router = APIRouter()


# ------------------------------------------------------------------ parsing

def _int_field(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be an integer, got {value!r}")
    return value


def parse_generate(body: dict[str, Any], headers: Any, state: ServerState) -> tuple[list[GenerateRequest], bool]:
    """Builds one request per prompt (and per sample when n > 1); says whether the body was a batch."""
    text, input_ids = body.get("text"), body.get("input_ids")
    if (text is None) == (input_ids is None):
        raise bad_request("give exactly one of text and input_ids")
    if text is not None:
        batched = isinstance(text, list)
        texts = text if batched else [text]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise bad_request("text must be a string or a non-empty list of strings", "text")
        try:
            prompts = [state.frontend.tokenize(t) for t in texts]
        except ValueError as e:
            raise bad_request(str(e), "text") from None
    else:
        batched = isinstance(input_ids, list) and bool(input_ids) and isinstance(input_ids[0], list)
        prompts = input_ids if batched else [input_ids]
        if not prompts or not all(isinstance(p, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in p)
                   for p in prompts):
            raise bad_request("input_ids must be a list of token ids or a list of such lists")
    try:
        params = SamplingParams.from_dict(body.get("sampling_params"))
        state.check_limits(params, len(prompts))
    except ValueError as e:
        raise bad_request(str(e), "sampling_params") from None
    return_logprob = body.get("return_logprob", False)
    if not isinstance(return_logprob, bool):
        raise bad_request("return_logprob must be true or false")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream must be true or false")
    if stream and (batched or params.n > 1):
        raise bad_request("stream works with a single prompt and n = 1")
    rid = body.get("rid")
    if rid is not None and not isinstance(rid, str):
        raise bad_request("rid must be a string")
    workflow = parse_workflow(body, headers)
    requests = []
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise bad_request("the prompt is empty")
        for k in range(params.n):
            if len(prompts) == 1 and params.n == 1:
                this_rid = rid or state.frontend.new_rid()
            else:
                this_rid = f"{rid or state.frontend.new_rid()}-{i}-{k}"
            requests.append(GenerateRequest(
                rid=this_rid, input_ids=prompt, params=params.for_sample(k), stream=stream,
                return_logprob=return_logprob,
                logprob_start_len=_int_field(body, "logprob_start_len", -1),
                top_logprobs_num=_int_field(body, "top_logprobs_num", 0),
                return_text_in_logprobs=bool(body.get("return_text_in_logprobs", False)), workflow=workflow))
    return requests, batched or params.n > 1


# ------------------------------------------------------------------ responses

async def stream_generate(req: GenerateRequest, state: ServerState, first: GenerateOutput,
                          outputs: AsyncIterator[GenerateOutput]) -> AsyncIterator[bytes]:
    builder = ResultBuilder(req, state)
    ended = False
    try:
        out = first
        while True:
            try:
                delta = builder.add(out)
            except HTTPError as e:
                ended = True
                yield sse({"error": {"message": e.message}})
                break
            if out.finished:
                ended = True
                state.metrics.observe(builder)
            yield sse(builder.response(logprobs=delta if req.return_logprob else None))
            if out.finished:
                break
            out = await outputs.__anext__()
        yield b"data: [DONE]\n\n"
    finally:
        if not ended:  # the client went away mid-stream: the frontend aborts the request
            state.metrics.requests.labels(finish_reason="abort").inc()
        await outputs.aclose()


# ------------------------------------------------------------------ routes

PLAIN_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


@router.post("/generate", operation_id="generate", openapi_extra=json_body(GenerateRequestBody), responses={
    200: {"model": GenerateResponse | list[GenerateResponse], "content": event_stream(GenerateResponse),
          "description": "One result; a list of them for a batch or n > 1; events when streamed"},
    **error_responses(400, 413, 500, 503)})
@router.put("/generate", include_in_schema=False)  # SGLang's routes take PUT too
async def generate(request: Request):
    state = state_of(request)
    body = await read_body(request, GenerateRequestBody)
    requests, batched = await state.frontend.in_tokenizer_thread(parse_generate, body, request.headers, state)
    if requests[0].stream:
        req = requests[0]
        outputs = state.frontend.generate(req).__aiter__()
        first = await outputs.__anext__()
        if first.error is not None:  # rejected before anything was streamed: a plain error response
            await outputs.aclose()
            raise output_error(first.error_status, first.error, first.retry)
        return StreamingResponse(stream_generate(req, state, first, outputs), media_type="text/event-stream")
    results = await run_many(requests, state, request)
    responses = [r.response() for r in results]
    return await json_response(responses if batched else responses[0])


@router.get("/model_info", operation_id="model_info", responses={200: {"model": ModelInfo}})
@router.get("/get_model_info", include_in_schema=False)  # SGLang's older name
async def model_info(request: Request):
    info = state_of(request).info
    return {"model_path": info["model_path"], "tokenizer_path": info["model_path"], "is_generation": True,
            "served_model_name": info["served_model_name"], "architectures": [info["architecture"]],
            "context_length": info["context_length"], "vocab_size": info["vocab_size"], "preferred_sampling_params": None,
            "has_image_understanding": False, "has_audio_understanding": False}


@router.get("/server_info", operation_id="server_info", responses={200: {"model": ServerInfo},
                                                                   **error_responses(503)})
@router.get("/get_server_info", include_in_schema=False)  # SGLang's older name
async def server_info(request: Request):
    state = state_of(request)
    reply = await state.frontend.control("stats")
    return {**state.args_dict(), **state.info, "internal_states": [reply.payload], "version": state.version}


@router.post("/flush_cache", operation_id="flush_cache", response_class=PlainTextResponse,
             responses=error_responses(503))
@router.get("/flush_cache", include_in_schema=False)  # SGLang serves it on GET too
async def flush_cache(request: Request):
    reply = await state_of(request).frontend.control("flush_cache")
    return PlainTextResponse(f"Cache flushed: {reply.payload.get('evicted_pages', 0)} pages evicted.\n")


@router.get("/health", operation_id="health", response_class=PlainTextResponse,
            responses={503: {"description": "The engine process is not running", **PLAIN_TEXT}})
async def health(request: Request):
    unavailable = state_of(request).frontend.unavailable()
    if unavailable is not None:
        return PlainTextResponse(f"{unavailable}\n", status_code=503)
    return PlainTextResponse("ok\n")


@router.get("/health_generate", operation_id="health_generate", response_class=PlainTextResponse,
            responses={503: {"description": "A one-token generation failed or took over 60 s", **PLAIN_TEXT}})
async def health_generate(request: Request):
    state = state_of(request)
    req = GenerateRequest(rid=f"health-{state.frontend.new_rid()}", input_ids=[state.info["eos_token_ids"][0]
                                                                              if state.info["eos_token_ids"] else 0],
                          params=SamplingParams(max_new_tokens=1, temperature=0))
    try:
        await asyncio.wait_for(run_to_completion(req, state), timeout=60)
    except (asyncio.TimeoutError, HTTPError) as e:
        return PlainTextResponse(f"generation failed: {e}\n", status_code=503)
    return PlainTextResponse("ok\n")


@router.post("/abort_request", operation_id="abort_request", openapi_extra=json_body(AbortRequestBody),
             responses={200: {"model": Success}, **error_responses(400, 413)})
async def abort_request(request: Request):
    body = await read_body(request, AbortRequestBody)
    rid = body.get("rid")
    if not isinstance(rid, str):
        raise bad_request("abort_request needs a string rid")
    await state_of(request).frontend.abort(rid)
    return {"success": True}


@router.post("/concate_and_append_request", operation_id="concate_and_append_request",
             openapi_extra=json_body(ConcateAndAppendRequestBody),
             responses={200: {"model": Success}, **error_responses(400, 413)})
async def concate_and_append_request(request: Request):
    # The DSL's join(mode="concate_and_append") sends its own client-side executor ids, which
    # this server never saw, after it has already concatenated the texts; the next /generate
    # carries the joined text, whose prefix the cache reuses. Nothing is left to do here.
    body = await read_body(request, ConcateAndAppendRequestBody)
    if not isinstance(body.get("src_rids"), list) or not isinstance(body.get("dst_rid"), str):
        raise bad_request("concate_and_append_request needs src_rids (list) and dst_rid (string)")
    return {"success": True}


@router.get("/check_integrity", operation_id="check_integrity", responses={
    200: {"model": Integrity}, 500: {"model": Integrity, "description": "The core found an inconsistency"},
    **error_responses(503)})
async def check_integrity(request: Request):
    reply = await state_of(request).frontend.control("check_integrity")
    if not reply.ok:
        return JSONResponse({"ok": False, "error": reply.payload.get("error")}, status_code=500)
    return {"ok": True}

"""Errors, answered everywhere (SGLang routes included) in OpenAI's format:
`{"error": {"message", "type", "param", "code"}}`, so that one client-side handler reads them all."""

from __future__ import annotations

import json
import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

# OpenAI's error types by status.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               405: "invalid_request_error", 413: "invalid_request_error", 503: "service_unavailable_error"}


class HTTPError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.headers = headers


def bad_request(message: str, param: str | None = None) -> HTTPError:
    return HTTPError(400, message, param)


def output_error(status: int, message: str, retry: bool = True) -> HTTPError:
    """The error of a request the front or the engine refused; a 503 says when to come back,
    unless coming back would not help."""
    return HTTPError(status, message, headers={"Retry-After": "1"} if status == 503 and retry else None)


def body_too_large(size: int, limit: int) -> str:
    return f"the request body has {size} bytes, more than the limit of {limit} (--max-request-bytes)"


def error_response(status: int, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error" if status >= 500
                                                                     else "invalid_request_error"),
                      "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


async def http_error_handler(_: Request, exc: HTTPError) -> JSONResponse:
    return error_response(exc.status, exc.message, exc.param, exc.headers)


async def starlette_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """404 for unknown routes, 405 for a wrong method: FastAPI's own, in the same format."""
    message = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    return error_response(exc.status_code, message.get(exc.status_code, str(exc.detail)),
                          headers=getattr(exc, "headers", None))


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not the client's fault: logged with its traceback, answered as a 500 naming it."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


async def read_json_object(request: Request) -> dict:
    """The body as a JSON object; 400 naming the problem otherwise."""
    raw = await request.body()
    if not raw:
        return {}
    limit = request.app.state.pythia.args.max_request_bytes
    if len(raw) > limit:
        raise HTTPError(413, body_too_large(len(raw), limit))
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"malformed JSON body: {e}") from None
    except RecursionError:
        raise bad_request("the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise bad_request("the JSON body must be an object")
    return body

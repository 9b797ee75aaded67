"""The error body every route answers with (entrypoints/errors.py builds it), and its documentation."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pythia.entrypoints.protocol.base import ResponseModel
from pythia.entrypoints.protocol.openapi import schema_ref


class ErrorDetail(ResponseModel):
    message: str = Field(description="What was wrong, naming the field or limit")
    type: str = Field(description="OpenAI's error type, e.g. invalid_request_error, service_unavailable_error")
    param: str | None = Field(description="The request field at fault, when one is")
    code: int = Field(description="The HTTP status")


class ErrorResponse(ResponseModel):
    """OpenAI's error format, on every route (SGLang's included)."""

    error: ErrorDetail


_WHY = {
    400: "The request is malformed or asks for something this server does not do",
    404: "No such model, workflow type or job",
    413: "The body is larger than --max-request-bytes",
    500: "A server fault (the engine step that served the request failed)",
    503: ("The queue is full (--max-queued-requests), the engine did not answer in time (both with "
          "Retry-After) or its process is gone"),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` entries for these error statuses, all in ErrorResponse's format. The
    media type is written out: given a model, FastAPI would take the route's own (text/plain for
    /metrics), while errors are JSON everywhere."""
    return {status: {"description": _WHY[status],
                     "content": {"application/json": {"schema": schema_ref(ErrorResponse, "serialization")}}}
            for status in statuses}

"""Client errors: raised anywhere while handling a request, answered as JSON with a message."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> HTTPError:
    return HTTPError(400, message)


async def http_error_handler(_: Request, exc: HTTPError) -> JSONResponse:
    return JSONResponse({"error": {"message": exc.message, "code": exc.status}}, status_code=exc.status)


async def read_json_object(request: Request) -> dict:
    """The body as a JSON object; 400 naming the problem otherwise."""
    raw = await request.body()
    if not raw:
        return {}
    import json

    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"malformed JSON body: {e}") from None
    if not isinstance(body, dict):
        raise bad_request("the JSON body must be an object")
    return body

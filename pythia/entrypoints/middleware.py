"""The checks every request passes before a route sees it: shutdown, API key, body size.

Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the route
behind a stream of its own, which hides the client's disconnect from the routes (they abort
orphaned requests on it) and buffers streaming responses.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from pythia.entrypoints.errors import HTTPError, body_too_large, error_response

if TYPE_CHECKING:
    from pythia.entrypoints.server_state import ServerState

# Reachable without the API key: load balancers probe it.
OPEN_PATHS = {"/health"}


class RequestGate:
    def __init__(self, app, state: ServerState) -> None:
        self.app = app
        self.state = state
        key = state.args.api_key
        self.expected_auth = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.state.draining:  # new work would only be cut off: tell the client to go elsewhere
            response = error_response(503, "the server is shutting down", headers={"Retry-After": "1",
                                                                                 "Connection": "close"})
            await response(scope, receive, send)
            return
        if (self.expected_auth is not None and scope["path"] not in OPEN_PATHS
                and not hmac.compare_digest(headers.get(b"authorization", b""), self.expected_auth)):
            await error_response(401, "missing or wrong API key (Authorization: Bearer ...)")(scope, receive, send)
            return
        limit = self.state.args.max_request_bytes
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await error_response(413, body_too_large(int(length), limit))(scope, receive, send)
            return
        self.state.http_in_flight += 1  # what a graceful shutdown waits for
        try:
            await self.app(scope, _bounded_receive(receive, limit), send)
        finally:
            self.state.http_in_flight -= 1


def _bounded_receive(receive, limit: int):
    """`receive` that refuses a body (chunked, without Content-Length) once it passes `limit`
    bytes, instead of letting the route buffer all of it first."""
    received = 0

    async def bounded():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPError(413, body_too_large(received, limit))
        return message

    return bounded

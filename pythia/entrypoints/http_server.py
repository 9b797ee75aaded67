"""The FastAPI application: routes, API-key check, error format, metrics."""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pythia.entrypoints import openai_api, sglang_api, workflow_api
from pythia.entrypoints.errors import (HTTPError, body_too_large, error_response, http_error_handler,
                                       starlette_error_handler, unhandled_error_handler)
from pythia.entrypoints.protocol.errors import error_responses
from pythia.entrypoints.protocol.openapi import document_models
from pythia.entrypoints.server_state import ServerState
from pythia.managers.frontend import EngineBusy, EngineDied

# Reachable without the API key: load balancers probe it.
OPEN_PATHS = {"/health"}


class BodySizeLimit:
    """413 for a body whose declared length is over the limit, before it is read (read_json_object
    checks bodies sent without one). Plain ASGI rather than @app.middleware: that wrapper hides
    the client's disconnect from the routes, which abort orphaned requests on it."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = error_response(413, body_too_large(int(length), self.max_bytes))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(title="Pythia", version=state.version)
    app.state.pythia = state
    app.include_router(sglang_api.router)
    app.include_router(openai_api.router)
    app.include_router(workflow_api.router)
    app.add_exception_handler(HTTPError, http_error_handler)
    app.add_exception_handler(StarletteHTTPException, starlette_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.on_event("startup")
    async def start_frontend() -> None:
        state.frontend.start(state.engine_alive)

    @app.exception_handler(EngineDied)
    async def engine_died(_: Request, exc: EngineDied) -> JSONResponse:
        return error_response(503, str(exc))

    @app.exception_handler(EngineBusy)
    async def engine_busy(_: Request, exc: EngineBusy) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "1"})

    app.add_middleware(BodySizeLimit, max_bytes=state.args.max_request_bytes)

    if state.args.api_key:
        expected = f"Bearer {state.args.api_key}".encode()

        @app.middleware("http")
        async def check_api_key(request: Request, call_next):
            given = request.headers.get("authorization", "").encode()
            if request.url.path not in OPEN_PATHS and not hmac.compare_digest(given, expected):
                return error_response(401, "missing or wrong API key (Authorization: Bearer ...)")
            return await call_next(request)

    @app.get("/metrics", operation_id="metrics", response_class=PlainTextResponse, responses=error_responses(503))
    async def metrics() -> Response:
        return Response(await state.metrics.render(), media_type="text/plain; version=0.0.4")

    document_models(app)
    return app

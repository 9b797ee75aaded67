"""The FastAPI application: routes, API-key check, error format, metrics."""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from pythia.entrypoints import openai_api, sglang_api, workflow_api
from pythia.entrypoints.errors import HTTPError, http_error_handler
from pythia.entrypoints.server_state import ServerState
from pythia.managers.frontend import EngineDied

# Reachable without the API key: load balancers probe it.
OPEN_PATHS = {"/health"}


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(title="Pythia", version=state.version)
    app.state.pythia = state
    app.include_router(sglang_api.router)
    app.include_router(openai_api.router)
    app.include_router(workflow_api.router)
    app.add_exception_handler(HTTPError, http_error_handler)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc), "code": 400}}, status_code=400)

    @app.on_event("startup")
    async def start_frontend() -> None:
        state.frontend.start(state.engine_alive)

    @app.exception_handler(EngineDied)
    async def engine_died(_: Request, exc: EngineDied) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc), "code": 503}}, status_code=503)

    if state.args.api_key:
        expected = f"Bearer {state.args.api_key}".encode()

        @app.middleware("http")
        async def check_api_key(request: Request, call_next):
            given = request.headers.get("authorization", "").encode()
            if request.url.path not in OPEN_PATHS and not hmac.compare_digest(given, expected):
                return JSONResponse({"error": {"message": "missing or wrong API key (Authorization: Bearer ...)",
                                               "code": 401}}, status_code=401)
            return await call_next(request)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(await state.metrics.render(), media_type="text/plain; version=0.0.4")

    return app

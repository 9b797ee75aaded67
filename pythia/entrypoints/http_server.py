"""The FastAPI application: routes, the request gate, error format, metrics, engine start and stop."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pythia.entrypoints import openai_api, sglang_api, workflow_api
from pythia.entrypoints.errors import (HTTPError, error_response, http_error_handler, starlette_error_handler,
                                       unhandled_error_handler)
from pythia.entrypoints.middleware import RequestGate
from pythia.entrypoints.protocol.errors import error_responses
from pythia.entrypoints.protocol.openapi import document_models
from pythia.entrypoints.server_state import ServerState
from pythia.managers.frontend import EngineBusy, EngineDied


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
        state.frontend.start(state.supervisor)

    @app.on_event("shutdown")
    async def stop_engine() -> None:
        state.close()

    @app.exception_handler(EngineDied)
    async def engine_died(_: Request, exc: EngineDied) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "1"} if exc.retry else None)

    @app.exception_handler(EngineBusy)
    async def engine_busy(_: Request, exc: EngineBusy) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": "1"})

    app.add_middleware(RequestGate, state=state)

    @app.get("/metrics", operation_id="metrics", response_class=PlainTextResponse, responses=error_responses(503))
    async def metrics() -> Response:
        return Response(await state.metrics.render(), media_type="text/plain; version=0.0.4")

    document_models(app)
    return app

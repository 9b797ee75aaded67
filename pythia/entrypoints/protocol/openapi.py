"""The request and event models in /openapi.json.

Routes read their bodies with read_body instead of FastAPI's typed body parameters (which would
hand them a model instead of the dict their checks read, and answer FastAPI's own 422), so FastAPI
does not know them: `json_body` declares a route's body by reference, `event_stream` its
server-sent events (whose models FastAPI does not see either), and `document_models` adds the schemas those references name to the document
FastAPI generates.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from pythia.entrypoints.protocol.base import ResponseModel

REF = "#/components/schemas/{model}"


class StreamErrorDetail(ResponseModel):
    message: str


class StreamError(ResponseModel):
    """The event a stream ends with when its request fails after the first event (then [DONE])."""

    error: StreamErrorDetail

# Models named by reference in routes' documentation, added to the components by document_models,
# with their JSON schema mode: "validation" for what a client sends, "serialization" for what it
# gets (the mode FastAPI writes response models in, so that a model in both has one shape).
_referenced: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {}


def schema_ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, str]:
    """A reference to `model`'s schema, which document_models adds to the components."""
    _referenced[model.__name__] = (model, mode)
    return {"$ref": REF.format(model=model.__name__)}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route that reads its body with read_body(request, model)."""
    schema = schema_ref(model, "validation")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def event_stream(event: type[BaseModel]) -> dict[str, Any]:
    """The `text/event-stream` content of a streaming route's 200. In OpenAPI 3.1 a stream's schema
    describes one event (3.2 calls it itemSchema): its `data` is `[DONE]` at the end, else `event` as
    JSON, or an error's message when the request fails after the stream started."""
    data = {"type": "string", "if": {"const": "[DONE]"},
            "else": {"contentMediaType": "application/json",
                     "contentSchema": {"anyOf": [schema_ref(event, "serialization"),
                                                 schema_ref(StreamError, "serialization")]}}}
    return {"text/event-stream": {"schema": {
        "type": "object", "required": ["data"], "properties": {"data": data},
        "description": f"Server-sent events: `data: <{event.__name__} as JSON>`, each followed by a blank "
                       "line, then `data: [DONE]`"}}}


def document_models(app: FastAPI) -> None:
    """Makes app.openapi() add the referenced models' schemas to the components FastAPI wrote."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        _drop_unused_422s(schema)
        models = [_referenced[name] for name in sorted(_referenced)]
        refs, defs = models_json_schema(models, ref_template=REF)
        for model, mode in models:  # a name pydantic disambiguated would leave a reference dangling
            assert refs[(model, mode)] == {"$ref": REF.format(model=model.__name__)}, (model, refs[(model, mode)])
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            # A model FastAPI already wrote (a response model that is also an event) keeps its text:
            # the same class, written without pydantic's `"default": null`. Protocol model names are
            # unique (tests/test_protocol.py), so a name means one class.
            components.setdefault(name, definition)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_unused_422s(schema: dict[str, Any]) -> None:
    """FastAPI documents a 422 for every route with path parameters; this app answers request
    validation errors with a 400 (http_server), and its path parameters are plain strings."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)

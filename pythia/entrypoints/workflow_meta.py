"""Workflow metadata (ARCHITECTURE.md §1) from a body field `workflow` or X-Workflow-* headers."""

from __future__ import annotations

from typing import Any

from pythia.entrypoints.errors import bad_request
from pythia.managers.io_struct import WorkflowMeta

HEADERS = {"type": "x-workflow-type", "id": "x-workflow-id", "agent": "x-workflow-agent"}


def parse_workflow(body: dict[str, Any], headers: Any) -> WorkflowMeta:
    """Body fields win over headers; everything is optional. Wrong types are a 400."""
    raw = body.get("workflow")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_request("workflow must be an object with optional string fields type, id, agent")
    unknown = set(raw) - set(HEADERS)
    if unknown:
        raise bad_request(f"unknown workflow field(s): {', '.join(sorted(unknown))} (known: type, id, agent)")
    values = {}
    for key, header in HEADERS.items():
        value = raw.get(key, headers.get(header))
        if value is not None and not isinstance(value, str):
            raise bad_request(f"workflow.{key} must be a string, got {value!r}")
        values[key] = value or None
    return WorkflowMeta(**values)

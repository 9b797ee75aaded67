"""Workflow routes (ARCHITECTURE.md §1): register a topology, read the learned profile, end a job."""

from __future__ import annotations

from fastapi import APIRouter, Request

from pythia.entrypoints.errors import HTTPError, bad_request, read_json_object
from pythia.entrypoints.generation import json_response
from pythia.entrypoints.server_state import state_of
from pythia.workflow.registry import parse_topology

router = APIRouter(prefix="/v1/workflows")


async def _ask(request: Request, kind: str, payload: dict, missing_status: int = 404,
               replay_key: str | None = None) -> dict:
    reply = await state_of(request).frontend.control(kind, payload, replay_key=replay_key)
    if not reply.ok:
        raise HTTPError(missing_status, reply.payload.get("error", "failed"))
    return reply.payload


@router.post("")
async def register(request: Request):
    body = await read_json_object(request)
    try:
        topology = parse_topology(body)
    except ValueError as e:
        raise bad_request(str(e)) from None
    # Sent again to a restarted engine: a topology outlives the process that learned from it.
    await _ask(request, "workflow_register", {"topology": topology}, 500, replay_key=topology.type)
    return {"type": topology.type, "registered": True, "topology": topology.to_json()}


@router.get("")
async def list_workflows(request: Request):
    return await _ask(request, "workflow_list", {}, 500)


@router.get("/{wf_type}")
async def get_workflow(request: Request, wf_type: str):
    return await json_response(await _ask(request, "workflow_get", {"type": wf_type}))


@router.post("/jobs/{job_id}/end")
async def end_job(request: Request, job_id: str):
    return await _ask(request, "workflow_end_job", {"job": job_id})

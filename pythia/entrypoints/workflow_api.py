"""Workflow routes (ARCHITECTURE.md §1): register a topology, read the learned profile, end a job."""

from __future__ import annotations

from fastapi import APIRouter, Request

from pythia.entrypoints.errors import HTTPError, bad_request
from pythia.entrypoints.generation import json_response
from pythia.entrypoints.protocol.errors import error_responses
from pythia.entrypoints.protocol.openapi import json_body
from pythia.entrypoints.protocol.validation import read_body
from pythia.entrypoints.protocol.workflow import JobEnded, RegisteredResponse, TopologyRequest, WorkflowList, \
    WorkflowProfile
from pythia.entrypoints.server_state import state_of
from pythia.workflow.registry import parse_topology

router = APIRouter(prefix="/v1/workflows")


async def _ask(request: Request, kind: str, payload: dict, missing_status: int = 404,
               replay_key: str | None = None) -> dict:
    reply = await state_of(request).frontend.control(kind, payload, replay_key=replay_key)
    if not reply.ok:
        raise HTTPError(missing_status, reply.payload.get("error", "failed"))
    return reply.payload


@router.post("", operation_id="register_workflow", openapi_extra=json_body(TopologyRequest),
             responses={200: {"model": RegisteredResponse}, **error_responses(400, 413, 500, 503)})
async def register(request: Request):
    body = await read_body(request, TopologyRequest)
    try:
        topology = parse_topology(body)
    except ValueError as e:
        raise bad_request(str(e)) from None
    # Sent again to a restarted engine: a topology outlives the process that learned from it.
    await _ask(request, "workflow_register", {"topology": topology}, 500, replay_key=topology.type)
    return {"type": topology.type, "registered": True, "topology": topology.to_json()}


@router.get("", operation_id="list_workflows", responses={200: {"model": WorkflowList}, **error_responses(500, 503)})
async def list_workflows(request: Request):
    return await _ask(request, "workflow_list", {}, 500)


@router.get("/{wf_type}", operation_id="get_workflow",
            responses={200: {"model": WorkflowProfile}, **error_responses(404, 503)})
async def get_workflow(request: Request, wf_type: str):
    return await json_response(await _ask(request, "workflow_get", {"type": wf_type}))


@router.post("/jobs/{job_id}/end", operation_id="end_workflow_job",
             responses={200: {"model": JobEnded}, **error_responses(404, 503)})
async def end_job(request: Request, job_id: str):
    return await _ask(request, "workflow_end_job", {"job": job_id})

"""Workflow models (ARCHITECTURE.md §1): the metadata a generate request may carry, and the bodies of
the /v1/workflows routes. The topology's own checks (unknown agents, unbounded cycles) stay in
workflow.registry.parse_topology; these say what shape it takes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from pythia.entrypoints.protocol.base import Bool, ClosedModel, NonEmptyString, NonNegative, Positive, \
    ResponseModel, String
from pythia.workflow.registry import MAX_AGENTS_PER_TYPE


class WorkflowTags(ClosedModel):
    """Which workflow, job and agent a request belongs to; each may also come as an X-Workflow-Type,
    X-Workflow-Id or X-Workflow-Agent header, which a body field overrides."""

    unknown_field_noun = "workflow field"

    type: String | None = Field(None, description="The workflow type (a registered topology's type)")
    id: String | None = Field(None, description="The job: one run of the workflow")
    agent: String | None = Field(None, description="The agent of the workflow making this call")


class WorkflowTagsOut(ResponseModel):
    type: str | None
    id: str | None
    agent: str | None


# ------------------------------------------------------------------ POST /v1/workflows

class AgentSpec(ClosedModel):
    name: NonEmptyString
    system_prompt: String = ""
    output_tokens: NonNegative | None = Field(None, description="Typical output length, a prior for the profiler")
    long_context: Bool = False
    tools: list[String] = []


class EdgeSpec(ClosedModel):
    src: String = Field(alias="from")
    dst: String = Field(alias="to")
    max_repeats: Positive | None = Field(
        None, description="On a loop edge: how often the loop may be taken (every cycle needs one)")


class TopologyRequest(ClosedModel):
    """A workflow type's agents and who may call whom."""

    type: NonEmptyString
    agents: Annotated[list[AgentSpec], Field(max_length=MAX_AGENTS_PER_TYPE)] = []
    edges: list[EdgeSpec] = []


class AgentOut(ResponseModel):
    name: str
    system_prompt: str
    output_tokens: int | None
    long_context: bool
    tools: list[str]


class EdgeOut(ResponseModel):
    src: str = Field(alias="from")
    dst: str = Field(alias="to")
    max_repeats: int | None


class TopologyOut(ResponseModel):
    type: str
    agents: list[AgentOut]
    edges: list[EdgeOut]


class RegisteredResponse(ResponseModel):
    type: str
    registered: bool
    topology: TopologyOut


# ------------------------------------------------------------------ GET /v1/workflows[/{type}]

class WorkflowSummary(ResponseModel):
    type: str
    registered: bool = Field(description="Whether a topology was registered (or only learned from traffic)")
    jobs_seen: int


class WorkflowList(ResponseModel):
    workflows: list[WorkflowSummary]


class Mean(ResponseModel):
    mean: float | None


class MeanP99(ResponseModel):
    mean: float | None
    p99: float | None


class MedianP99(ResponseModel):
    median: float | None
    p99: float | None


class AgentProfile(ResponseModel):
    calls: int
    output_tokens: MeanP99
    prompt_growth_tokens: Mean
    gap_after_s: MedianP99
    latency_s: Mean
    expected_calls_after: float | None = Field(description="Calls expected after this agent's (null: unbounded)")


class WorkflowProfile(ResponseModel):
    """What the server learned about a workflow type from the jobs it served."""

    type: str
    registered: TopologyOut | None
    jobs_seen: int
    live_jobs: int
    transitions: dict[str, dict[str, float]] = Field(description="P(next agent | agent); <start> and <end> included")
    transition_counts: dict[str, dict[str, int]]
    expected_calls_per_job: float | None
    agents: dict[str, AgentProfile]


class JobEnded(ResponseModel):
    job: str
    ended: bool

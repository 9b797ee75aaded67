"""A workflow: named agents (SGLang DSL functions) with declared successors, run job by job."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pythia.lang.endpoint import PythiaEndpoint


@dataclass
class AgentSpec:
    name: str
    function: Any  # an @sgl.function
    successors: list[str] = field(default_factory=list)
    # Loop edges (back to an earlier agent) need a bound: successor -> max repeats.
    max_repeats: dict[str, int] = field(default_factory=dict)
    system_prompt: str = ""
    output_tokens: int | None = None
    long_context: bool = False


class JobContext:
    """What a job's driver uses to call agents; every call is tagged with the job and the agent."""

    def __init__(self, workflow: Workflow, endpoint: PythiaEndpoint, job: str) -> None:
        self.workflow = workflow
        self.endpoint = endpoint
        self.job = job
        self.trace: list[str] = []  # agents called, in order

    def call(self, agent: str, **arguments: Any):
        spec = self.workflow.spec(agent)
        self.trace.append(agent)
        backend = self.endpoint.bind(workflow_type=self.workflow.type, job=self.job, agent=agent)
        state = spec.function.run(backend=backend, **arguments)
        if state.error() is not None:
            raise RuntimeError(f"agent {agent} of job {self.job} failed: {state.error()}")
        return state

    def parallel(self, agent: str, argument_list: list[dict[str, Any]]) -> list:
        """Fan-out: the same agent on several inputs at once."""
        with ThreadPoolExecutor(max_workers=max(1, len(argument_list))) as pool:
            return list(pool.map(lambda args: self.call(agent, **args), argument_list))


class Workflow:
    def __init__(self, workflow_type: str) -> None:
        self.type = workflow_type
        self.agents: dict[str, AgentSpec] = {}

    def agent(self, name: str, successors: list[str] | tuple[str, ...] = (), max_repeats: dict[str, int] | None = None,
              system_prompt: str = "", output_tokens: int | None = None, long_context: bool = False):
        """Decorator declaring an @sgl.function as the agent `name`."""
        def register(function):
            if name in self.agents:
                raise ValueError(f"agent {name!r} is declared twice")
            self.agents[name] = AgentSpec(name, function, list(successors), dict(max_repeats or {}), system_prompt,
                                          output_tokens, long_context)
            return function
        return register

    def spec(self, agent: str) -> AgentSpec:
        if agent not in self.agents:
            raise ValueError(f"workflow {self.type!r} has no agent {agent!r} (agents: {', '.join(self.agents)})")
        return self.agents[agent]

    def topology(self) -> dict[str, Any]:
        """The body of POST /v1/workflows."""
        agents = [{"name": a.name, "system_prompt": a.system_prompt, "output_tokens": a.output_tokens,
                   "long_context": a.long_context} for a in self.agents.values()]
        edges = [{"from": a.name, "to": dst, "max_repeats": a.max_repeats.get(dst)}
                 for a in self.agents.values() for dst in a.successors]
        return {"type": self.type, "agents": [{k: v for k, v in ag.items() if v is not None} for ag in agents],
                "edges": [{k: v for k, v in e.items() if v is not None} for e in edges]}

    def register(self, endpoint: PythiaEndpoint) -> dict:
        return endpoint.register_workflow(self.topology())

    def run(self, driver: Callable[..., Any], endpoint: PythiaEndpoint, job: str | None = None,
            register: bool = True, **arguments: Any) -> Any:
        """Runs one job: `driver(ctx, **arguments)` calls the agents; the job is ended after it."""
        if register:
            self.register(endpoint)
        ctx = JobContext(self, endpoint, job or f"{self.type}-{uuid.uuid4().hex[:12]}")
        try:
            return driver(ctx, **arguments)
        finally:
            if ctx.trace:  # a job that never reached the server has nothing to end
                endpoint.end_job(ctx.job)

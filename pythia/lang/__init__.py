"""Agent programs in the SGLang frontend DSL, grouped into workflows whose requests carry metadata.

    wf = Workflow("code-review")

    @wf.agent("planner", successors=["coder"])
    @sgl.function
    def planner(s, task): ...

    def job(ctx, task):
        plan = ctx.call("planner", task=task)
        drafts = ctx.parallel("coder", [{"step": 1}, {"step": 2}])
        ...

    wf.run(job, PythiaEndpoint("http://127.0.0.1:30000"), task="...")

Every request an agent sends carries {"type", "id", "agent"}; the topology is registered once with
POST /v1/workflows and the job is ended when the driver returns.
"""

from __future__ import annotations

from pythia.lang.endpoint import PythiaEndpoint
from pythia.lang.workflow import AgentSpec, JobContext, Workflow

__all__ = ["AgentSpec", "JobContext", "PythiaEndpoint", "Workflow"]

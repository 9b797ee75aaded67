"""The workflow metadata a request may carry (ARCHITECTURE.md §1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkflowMeta:
    """Which workflow, job and agent a request belongs to (all optional)."""

    type: str | None = None
    id: str | None = None
    agent: str | None = None

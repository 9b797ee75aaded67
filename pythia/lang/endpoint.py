"""sgl.RuntimeEndpoint that tags its requests with workflow metadata."""

from __future__ import annotations

import copy
from typing import Any

import requests
import sglang as sgl


class PythiaEndpoint(sgl.RuntimeEndpoint):
    """A RuntimeEndpoint whose /generate bodies carry {"workflow": {"type", "id", "agent"}}.

    `bind()` gives a copy with other tags (no new connection or model-info call), so concurrent
    agents of one job each send their own role.
    """

    def __init__(self, base_url: str, *, workflow_type: str | None = None, job: str | None = None,
                 agent: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.workflow = {"type": workflow_type, "id": job, "agent": agent}

    def bind(self, **tags: str | None) -> PythiaEndpoint:
        unknown = set(tags) - {"workflow_type", "job", "agent"}
        if unknown:
            raise TypeError(f"unknown workflow tag(s): {', '.join(sorted(unknown))}")
        bound = copy.copy(self)
        bound.workflow = dict(self.workflow)
        for key, value in tags.items():
            bound.workflow["type" if key == "workflow_type" else "id" if key == "job" else key] = value
        return bound

    # SGLang's endpoint passes every /generate body that belongs to a program through this hook
    # (gen, streaming gen, select, fork's prefill); it is the one place to add the metadata.
    def _add_images(self, s, data: dict) -> None:
        super()._add_images(s, data)
        tags = {k: v for k, v in self.workflow.items() if v is not None}
        if tags:
            data["workflow"] = tags

    def _post(self, path: str, body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        res = requests.post(self.base_url + path, json=body or {}, headers=headers, timeout=60)
        if res.status_code != 200:
            raise RuntimeError(f"POST {path}: HTTP {res.status_code}: {res.text}")
        return res.json()

    def register_workflow(self, topology: dict) -> dict:
        return self._post("/v1/workflows", topology)

    def end_job(self, job: str) -> dict:
        return self._post(f"/v1/workflows/jobs/{job}/end")

"""Replays a workload against a live server with real concurrency, honouring dependencies,
tool gaps and arrival times, and timing every call through the streamed response."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp
import numpy as np

from benchmarks.harness.prompts import PromptBuilder
from benchmarks.workloads.model import Call, Job, Workload


@dataclass
class CallRecord:
    job: str
    call: str
    agent: str
    ready_s: float  # dependencies done and tool gap over: the call is issued
    first_token_s: float
    finished_s: float
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    host_cached_tokens: int = 0  # of cached_tokens, loaded from the host tier


@dataclass
class JobRecord:
    job: str
    type: str
    arrival_s: float
    finished_s: float
    num_calls: int

    @property
    def jct_s(self) -> float:
        return self.finished_s - self.arrival_s


class Replayer:
    def __init__(self, url: str, workload: Workload, vocab_size: int, tagged: bool = True,
                 on_call_done=None) -> None:
        self.url = url
        self.workload = workload
        self.tagged = tagged
        self.prompts = PromptBuilder(workload, vocab_size)
        self.on_call_done = on_call_done
        self.calls: list[CallRecord] = []
        self.jobs: list[JobRecord] = []

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            self.session = session
            self.t0 = time.perf_counter()
            await asyncio.gather(*(self._job(job) for job in self.workload.jobs))

    def now(self) -> float:
        return time.perf_counter() - self.t0

    async def _job(self, job: Job) -> None:
        await asyncio.sleep(max(0.0, job.arrival_s - self.now()))
        outputs: dict[str, list[int]] = {}
        bodies: dict[str, list[int]] = {}
        finished: dict[str, asyncio.Event] = {c.id: asyncio.Event() for c in job.calls}
        finish_time: dict[str, float] = {}

        async def one(call: Call) -> None:
            for dep in call.all_deps():
                await finished[dep].wait()
            await asyncio.sleep(call.gap_s)
            body = self.prompts.body(job, call, bodies, outputs)
            record, out_ids = await self._send(job, call, self.prompts.prompt(call, body))
            bodies[call.id], outputs[call.id] = body, out_ids
            finish_time[call.id] = record.finished_s
            self.calls.append(record)
            finished[call.id].set()
            if self.on_call_done:
                self.on_call_done()

        await asyncio.gather(*(one(c) for c in job.calls))
        if self.tagged:
            # The application knows when a job is over and says so (ARCHITECTURE.md §1).
            async with self.session.post(f"{self.url}/v1/workflows/jobs/{job.id}/end") as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{job.id}: ending the job: HTTP {resp.status}: {await resp.text()}")
        self.jobs.append(JobRecord(job.id, job.type, job.arrival_s, max(finish_time.values()), len(job.calls)))

    async def _send(self, job: Job, call: Call, prompt: np.ndarray) -> tuple[CallRecord, list[int]]:
        payload = {"input_ids": prompt.tolist(), "stream": True,
                   "sampling_params": {"max_new_tokens": call.output_tokens, "temperature": 0, "ignore_eos": True}}
        if self.tagged:
            payload["workflow"] = {"type": job.type, "id": job.id, "agent": call.agent}
        ready = self.now()
        first = None
        last: dict = {}
        async with self.session.post(self.url + "/generate", json=payload) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{job.id}/{call.id}: HTTP {resp.status}: {await resp.text()}")
            async for raw in resp.content:
                line = raw.decode().strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                last = json.loads(line[5:])
                if "error" in last:
                    raise RuntimeError(f"{job.id}/{call.id}: {last['error']}")
                if first is None and last["output_ids"]:
                    first = self.now()
        end = self.now()
        meta = last["meta_info"]
        record = CallRecord(job.id, call.id, call.agent, ready, first if first is not None else end, end,
                            meta["prompt_tokens"], meta["completion_tokens"], meta["cached_tokens"],
                            meta.get("cached_tokens_details", {}).get("host", 0))
        return record, last["output_ids"]

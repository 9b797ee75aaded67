"""A long-running engine keeps nothing per finished workflow job: ended jobs, and jobs idle past
--job-idle-timeout-s, are forgotten by the profiler, the core and the tag ids, and their ids reused."""

from __future__ import annotations

import time

import pytest

from pythia.managers.engine import Engine
from pythia.managers.io_struct import GenerateRequest, WorkflowMeta
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs


@pytest.fixture(scope="module")
def engine():
    from pythia.models.tiny_model import tiny_model_path

    return Engine(ServerArgs(model_path=str(tiny_model_path()), max_total_tokens=2048, schedule_policy="pythia",
                             eviction_policy="pythia", admission_policy="pythia", job_idle_timeout_s=0.3))


def call(engine: Engine, job: str, step: int) -> None:
    req = GenerateRequest(rid=f"{job}-{step}", input_ids=list(range(5, 40 + 8 * step)),
                          params=SamplingParams(max_new_tokens=2, temperature=0, ignore_eos=True),
                          workflow=WorkflowMeta(type="loop", id=job, agent="worker"))
    assert engine.add_request(req) is None
    while engine.has_work():
        engine.step()


def test_ended_and_idle_jobs_are_forgotten_and_their_ids_reused(engine):
    for step in range(3):
        call(engine, "ended-job", step)
    ended_tag = engine.tag_ids["job"]["ended-job"]
    ok, _ = engine.workflow_control("workflow_end_job", {"job": "ended-job"})
    assert ok
    assert "ended-job" not in engine.profiler.jobs and "ended-job" not in engine.tag_ids["job"]
    assert engine.stats()["workflow_jobs_tracked"] == 0 and engine.stats()["workflow_jobs_seen"] == 1
    call(engine, "idle-job", 0)
    assert engine.tag_ids["job"]["idle-job"] == ended_tag, "the forgotten job's id is reused"
    time.sleep(0.4)  # past --job-idle-timeout-s; no gap samples yet, so no later dead time applies
    call(engine, "other-job", 0)  # the next step sweeps idle jobs
    assert "idle-job" not in engine.profiler.jobs and "idle-job" not in engine.tag_ids["job"]
    assert engine.profiler.describe("loop")["transition_counts"]["worker"]["<end>"] == 2, "the timeout ended it"
    # Ending an unknown or already forgotten job is an error, not a crash.
    ok, reply = engine.workflow_control("workflow_end_job", {"job": "ended-job"})
    assert not ok and "unknown" in reply["error"]
    engine.check_integrity()

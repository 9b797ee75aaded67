"""A long-running engine keeps nothing per finished workflow job: ended jobs, and jobs idle past
--job-idle-timeout-s, are forgotten by the profiler, the core and the tag ids, and their ids reused."""

from __future__ import annotations

import time

import pytest

from pythia.managers.engine import Engine
from pythia.managers.io_struct import GenerateRequest, WorkflowMeta
from pythia.model_executor.sampling_params import SamplingParams
from pythia.server_args import ServerArgs


def tiny_engine(**kwargs) -> Engine:
    from pythia.models.tiny_model import tiny_model_path

    return Engine(ServerArgs(model_path=str(tiny_model_path()), schedule_policy="pythia", eviction_policy="pythia",
                             admission_policy="pythia", **kwargs))


@pytest.fixture(scope="module")
def engine():
    return tiny_engine(max_total_tokens=2048, job_idle_timeout_s=0.3)


def send(engine: Engine, job: str, step: int, prompt_len: int | None = None, max_new_tokens: int = 2) -> None:
    req = GenerateRequest(rid=f"{job}-{step}", input_ids=list(range(5, 5 + (prompt_len or 35 + 8 * step))),
                          params=SamplingParams(max_new_tokens=max_new_tokens, temperature=0, ignore_eos=True),
                          workflow=WorkflowMeta(type="loop", id=job, agent="worker"))
    assert engine.add_request(req) is None


def call(engine: Engine, job: str, step: int, prompt_len: int | None = None) -> None:
    send(engine, job, step, prompt_len)
    while engine.has_work():
        engine.step()


def test_ended_and_idle_jobs_are_forgotten_and_their_ids_reused(engine):
    for step in range(3):
        call(engine, "ended-job", step)
    ended_tag = engine.tracker.tag_ids["job"]["ended-job"]
    ok, _ = engine.workflow_control("workflow_end_job", {"job": "ended-job"})
    assert ok
    assert "ended-job" not in engine.tracker.profiler.jobs and "ended-job" not in engine.tracker.tag_ids["job"]
    assert engine.stats()["workflow_jobs_tracked"] == 0 and engine.stats()["workflow_jobs_seen"] == 1
    call(engine, "idle-job", 0)
    assert engine.tracker.tag_ids["job"]["idle-job"] == ended_tag, "the forgotten job's id is reused"
    time.sleep(0.4)  # past --job-idle-timeout-s; no gap samples yet, so no later dead time applies
    call(engine, "other-job", 0)  # the next step sweeps idle jobs
    assert "idle-job" not in engine.tracker.profiler.jobs and "idle-job" not in engine.tracker.tag_ids["job"]
    assert engine.tracker.profiler.describe("loop")["transition_counts"]["worker"]["<end>"] == 2, "the timeout ended it"
    # Ending an unknown or already forgotten job is an error, not a crash.
    ok, reply = engine.workflow_control("workflow_end_job", {"job": "ended-job"})
    assert not ok and "unknown" in reply["error"]
    engine.check_integrity()


def test_a_new_job_waits_while_a_live_context_fills_the_pool_then_runs_rather_than_leave_the_engine_idle():
    engine = tiny_engine(max_total_tokens=256, max_job_hold_s=60.0)
    for step in range(5):  # job A: 4 gaps of 0.3 s, a 200-token context; expected back after a gap
        call(engine, "A", step, prompt_len=200)
        if step < 4:
            time.sleep(0.3)
    send(engine, "A", 5, prompt_len=200, max_new_tokens=8)
    send(engine, "B", 0, prompt_len=100)  # 200 + 100 > 256: B's first call is held while A's runs
    engine.step()
    assert engine.last_step_ran
    while engine.stats()["num_running"] > 0:
        assert engine.stats()["num_waiting"] == 1, "B was admitted beside the live context"
        engine.step()
    engine.check_integrity()
    # A is back in a gap and still counts as live, but with nothing running, holding B would leave
    # the engine idle: B runs long before --max-job-hold-s.
    engine.step()
    assert engine.last_step_ran
    while engine.has_work():
        engine.step()
    engine.check_integrity()


def test_a_new_job_that_fits_beside_the_live_contexts_runs_at_once():
    engine = tiny_engine(max_total_tokens=256, max_job_hold_s=5.0)
    for step in range(6):  # job A: expected back after a gap, with a 202-token context
        call(engine, "A", step, prompt_len=200)
        if step < 5:
            time.sleep(0.3)
    # 202 + 40 fits in 256. The profiler reports B in a call from its arrival; counting that as
    # live as well (202 + 40 + 40) would hold B for nothing.
    send(engine, "B", 0, prompt_len=40)
    engine.step()
    assert engine.last_step_ran
    while engine.has_work():
        engine.step()
    engine.check_integrity()


def test_a_rejected_first_call_keeps_no_job_id(engine):
    tracked = engine.stats()["workflow_jobs_tracked"]
    too_long = GenerateRequest(rid="too-long", input_ids=[5] * 4000, params=SamplingParams(max_new_tokens=2),
                               workflow=WorkflowMeta(type="loop", id="rejected-job", agent="worker"))
    assert engine.add_request(too_long).error
    assert engine.stats()["workflow_jobs_tracked"] == tracked and "rejected-job" not in engine.tracker.tag_ids["job"]
    engine.check_integrity()

"""The WorkflowTracker on a virtual clock with the real core, and the typed core boundary it uses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pythia import _core
from pythia.server_args import ServerArgs
from pythia.workflow.meta import WorkflowMeta
from pythia.workflow.tracker import WorkflowTracker


class RecordingCore:
    """The real core, with a record of the calls the tracker's feed made."""

    def __init__(self, core: _core.Scheduler) -> None:
        self.core, self.calls = core, []

    def __getattr__(self, name):
        def call(*args):
            self.calls.append(name)
            return getattr(self.core, name)(*args)
        return call


def make_core(**settings) -> _core.Scheduler:
    config = _core.SchedulerConfig()
    config.page_size, config.num_device_pages, config.max_batch_tokens = 4, 64, 256
    for name, value in settings.items():
        setattr(config, name, value)
    return _core.Scheduler(config)


def run_call(tracker: WorkflowTracker, core: _core.Scheduler, rid: int, wf: WorkflowMeta, prompt_len: int,
             start_s: float, duration_s: float) -> None:
    """One call on the virtual clock: arrival at start_s, served by the core, finished duration_s later."""
    tags, hints = tracker.on_arrival(wf)
    core.add_request(rid, np.arange(prompt_len, dtype=np.int32), 2, tags=tags, hints=hints)
    tracker.on_queued(wf, prompt_len, start_s)
    while core.has_request(rid):
        plan = core.schedule()
        core.update(plan.req_ids, np.ones(len(plan), np.int32), np.zeros(len(plan), bool))
    tracker.on_finish(wf, 2, start_s + duration_s, duration_s)


def test_the_tracker_imports_no_model_engine_or_torch():
    code = ("import sys, pythia.workflow.tracker; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('pythia.managers', 'pythia.models', "
            "'pythia.model_executor', 'pythia.entrypoints'))]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_virtual_clock_drives_jobs_through_ending_retirement_and_id_reuse():
    core = make_core(schedule_policy="pythia", eviction_policy="pythia")
    tracker = WorkflowTracker(core, job_idle_timeout_s=30.0)
    for step in range(3):  # job "a": three calls of one agent, 5 s tool gaps
        run_call(tracker, core, step, WorkflowMeta("loop", "a", "worker"), 8 + 4 * step, 100.0 + 6 * step, 1.0)
    a_id = tracker.tag_ids["job"]["a"]
    assert tracker.end_job("a", 120.0) and "a" not in tracker.tag_ids["job"]
    assert not tracker.end_job("a", 120.0), "already ended and forgotten"
    run_call(tracker, core, 10, WorkflowMeta("loop", "b", "worker"), 8, 130.0, 1.0)
    assert tracker.tag_ids["job"]["b"] == a_id, "the forgotten job's id is reused"
    tracker.sweep(140.0)
    assert "b" in tracker.tag_ids["job"], "idle 9 s: under the 30 s timeout"
    tracker.sweep(1000.0)  # virtual time: nobody sleeps
    assert "b" not in tracker.tag_ids["job"] and "b" not in tracker.profiler.jobs
    assert tracker.stats() == {"workflow_types_seen": 1, "workflow_jobs_seen": 2, "workflow_agents_seen": 1,
                               "workflow_jobs_tracked": 0}
    core.check_integrity()


def test_a_rejected_first_call_keeps_no_job_id():
    core = make_core()
    tracker = WorkflowTracker(core, job_idle_timeout_s=30.0)
    wf = WorkflowMeta("loop", "never-ran", "worker")
    tags, hints = tracker.on_arrival(wf)
    with pytest.raises(ValueError, match="the pool has 64"):
        core.add_request(0, np.arange(400, dtype=np.int32), 2, tags=tags, hints=hints)
    tracker.on_rejected(wf)
    assert "never-ran" not in tracker.tag_ids["job"]
    core.check_integrity()


@pytest.mark.parametrize("settings, sent", [
    ({}, set()),  # the baselines read no prediction: nothing is sent
    ({"schedule_policy": "pythia"}, {"set_job_work"}),
    ({"eviction_policy": "kvflow"}, {"set_job_forecast", "set_agent_forecast"}),
    ({"admission_policy": "pythia", "max_job_hold_s": 0.0}, set()),  # only the P99 output length, a hint on arrival
    ({"admission_policy": "pythia", "max_job_hold_s": 2.0}, {"set_job_forecast"}),  # the gate weighs live jobs
])
def test_the_feed_sends_what_the_cores_policies_read(settings, sent):
    core = RecordingCore(make_core(**settings))
    tracker = WorkflowTracker(core, job_idle_timeout_s=30.0)
    run_call(tracker, core.core, 0, WorkflowMeta("loop", "a", "worker"), 8, 0.0, 1.0)
    predictions = {"set_job_work", "set_job_forecast", "set_agent_forecast", "set_gap_distribution", "end_job"}
    assert set(core.calls) & predictions == sent


def test_the_step_plan_is_read_only_and_outlives_the_next_step():
    core = make_core()
    core.add_request(1, np.arange(10, dtype=np.int32), 3)
    plan = core.schedule()
    assert plan.req_ids.tolist() == [1] and plan.num_tokens.tolist() == [10] and plan.samples.dtype == bool
    assert plan.offload_pages.shape == (0, 2) and plan.load_pages.shape == (0, 2)
    with pytest.raises(ValueError, match="read-only"):
        plan.num_tokens[0] = 3
    core.update(plan.req_ids, np.array([7], np.int32), np.zeros(1, bool))
    nxt = core.schedule()
    assert (nxt.step, nxt.num_tokens.tolist(), nxt.start_pos.tolist()) == (plan.step + 1, [1], [10])
    assert plan.num_tokens.tolist() == [10], "the held plan kept its own buffers"
    with pytest.raises(ValueError, match="no page transfers in flight"):
        core.update(nxt.req_ids, np.array([7], np.int32), np.zeros(1, bool), transfers_done=[nxt.step])
    core.update(nxt.req_ids, np.array([7], np.int32), np.zeros(1, bool))
    assert core.tokens(1).tolist()[-2:] == [7, 7]
    core.check_integrity()


def test_server_flags_map_to_the_core_config_once():
    config = ServerArgs(max_total_tokens=4096, page_size=16, chunked_prefill_size=128,
                        schedule_policy="pythia", max_job_hold_s=2.5).scheduler_config()
    assert (config.num_device_pages, config.page_size, config.max_batch_tokens) == (256, 16, 128)
    assert (config.schedule_policy, config.max_job_hold_s) == ("pythia", 2.5)


@pytest.mark.parametrize("flags, message", [
    ({"chunked_prefill_size": 0}, "--chunked-prefill-size must be positive"),
    ({"aging_tokens_per_step": -1.0}, "--aging-tokens-per-step must be >= 0"),
    ({"max_total_tokens": 8}, "--max-total-tokens must hold at least one page"),
    ({"max_total_tokens": 10**13}, "--max-total-tokens: 10000000000000 is out of range"),
    ({"eviction_policy": "mru"}, "--eviction-policy: unknown policy 'mru'"),
    ({"job_idle_timeout_s": 0.0}, "--job-idle-timeout-s must be positive"),
])
def test_a_bad_flag_is_named_in_the_error(flags, message):
    with pytest.raises(ValueError) as err:
        ServerArgs(**flags).validate()
    assert str(err.value).startswith(message), str(err.value)


def test_the_server_reports_a_bad_flag_at_startup_without_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "pythia.launch_server", "--chunked-prefill-size", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--chunked-prefill-size must be positive" in proc.stderr and "Traceback" not in proc.stderr


def test_a_type_takes_at_most_256_agents_whatever_type_a_live_jobs_calls_name():
    from pythia.workflow.registry import MAX_AGENTS_PER_TYPE

    core = make_core(num_device_pages=4096)
    tracker = WorkflowTracker(core, job_idle_timeout_s=30.0)
    for i in range(MAX_AGENTS_PER_TYPE):
        run_call(tracker, core, i, WorkflowMeta("wide", f"job-{i}", f"agent-{i}"), 4, float(i), 0.5)
    with pytest.raises(ValueError, match="already has 256 agents"):
        tracker.on_arrival(WorkflowMeta("wide", "job-new", "agent-new"))
    # A live job of "wide" calling under another type name would add its agent to "wide" on finish.
    tracker.on_arrival(WorkflowMeta("wide", "job-0", "agent-0"))  # a known agent: fine
    with pytest.raises(ValueError, match="'wide' already has 256 agents"):
        tracker.on_arrival(WorkflowMeta("other", "job-0", "agent-sneaky"))
    assert len(tracker.profiler.types["wide"].agents) == MAX_AGENTS_PER_TYPE
    core.check_integrity()

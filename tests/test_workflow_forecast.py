"""The predictions handed to the core's policies: job and agent forecasts from the profiler."""

from __future__ import annotations

import math

import pytest
from test_workflow_profiler import simulate

from pythia import _core
from pythia.workflow.feed import PredictionFeed
from pythia.workflow.forecast import GAP_DISTRIBUTION_POINTS, NEVER, agent_forecasts, gap_distribution, job_forecast
from pythia.workflow.profiler import Samples, WorkflowProfiler
from pythia.workflow.tags import TagTable


@pytest.fixture()
def trained() -> WorkflowProfiler:
    profiler = WorkflowProfiler()
    simulate(profiler, 100)  # planner -> coder/reviewer loop; calls last 1 s, tool gaps 0.5 s
    return profiler


def test_a_job_with_a_call_in_flight_is_in_use_now(trained):
    trained.on_request("review", "live", "planner", 100, 1000.0)
    f = job_forecast(trained, "live", 1000.0)
    assert f.next_use_s == 1000.0 and f.steps_to_execution == 0 and f.dead_after_s == NEVER
    assert f.unblocks, "the job's only call in flight: its next agent waits on it"
    assert f.work_tokens > 0


def test_a_job_in_its_tool_gap_is_expected_back_after_the_gap(trained):
    trained.on_request("review", "live", "planner", 100, 1000.0)
    trained.on_finish("review", "live", "planner", 50, 1001.0, 1.0)
    f = job_forecast(trained, "live", 1001.0)
    # The planner always hands over; its observed gaps are all 0.5 s.
    assert f.next_use_s == pytest.approx(1001.5)
    assert f.steps_to_execution == 1
    assert f.dead_after_s == pytest.approx(1001.0 + max(2 * 0.5, 1.0)), "idle well past the P99 gap: dead"
    assert f.pinned_until_s == pytest.approx(1001.5), "Continuum pins through the P90 tool gap"


def test_a_waiting_job_carries_its_wait_and_the_gap_distribution_to_condition_on(trained):
    trained.on_request("review", "live", "reviewer", 100, 1000.0)
    f = job_forecast(trained, "live", 1000.0)
    assert f.idle_since_s == NEVER, "a call in flight: not waiting"
    trained.on_finish("review", "live", "reviewer", 30, 1001.0, 1.0)
    f = job_forecast(trained, "live", 1001.0)
    assert (f.idle_since_s, f.gap_agent) == (1001.0, "reviewer")
    assert f.p_continue == pytest.approx(1 - trained.describe("review")["transitions"]["reviewer"]["<end>"])
    points = gap_distribution(trained.profile("review").agents["reviewer"].gap_after_s)
    assert len(points) == GAP_DISTRIBUTION_POINTS and points == pytest.approx([0.5] * GAP_DISTRIBUTION_POINTS)
    assert gap_distribution(Samples()) is None, "no samples: no distribution"


class RecordingCore:
    """The real core, with a record of what the feed sent it."""

    def __init__(self, core) -> None:
        self.core, self.calls = core, []

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, args))
            return getattr(self.core, name)(*args)
        return call


def test_the_feed_sends_a_gap_distribution_once_per_new_sample_and_the_wait_with_the_job(trained):
    config = _core.SchedulerConfig()
    config.eviction_policy = "pythia"
    core = RecordingCore(_core.Scheduler(config))
    tags = TagTable()
    for kind, name in [("type", "review"), ("agent", "planner"), ("agent", "coder"), ("agent", "reviewer")]:
        tags.intern(kind, name)

    feed = PredictionFeed(core, trained, tags)
    trained.on_request("review", "live", "planner", 100, 1000.0)
    trained.on_finish("review", "live", "planner", 50, 1001.0, 1.0)
    feed.publish("live", 1001.0)
    feed.publish("live", 1001.2)  # no new gap sample: the distribution is not sent again
    sent = [args for name, args in core.calls if name == "set_gap_distribution"]
    assert len(sent) == 1 and sent[0][:2] == (0, 0) and len(sent[0][2]) == GAP_DISTRIBUTION_POINTS
    job = [args[1] for name, args in core.calls if name == "set_job_forecast"][-1]
    assert (job.idle_since, job.gap_type, job.gap_agent, job.p_continue, job.context_tokens) == (1001.0, 0, 0, 1.0, 150), \
        "waiting since 1001 after the planner (which always hands over), context 100 + 50"
    bad = _core.JobForecast()
    bad.next_use, bad.dead_after, bad.steps_to_execution, bad.pinned_until = 1.0, NEVER, 1, -NEVER
    bad.idle_since, bad.gap_type, bad.gap_agent, bad.p_continue = 1.0, 0, 0, 1.5
    with pytest.raises(ValueError, match="p_continue"):
        core.core.set_job_forecast(0, bad)
    with pytest.raises(ValueError, match="gap samples"):
        core.core.set_gap_distribution(0, 0, [1.0, math.nan])
    core.core.check_integrity()


def test_a_job_likely_to_end_is_expected_back_later_and_not_pinned(trained):
    trained.on_request("review", "live", "reviewer", 100, 1000.0)
    trained.on_finish("review", "live", "reviewer", 30, 1001.0, 1.0)
    f = job_forecast(trained, "live", 1001.0)
    p_continue = 1 - trained.describe("review")["transitions"]["reviewer"]["<end>"]
    assert p_continue == pytest.approx(0.4, abs=0.1)
    assert f.next_use_s == pytest.approx(1001.0 + 0.5 / p_continue)
    assert f.pinned_until_s == -math.inf


def test_an_ended_job_is_dead_and_never_used_again(trained):
    trained.on_request("review", "live", "planner", 100, 1000.0)
    trained.on_finish("review", "live", "planner", 50, 1001.0, 1.0)
    trained.end_job("live")
    f = job_forecast(trained, "live", 1001.0)
    assert (f.next_use_s, f.steps_to_execution, f.work_tokens) == (NEVER, -1, 0.0)


def test_unblocks_only_for_the_last_call_of_a_fan_out(trained):
    for i in range(3):
        trained.on_request("review", "fan", "coder", 100, 1000.0)
    assert not job_forecast(trained, "fan", 1000.0).unblocks
    trained.on_finish("review", "fan", "coder", 200, 1001.0, 1.0)
    trained.on_finish("review", "fan", "coder", 200, 1001.0, 1.0)
    assert job_forecast(trained, "fan", 1001.0).unblocks


def test_agent_forecasts_follow_the_live_jobs_through_the_automaton(trained):
    assert all(f.steps_to_execution == -1 and f.next_use_s == NEVER
               for f in agent_forecasts(trained.profile("review"), 1000.0).values()), "no live job, none due"
    trained.on_request("review", "live", "planner", 100, 1000.0)
    f = agent_forecasts(trained.profile("review"), 1000.0)
    assert f["planner"].steps_to_execution == 0
    assert f["coder"].steps_to_execution == 1 and f["reviewer"].steps_to_execution == 1
    # One agent step is a call (1 s) plus the gap after it (0.5 s).
    assert f["coder"].next_use_s == pytest.approx(1001.5)
    trained.on_finish("review", "live", "planner", 50, 1001.0, 1.0)
    f = agent_forecasts(trained.profile("review"), 1001.0)
    # Nothing leads back to the planner: only the next job, due one mean interarrival after this one.
    interarrival = trained.profile("review").job_interarrival_s.mean()
    assert f["planner"].steps_to_execution == 1
    assert f["planner"].next_use_s == pytest.approx(1000.0 + interarrival)
    trained.end_job("live")
    f = agent_forecasts(trained.profile("review"), 1001.0)
    assert f["coder"].steps_to_execution == 2, "the next job reaches the coder in its second step"
    # Quiet for longer than any interarrival seen: no job is expected at all.
    assert all(f.steps_to_execution == -1 for f in agent_forecasts(trained.profile("review"), 5000.0).values())

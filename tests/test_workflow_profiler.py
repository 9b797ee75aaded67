"""Topology validation and the online profiler's learned automaton and statistics."""

from __future__ import annotations

import numpy as np
import pytest

from pythia.workflow.profiler import END, START, WorkflowProfiler
from pythia.workflow.registry import parse_topology

TRUTH = {START: {"planner": 1.0}, "planner": {"coder": 0.7, "reviewer": 0.3}, "coder": {"reviewer": 1.0},
         "reviewer": {"coder": 0.4, END: 0.6}}


def simulate(profiler: WorkflowProfiler, jobs: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    t = 0.0
    for j in range(jobs):
        state, prompt = START, 100
        while True:
            options = TRUTH[state]
            state = str(rng.choice(list(options), p=list(options.values())))
            if state == END:
                profiler.end_job(f"job-{j}")
                break
            profiler.on_request("review", f"job-{j}", state, prompt, t)
            out = {"planner": 50, "coder": 200, "reviewer": 30}[state]
            t += 1.0
            profiler.on_finish("review", f"job-{j}", state, out, t, 1.0)
            prompt += out + 10
            t += 0.5  # tool gap


def test_learned_transitions_converge_to_the_truth():
    profiler = WorkflowProfiler()
    simulate(profiler, 200)
    learned = profiler.describe("review")["transitions"]
    for src, row in TRUTH.items():
        for dst, p in row.items():
            assert abs(learned[src].get(dst, 0.0) - p) <= 0.05, (src, dst, learned[src])


def test_statistics_and_predictions():
    profiler = WorkflowProfiler()
    simulate(profiler, 100)
    info = profiler.describe("review")
    assert info["jobs_seen"] == 100 and info["live_jobs"] == 0
    assert info["agents"]["coder"]["output_tokens"]["p99"] == pytest.approx(200)
    assert info["agents"]["planner"]["gap_after_s"]["median"] == pytest.approx(0.5)
    assert profiler.p99_output_tokens("review", "reviewer") == pytest.approx(30)
    # From the truth: planner once, reviewer 1/0.6 times, coder 0.7 + 0.4 * 1/0.6 times: 4.03 calls.
    assert info["expected_calls_per_job"] == pytest.approx(1 + 1 / 0.6 + 0.7 + 0.4 / 0.6, rel=0.1)


def test_remaining_calls_of_a_registered_chain_before_any_traffic():
    profiler = WorkflowProfiler()
    profiler.register(parse_topology({"type": "chain", "agents": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                                      "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}))
    profiler.on_request("chain", "j1", "a", 10, 0.0)
    assert profiler.remaining_calls("j1") == pytest.approx(2.0)
    profiler.on_finish("chain", "j1", "a", 5, 1.0)
    profiler.on_request("chain", "j1", "b", 20, 2.0)
    assert profiler.remaining_calls("j1") == pytest.approx(1.0)
    assert profiler.end_job("j1") and not profiler.end_job("j1")
    assert profiler.remaining_calls("j1") == 0.0


@pytest.mark.parametrize("body,message", [
    ({"agents": [{"name": "a"}]}, "type is required"),
    ({"type": "t", "agents": [{"name": "a"}, {"name": "a"}]}, "duplicate agent name(s): a"),
    ({"type": "t", "agents": [{"name": "a"}], "edges": [{"from": "a", "to": "b"}]}, "unknown agent 'b'"),
    ({"type": "t", "agents": [{"name": "a"}, {"name": "b"}],
      "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}, "unbounded cycle a -> b -> a"),
    ({"type": "t", "agents": [{"name": "a", "output_tokens": "many"}]}, "wrong type"),
    ({"type": "t", "agents": [{"name": "a"}], "edges": [{"from": "a", "to": "a", "max_repeats": 0}]}, "max_repeats"),
])
def test_invalid_topologies_are_rejected_by_name(body, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_topology(body)


def test_null_lists_are_empty_ones():
    """Once a TypeError, and a 500 on POST /v1/workflows (the route's model now refuses nulls too)."""
    topo = parse_topology({"type": "t", "agents": None, "edges": None})
    assert topo.agents == () and topo.edges == ()
    agent = parse_topology({"type": "t", "agents": [{"name": "a", "tools": None, "system_prompt": None}]}).agents[0]
    assert agent.tools == () and agent.system_prompt == ""


def test_bounded_loops_are_accepted():
    topo = parse_topology({"type": "t", "agents": [{"name": "a"}, {"name": "b"}],
                           "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a", "max_repeats": 3}]})
    assert topo.to_json()["edges"][1] == {"from": "b", "to": "a", "max_repeats": 3}


def test_remaining_work_shrinks_as_a_job_advances():
    profiler = WorkflowProfiler()
    simulate(profiler, 100)
    assert profiler.remaining_work_tokens("unknown") is None
    profiler.on_request("review", "live", "planner", 100, 0.0)
    after_planner = profiler.remaining_work_tokens("live")
    profiler.on_finish("review", "live", "planner", 50, 1.0)
    profiler.on_request("review", "live", "coder", 160, 1.5)
    profiler.on_finish("review", "live", "coder", 200, 2.5)
    profiler.on_request("review", "live", "reviewer", 370, 3.0)
    after_reviewer = profiler.remaining_work_tokens("live")
    assert after_planner > after_reviewer > 0
    profiler.end_job("live")
    assert profiler.remaining_work_tokens("live") == 0.0


def test_a_loop_has_unknown_length_until_a_job_ends_then_each_agent_is_shrunk_toward_the_type():
    profiler = WorkflowProfiler()
    for i in range(30):
        profiler.on_request("loop", "j0", "x", 10, 2.0 * i)
        profiler.on_finish("loop", "j0", "x", 5, 2.0 * i + 1)
    # No job of the type has ended: an infinite expectation would swamp every other term.
    assert profiler.remaining_work_tokens("j0") is None
    assert profiler.describe("loop")["expected_calls_per_job"] is None
    profiler.end_job("j0")  # x: 29 loops and 1 end
    for i in range(10):
        profiler.on_request("loop", "j1", "y", 10, 100.0 + 2 * i)  # y: 9 loops, no end seen yet
        profiler.on_finish("loop", "j1", "y", 5, 101.0 + 2 * i)
    # y's END probability: 0 observed in 9, pulled toward the type's 1 in 39 with 20 pseudo-observations.
    p_end = (20 / 39) / (9 + 20)
    assert profiler.remaining_calls("j1") == pytest.approx(1 / p_end - 1)
    assert profiler.describe("loop")["transitions"]["y"] == {"y": 1.0}, "reported transitions stay empirical"


def test_ended_jobs_lengths_predict_the_rest_of_an_unregistered_job_given_its_age():
    profiler = WorkflowProfiler()
    for j, length in enumerate([2, 4, 6, 8, 10]):
        for i in range(length):
            profiler.on_request("loop", f"done-{j}", "x", 10, float(i))
            profiler.on_finish("loop", f"done-{j}", "x", 5, i + 0.5)
        profiler.end_job(f"done-{j}")
    for i in range(3):
        profiler.on_request("loop", "live", "x", 10, 100.0 + i)
        profiler.on_finish("loop", "live", "x", 5, 100.5 + i)
    assert profiler.remaining_calls("live") == pytest.approx((4 + 6 + 8 + 10) / 4 - 3)
    for i in range(3, 11):
        profiler.on_request("loop", "live", "x", 10, 100.0 + i)
    # Longer than every ended job: the automaton's estimate (x ends 5 times in 30 + 8 pending).
    assert profiler.remaining_calls("live") == pytest.approx(profiler.profile("loop").expected_remaining_calls("x"))


def test_samples_keep_the_last_window_and_match_numpy():
    from pythia.workflow.profiler import SAMPLES_KEPT, Samples

    rng = np.random.default_rng(3)
    samples = Samples()
    drawn = rng.lognormal(0.0, 1.0, 3 * SAMPLES_KEPT + 7)
    for v in drawn:
        samples.add(float(v))
    window = drawn[-SAMPLES_KEPT:]
    assert samples.count == len(drawn) and samples.mean() == pytest.approx(window.mean(), rel=1e-12)
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        assert samples.quantile(q) == pytest.approx(np.quantile(window, q), rel=1e-12)
    x = float(np.median(window))
    assert samples.mean_excess(x) == pytest.approx(window[window > x].mean() - x, rel=1e-12)
    assert samples.mean_excess(float(window.max())) is None


def test_the_automaton_is_rederived_on_a_new_edge_or_after_the_counts_grow_not_on_every_call():
    profiler = WorkflowProfiler()
    simulate(profiler, 300)
    profile = profiler.profile("review")
    before = profile.transition_probs()
    profile.observe("planner", "coder")  # a known edge, one of ~1,300 observations: no solve
    assert profile.transition_probs() is before
    for _ in range(40):  # > REDERIVE_GROWTH of the counts
        profile.observe("planner", "coder")
    grown = profile.transition_probs()
    assert grown is not before and grown["planner"]["coder"] > before["planner"]["coder"]
    profile.observe("planner", "planner")  # an edge never seen: derived at once
    assert profile.transition_probs()["planner"]["planner"] > 0.0

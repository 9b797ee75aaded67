"""pythia.lang: the two example workflows run against a live server, tagged, and are learned."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pythia.lang import PythiaEndpoint, Workflow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_planner_coders_reviewer_runs_and_the_server_learns_its_automaton(server):
    example = load_example("planner_coders_reviewer")
    endpoint = PythiaEndpoint(server.url, chat_template_name="chatml")
    wf = example.build_workflow(max_tokens=8)
    for _ in range(2):
        assert wf.run(example.job, endpoint, task="Add two numbers.") in ("yes", "no")
    profile = server.get("/v1/workflows/planner-coders-reviewer").json()
    assert profile["registered"]["edges"] == [{"from": "planner", "to": "coder", "max_repeats": None},
                                              {"from": "coder", "to": "reviewer", "max_repeats": None},
                                              {"from": "reviewer", "to": "coder", "max_repeats": 1}]
    counts = profile["transition_counts"]
    assert counts["<start>"] == {"planner": 2}
    assert counts["planner"] == {"coder": 2}
    assert counts["coder"]["reviewer"] == 2
    assert counts["reviewer"]["<end>"] == 2
    # The profiler counts requests: a DSL select is one prefix request plus one per choice, so
    # each reviewer invocation is 3 requests (2 reviewer -> reviewer transitions).
    assert counts["reviewer"]["reviewer"] == 4
    assert profile["agents"]["coder"]["calls"] == 4 and profile["live_jobs"] == 0


def test_coding_assistant_loop_is_tagged_per_call(server):
    example = load_example("coding_assistant")
    endpoint = PythiaEndpoint(server.url, chat_template_name="chatml")
    tools = example.build_workflow(max_tokens=4).run(example.job, endpoint, task="fix parse()", max_turns=3)
    assert 1 <= len(tools) <= 3
    profile = server.get("/v1/workflows/coding-assistant").json()
    # Each invocation: a select over 3 tools (1 + 3 requests) and a gen (1 request).
    assert profile["agents"]["assistant"]["calls"] == 5 * len(tools)
    assert profile["jobs_seen"] == 1


def test_undeclared_agent_and_bad_tags_are_errors(server):
    wf = Workflow("empty")
    endpoint = PythiaEndpoint(server.url)
    with pytest.raises(ValueError, match="no agent 'ghost'"):
        wf.run(lambda ctx: ctx.call("ghost"), endpoint, register=False)
    with pytest.raises(TypeError, match="unknown workflow tag"):
        endpoint.bind(team="x")

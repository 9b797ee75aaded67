"""Workflow routes on a live server: registration, validation, the learned automaton, job end."""

from __future__ import annotations

TOPOLOGY = {
    "type": "review-loop",
    "agents": [{"name": "planner", "system_prompt": "You plan.", "output_tokens": 4},
               {"name": "coder", "tools": ["run_tests"]}, {"name": "reviewer", "long_context": True}],
    "edges": [{"from": "planner", "to": "coder"}, {"from": "coder", "to": "reviewer"},
              {"from": "reviewer", "to": "coder", "max_repeats": 2}],
}


def call(server, job: str, agent: str) -> None:
    r = server.post("/generate", json={"text": f"{agent} step for {job}", "sampling_params": {"max_new_tokens": 2},
                                       "workflow": {"type": "review-loop", "id": job, "agent": agent}})
    assert r.status_code == 200, r.text


def test_register_run_and_read_the_learned_profile(server):
    r = server.post("/v1/workflows", json=TOPOLOGY)
    assert r.status_code == 200 and r.json()["registered"]
    tracked = server.stats()["workflow_jobs_tracked"]
    for i in range(3):
        job = f"review-job-{i}"
        for agent in ["planner", "coder", "reviewer"] + (["coder", "reviewer"] if i == 0 else []):
            call(server, job, agent)
        assert server.post(f"/v1/workflows/jobs/{job}/end").json() == {"job": job, "ended": True}
    profile = server.get("/v1/workflows/review-loop").json()
    assert profile["registered"]["edges"][2]["max_repeats"] == 2
    assert profile["jobs_seen"] == 3 and profile["live_jobs"] == 0
    counts = profile["transition_counts"]
    assert counts["<start>"] == {"planner": 3}
    assert counts["reviewer"] == {"coder": 1, "<end>": 3}
    # Learned counts plus one pseudo-count per registered edge.
    assert abs(profile["transitions"]["reviewer"]["coder"] - 2 / 5) < 1e-9
    assert profile["agents"]["coder"]["calls"] == 4
    assert profile["agents"]["coder"]["output_tokens"]["p99"] == 2
    assert server.stats()["workflow_jobs_tracked"] == tracked, "ended jobs are forgotten"
    listed = server.get("/v1/workflows").json()["workflows"]
    assert {"type": "review-loop", "registered": True, "jobs_seen": 3} in listed


def test_invalid_topology_is_a_400_naming_the_problem(server):
    bad = {"type": "loop", "agents": [{"name": "a"}, {"name": "b"}],
           "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}
    r = server.post("/v1/workflows", json=bad)
    assert r.status_code == 400 and "unbounded cycle" in r.json()["error"]["message"]
    r = server.post("/v1/workflows", json={"type": "x", "agents": [{"name": "a"}], "edges": [{"from": "a", "to": "z"}]})
    assert r.status_code == 400 and "unknown agent 'z'" in r.json()["error"]["message"]


def test_unknown_type_and_job_are_404(server):
    assert server.get("/v1/workflows/never-registered").status_code == 404
    assert server.post("/v1/workflows/jobs/never-seen/end").status_code == 404

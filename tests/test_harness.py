"""The replay harness against a live tiny-model server: it completes, and its accounting holds."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness.configs import CLAIRVOYANT, CONFIGS, server_flags
from benchmarks.harness.replay import Replayer
from benchmarks.harness.report import summarize
from benchmarks.workloads import GENERATORS, save_workload
from pythia.testing.live_server import LiveServer

# run.py as its usage says: a module, from the repository root.
ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, "-m", "benchmarks.run"]


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    from pythia.models.tiny_model import tiny_model_path

    live = LiveServer("--model-path", str(tiny_model_path()), *server_flags("sglang"),
                      log_path=tmp_path_factory.mktemp("tiny") / "server.log")
    yield live
    live.close()


def test_replay_honours_dependencies_gaps_and_arrivals(tiny_server):
    workload = GENERATORS["multi-agent-dag"](scale="tiny", seed=0, num_jobs=4, rate=2.0)
    vocab = tiny_server.get("/get_model_info").json()["vocab_size"]
    replayer = Replayer(tiny_server.url, workload, vocab)
    asyncio.run(replayer.run())
    assert len(replayer.jobs) == 4 and len(replayer.calls) == workload.num_calls
    by_call = {(c.job, c.call): c for c in replayer.calls}
    for job in workload.jobs:
        record = next(r for r in replayer.jobs if r.job == job.id)
        calls = [by_call[job.id, c.id] for c in job.calls]
        # JCT runs from the job's arrival to its last call's finish.
        assert record.finished_s == max(c.finished_s for c in calls)
        assert record.jct_s == pytest.approx(record.finished_s - job.arrival_s)
        assert calls[0].ready_s >= job.arrival_s - 0.01
        for spec, call in zip(job.calls, calls):
            deps = [by_call[job.id, d] for d in spec.all_deps()]
            assert all(call.ready_s >= d.finished_s + spec.gap_s - 0.01 for d in deps), spec.id
            assert call.ready_s <= call.first_token_s <= call.finished_s
            assert call.completion_tokens == spec.output_tokens
    summary = summarize(replayer.calls, replayer.jobs, tiny_server.stats())
    assert summary["hit_rate"] > 0, "agents share system prompts across jobs"
    assert summary["jct_p95_s"] >= summary["jct_mean_s"] * 0.5


def test_workflow_tags_are_sent_unless_untagged(tiny_server):
    workload = GENERATORS["peer"](scale="tiny", seed=1, num_jobs=2, rate=5.0)
    vocab = tiny_server.get("/get_model_info").json()["vocab_size"]
    keys = ("workflow_types_seen", "workflow_jobs_seen", "workflow_agents_seen")
    before = {k: tiny_server.stats()[k] for k in keys}
    asyncio.run(Replayer(tiny_server.url, workload, vocab, tagged=False).run())
    assert {k: tiny_server.stats()[k] for k in keys} == before
    asyncio.run(Replayer(tiny_server.url, workload, vocab, tagged=True).run())
    assert tiny_server.stats()["workflow_types_seen"] == before["workflow_types_seen"] + 1  # "peer" is new here


def test_run_py_end_to_end(tmp_path):
    out = tmp_path / "out"
    cmd = [*RUN, "--workload", "peer", "--scale", "tiny", "--num-jobs", "3",
           "--rate", "5", "--configs", "vllm,sglang", "--model", "tiny", "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RESULT jct_ratio sglang" in proc.stdout
    for config in ("vllm", "sglang"):
        assert f"RESULT mean_jct {config} " in proc.stdout and f"RESULT p95_jct {config} " in proc.stdout
    report = (out / "report.md").read_text()
    assert "| mean JCT (s) |" in report and "jct_cdf.png" in report
    for name in ("jct_cdf.png", "throughput.png", "gantt.png", "calls.jsonl", "jobs.jsonl", "workload.jsonl"):
        assert (out / name).stat().st_size > 0, name


def test_run_py_capacity_reports_each_configs_probes(tmp_path):
    out = tmp_path / "out"
    cmd = [*RUN, "--workload", "peer", "--scale", "tiny", "--num-jobs", "2",
           "--rate", "4", "--configs", "vllm,sglang", "--model", "tiny", "--out", str(out), "--no-progress",
           "--capacity", "--max-probes", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "capacity.json").read_text())
    assert result["objective_s"] == pytest.approx(3 * result["unloaded_s"])
    for config in ("vllm", "sglang"):
        probes = result["configs"][config]["probes"]
        assert len(probes) == 2 and probes[0]["rate"] == 4.0
        assert all(p["met"] == (p["jct_p95_s"] <= result["objective_s"]) for p in probes)
        met = [p["rate"] for p in probes if p["met"]]
        assert result["configs"][config]["max_rate"] == (max(met) if met else None)
        assert result["configs"][config]["bracketed"] == (not all(p["met"] for p in probes))
    assert "| sglang |" in (out / "capacity.md").read_text()


def test_an_unknown_config_is_an_error_naming_the_known_ones(tmp_path):
    cmd = [*RUN, "--workload", "peer", "--configs", "vllm,sglang-fast", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0
    assert "unknown config 'sglang-fast'" in proc.stderr and "continuum" in proc.stderr


@pytest.mark.parametrize("config", [c for c in CONFIGS if c not in CLAIRVOYANT])  # the rest need the future
def test_every_config_serves_a_tagged_dag_under_memory_pressure_without_leaks(config, tmp_path):
    from pythia.models.tiny_model import tiny_model_path

    # A KV pool a few requests wide: the run must evict, and the policies' decisions get exercised.
    live = LiveServer("--model-path", str(tiny_model_path()), *server_flags(config), "--max-total-tokens", "1024",
                      "--page-size", "8", log_path=tmp_path / "server.log")
    try:
        workload = GENERATORS["multi-agent-dag"](scale="tiny", seed=3, num_jobs=6, rate=4.0)
        replayer = Replayer(live.url, workload, live.get("/get_model_info").json()["vocab_size"])
        asyncio.run(replayer.run())
        assert len(replayer.calls) == workload.num_calls
        assert all(c.completion_tokens == s.output_tokens for job in workload.jobs for s in job.calls
                   for c in replayer.calls if (c.job, c.call) == (job.id, s.id))
        stats = live.stats()
        assert stats["num_evicted_pages"] > 0, stats
        assert stats["workflow_jobs_seen"] == 6
    finally:
        live.close()


def test_run_py_replays_a_saved_workload_only_at_its_saved_arrivals(tmp_path):
    path = tmp_path / "workload.jsonl"
    save_workload(GENERATORS["peer"](scale="tiny", num_jobs=2), path)
    proc = subprocess.run([*RUN, "--workload-file", str(path), "--sweep", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "--workload-file replays the saved arrivals" in proc.stderr

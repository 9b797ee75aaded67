"""The simulator: the real core and tracker on a virtual clock, its cost models and its CLI."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.report import result_lines, summarize
from benchmarks.workloads import build_workload
from pythia.sim.replay import merged_stats, simulate
from pythia.sim.routing import PrefixIndex, cache_aware, page_hashes, round_robin
from pythia.sim.cost_model import BatchShape
from pythia.sim.cost_models import COST_MODEL_NAMES, cost_model
from pythia.sim.cost_models.fitted import FittedCost
from pythia.sim.cost_models.roofline import H100_LLAMA3_8B, LLAMA3_8B
from pythia.sim.fit_cost import merge_runs, nonnegative_fit

ROOT = Path(__file__).resolve().parents[1]
H100 = H100_LLAMA3_8B
SMALL_POOL = "--max-total-tokens 1024"


def figures(replay, engines) -> dict:
    return summarize(replay.calls, replay.jobs, merged_stats(engines))


# ---------------------------------------------------------------- cost models

def test_the_simulator_runs_without_torch_or_a_model():
    code = ("import sys, pythia.sim.__main__; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers') or m.startswith(("
            "'pythia.managers', 'pythia.model_executor', 'pythia.entrypoints.http_server'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_plans_one_token_entries_cost_as_decodes_and_the_rest_as_prefill_chunks():
    shape = BatchShape.from_plan(np.array([40, 7, 0, 96], np.int32), np.array([1, 1, 64, 32], np.int32))
    assert shape.decode_contexts.tolist() == [41, 8]
    assert shape.prefill_lens.tolist() == [64, 32] and shape.prefill_starts.tolist() == [0, 96]


def test_the_fitted_form_pays_one_fixed_cost_in_a_mixed_step():
    model = FittedCost("f", "test", prefill=(0.010, 1e-4, 1e-7, 2e-6), decode=(0.004, 1e-6, 2e-3))
    prefill = BatchShape(np.array([100]), np.array([50]), np.array([], np.int64))
    decode = BatchShape(np.array([], np.int64), np.array([], np.int64), np.array([300, 500]))
    mixed = BatchShape(prefill.prefill_lens, prefill.prefill_starts, decode.decode_contexts)
    # The chunk after 50 cached positions: its attention pairs and one read of that context.
    assert model.step_s(prefill) == pytest.approx(0.010 + 1e-4 * 100 + 1e-7 * 100 * 150 + 2e-6 * 50)
    assert model.step_s(decode) == pytest.approx(0.004 + 1e-6 * 800 + 2e-3 * 2)
    assert model.step_s(mixed) == pytest.approx(model.step_s(prefill) + model.step_s(decode) - 0.004)


def test_the_roofline_is_bandwidth_bound_for_decode_and_compute_bound_for_long_prefill():
    assert LLAMA3_8B.kv_bytes_per_token == 128 * 1024
    one = BatchShape(np.array([], np.int64), np.array([], np.int64), np.array([1000]))
    weights_and_kv = 16e9 + 128 * 1024 * 1000
    assert H100.step_s(one) == pytest.approx(0.002 + weights_and_kv / (3.35e12 * 0.8))
    chunk = BatchShape(np.array([4096]), np.array([0]), np.array([], np.int64))
    flops = 2 * 8.03e9 * 4096 + 4 * 32 * 32 * 128 * (4096 * 4097 / 2)
    assert H100.step_s(chunk) == pytest.approx(0.002 + flops / (989.4e12 * 0.6))
    # The H200's faster HBM helps decode only.
    h200 = cost_model("h200-llama3-8b")
    assert h200.step_s(one) < H100.step_s(one) and h200.step_s(chunk) == pytest.approx(H100.step_s(chunk))
    assert H100.transfer_s(1000) == pytest.approx(1000 * 128 * 1024 / 50e9)
    assert H100.kv_pool_tokens() == int((72e9 - 16e9) // (128 * 1024))


def test_the_cpu_fitted_model_loads_with_its_sources_and_refuses_page_transfers():
    model = cost_model("cpu-fitted")
    assert "measured" in model.description and all(c >= 0 for c in model.prefill + model.decode)
    small = BatchShape(np.array([16]), np.array([0]), np.array([], np.int64))
    large = BatchShape(np.array([512]), np.array([0]), np.array([], np.int64))
    assert 0 < model.step_s(small) < model.step_s(large)
    with pytest.raises(ValueError, match="no host-link figure"):
        model.transfer_s(16)
    with pytest.raises(ValueError, match="unknown cost model 'a100'.*cpu-fitted"):
        cost_model("a100")
    assert {"cpu-fitted", "h100-llama3-8b", "h200-llama3-8b"} <= set(COST_MODEL_NAMES)


def test_a_gpu_calibration_profile_fits_into_a_cost_model_by_the_same_command(tmp_path):
    # The calibration's CPU run on a toy shape: the script a lent GPU runs, end to end.
    profile, fitted = tmp_path / "profile.jsonl", tmp_path / "fitted.json"
    cal = subprocess.run([sys.executable, "-m", "benchmarks.gpu.calibrate", "--shape", "test-tiny", "--device", "cpu",
                          "--dtype", "float32", "--prefill-lens", "16,64,128", "--prefill-batches", "1,2",
                          "--decode-contexts", "32,128", "--decode-batches", "1,4", "--repeats", "2",
                          "--out", str(profile)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert cal.returncode == 0, cal.stderr[-2000:]
    rows = [line for line in profile.read_text().splitlines() if line]
    assert len(rows) == 6 + 4
    fit = subprocess.run([sys.executable, "-m", "pythia.sim.fit_cost", str(profile), "--out", str(fitted),
                          "--name", "toy-measured", "--statistic", "median"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert fit.returncode == 0, fit.stderr[-2000:]
    model = FittedCost.load(fitted)
    assert model.name == "toy-measured" and "random-weight model in plain torch on cpu" in model.description
    decode = BatchShape(np.array([], np.int64), np.array([], np.int64), np.array([128] * 4))
    assert model.step_s(decode) > 0


def test_the_rooflines_one_pass_step_cost_equals_its_split_one():
    rng = np.random.default_rng(1)
    for _ in range(20):
        num = rng.integers(1, 40)
        num_tokens = np.where(rng.random(num) < 0.6, 1, rng.integers(2, 3000, num)).astype(np.int32)
        start_pos = rng.integers(0, 30000, num).astype(np.int32)
        split = H100.step_s(BatchShape.from_plan(start_pos, num_tokens))
        assert H100.plan_step_s(start_pos, num_tokens) == pytest.approx(split, rel=1e-12)


def test_the_nonnegative_fit_recovers_coefficients_and_never_goes_negative():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(30), rng.uniform(10, 500, 30), rng.uniform(100, 1e5, 30)])
    assert nonnegative_fit(x, x @ [0.01, 2e-4, 3e-7]) == pytest.approx([0.01, 2e-4, 3e-7], rel=1e-6)
    w = nonnegative_fit(x, x @ [0.01, 2e-4, -3e-7])  # the best fit would want a negative cost
    assert (w >= 0).all() and w[2] == 0


def test_a_shape_measured_in_several_runs_counts_once():
    rows = [{"kind": "prefill", "lens": [64], "step_s": 0.30, "step_min_s": 0.20},
            {"kind": "prefill", "lens": [64], "step_s": 0.10, "step_min_s": 0.08},
            {"kind": "prefill", "lens": [64], "step_s": 0.50, "step_min_s": 0.40},
            {"kind": "decode", "contexts": [64], "step_s": 0.02, "step_min_s": 0.01}]
    assert merge_runs(rows, "min") == [{"kind": "prefill", "lens": [64], "step_s": 0.08},
                                       {"kind": "decode", "contexts": [64], "step_s": 0.01}]
    assert merge_runs(rows, "median")[0]["step_s"] == pytest.approx(0.30)
    # The same chunk after a cached prefix is another shape, and keeps its starts.
    after = {"kind": "prefill", "lens": [64], "starts": [1000], "step_s": 0.6, "step_min_s": 0.5}
    assert merge_runs(rows + [after], "min")[2] == {"kind": "prefill", "lens": [64], "starts": [1000], "step_s": 0.5}


# ---------------------------------------------------------------- the simulated engine

def test_the_same_seed_gives_the_same_figures_and_another_seed_others():
    runs = [simulate("pythia", build_workload("multi-agent-dag", "cpu", seed, num_jobs=8, rate=5.0), H100,
                     SMALL_POOL) for seed in (3, 3, 4)]
    (a, ea), (b, eb), (c, ec) = runs
    assert [asdict(r) for r in a.calls] == [asdict(r) for r in b.calls]
    assert figures(a, ea) == figures(b, eb)
    assert figures(a, ea)["jct_mean_s"] != figures(c, ec)["jct_mean_s"]


def test_every_config_drains_the_workload_with_the_core_intact():
    workload = build_workload("multi-agent-dag", "cpu", 0, num_jobs=12, rate=10.0)
    for config in ("vllm", "sglang", "autellix", "kvflow", "continuum", "pythia", "pythia-no-gate"):
        replay, (engine,) = simulate(config, workload, H100, SMALL_POOL)
        assert len(replay.jobs) == 12 and len(replay.calls) == workload.num_calls, config
        stats = engine.core.stats()
        assert (stats.num_waiting, stats.num_running, engine.has_work()) == (0, 0, False), config
        assert engine.tracker.stats()["workflow_jobs_tracked"] == 0, f"{config}: every ended job is forgotten"
        engine.check_integrity()


def test_configs_decide_differently_when_the_pool_is_small():
    workload = build_workload("multi-agent-dag", "cpu", 0, num_jobs=20, rate=20.0)
    decisions = {}
    for config in ("vllm", "sglang", "pythia"):
        f = figures(*simulate(config, workload, H100, SMALL_POOL))
        decisions[config] = (round(f["hit_rate"], 6), f["preemptions"], f["evicted_pages"])
    assert len(set(decisions.values())) == 3, decisions
    roomy = {config: figures(*simulate(config, workload, H100, "--max-total-tokens 65536"))["evicted_pages"]
             for config in ("vllm", "pythia")}
    assert roomy == {"vllm": 0, "pythia": 0}, "with room for everything nothing is evicted"


def test_calls_start_when_their_dependencies_finish_plus_their_gap():
    workload = build_workload("multi-agent-dag", "cpu", 1, num_jobs=6, rate=2.0)
    replay, _ = simulate("sglang", workload, H100)
    finished = {(r.job, r.call): r.finished_s for r in replay.calls}
    ready = {(r.job, r.call): r.ready_s for r in replay.calls}
    for job in workload.jobs:
        for call in job.calls:
            deps = call.all_deps()
            start = max(finished[(job.id, d)] for d in deps) if deps else job.arrival_s
            assert ready[(job.id, call.id)] == pytest.approx(start + call.gap_s, abs=1e-9)
    for r in replay.calls:
        assert r.ready_s <= r.first_token_s <= r.finished_s


def test_a_calls_prompt_extends_its_parents_context_so_the_cache_serves_it():
    workload = build_workload("coding-agent", "cpu", 0, num_jobs=3, rate=1.0)
    replay, (engine,) = simulate("sglang", workload, H100, "--max-total-tokens 65536")
    by_call = {(r.job, r.call): r for r in replay.calls}
    page = engine.args.page_size
    checked = 0
    for job in workload.jobs:
        for call in job.calls:
            if call.parent is None:
                continue
            parent, child = by_call[(job.id, call.parent)], by_call[(job.id, call.id)]
            # The parent's prompt and all its output but the last token have KV; whole pages are cached.
            kept = (parent.prompt_tokens + parent.completion_tokens - 1) // page * page
            assert child.cached_tokens >= min(kept, child.prompt_tokens - 1), (job.id, call.id)
            checked += 1
    assert checked > 20


def test_untagged_replays_send_no_workflow_metadata():
    workload = build_workload("peer", "tiny", 0, num_jobs=4, rate=5.0)
    _, (untagged,) = simulate("pythia", workload, H100, tagged=False)
    _, (tagged,) = simulate("pythia", workload, H100, tagged=True)
    assert untagged.tracker.stats()["workflow_jobs_seen"] == 0
    assert tagged.tracker.stats()["workflow_jobs_seen"] == 4


def test_result_lines_give_ratios_then_each_configs_mean_and_p95():
    summaries = {"vllm": {"jct_mean_s": 4.0, "jct_p95_s": 9.0}, "pythia": {"jct_mean_s": 2.0, "jct_p95_s": 5.5}}
    assert result_lines(summaries) == ["RESULT jct_ratio pythia 2.000", "RESULT mean_jct vllm 4.000",
                                       "RESULT p95_jct vllm 9.000", "RESULT mean_jct pythia 2.000",
                                       "RESULT p95_jct pythia 5.500"]


# ---------------------------------------------------------------- replicas

def test_round_robin_cycles_through_the_replicas():
    assert [round_robin(i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize("matched, loads, sizes, chosen", [
    ([0, 90, 10], [40, 3, 5], [9, 9, 9], 1),  # imbalanced (40 - 3 > 32): the least loaded, whatever matches
    ([0, 60, 80], [5, 6, 7], [9, 9, 9], 2),  # balanced, 80 of 100 tokens matched: the best match
    ([0, 30, 40], [5, 6, 7], [9, 2, 4], 1),  # balanced, no match over half the prompt: the smallest index
    ([50, 50, 0], [1, 1, 1], [5, 5, 5], 0),  # a tie on the match goes to the lower index (then 50 is not > 50)
])
def test_cache_aware_routes_by_load_then_prefix_then_room(matched, loads, sizes, chosen):
    assert cache_aware(matched, 100, loads, sizes) == chosen


def test_the_prefix_index_matches_whole_routed_pages():
    index = PrefixIndex(page_size=4)
    index.insert(page_hashes(list(range(10)), 4))  # pages [0..3], [4..7]; the last 2 tokens are no page
    assert index.matched(page_hashes(list(range(12)), 4)) == 8
    assert index.matched(page_hashes(list(range(16)), 4)) == 8
    assert index.matched(page_hashes([0, 1, 2, 3, 9, 9, 9, 9], 4)) == 4
    assert index.matched(page_hashes([1, 2, 3, 4], 4)) == 0 and len(index) == 2


def test_cache_aware_routing_keeps_a_jobs_context_on_one_replica():
    workload = build_workload("coding-agent", "cpu", 0, num_jobs=8, rate=2.0)
    pool = "--max-total-tokens 4096"
    rr_replay, rr = simulate("sglang", workload, H100, pool, replicas=2, router="round-robin")
    ca_replay, ca = simulate("sglang", workload, H100, pool, replicas=2, router="cache-aware")
    for replay, engines in ((rr_replay, rr), (ca_replay, ca)):
        assert len(replay.jobs) == 8 and all(e.core.stats().prompt_tokens > 0 for e in engines), "both replicas serve"
    # Round-robin splits a session's consecutive calls, so each replica re-prefills what the other computed.
    assert figures(ca_replay, ca)["hit_rate"] > figures(rr_replay, rr)["hit_rate"] + 0.1
    assert merged_stats(ca)["replicas"] == 2


# ---------------------------------------------------------------- the CLI

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pythia.sim", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_the_cli_writes_the_run_py_report_marked_simulated(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("--workload", "peer", "--scale", "tiny", "--num-jobs", "4", "--rate", "5",
                   "--configs", "vllm,pythia", "--cost-model", "cpu-fitted", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for config in ("vllm", "pythia"):
        assert f"RESULT mean_jct {config} " in proc.stdout and f"RESULT p95_jct {config} " in proc.stdout
    assert "RESULT jct_ratio pythia " in proc.stdout
    report = (out / "report.md").read_text()
    assert report.startswith("# SIMULATED: peer") and "cost model `cpu-fitted`" in report
    assert "| mean JCT (s) |" in report
    for name in ("jct_cdf.png", "throughput.png", "gantt.png", "workload.jsonl", "summary.json", "simulation.json"):
        assert (out / name).stat().st_size > 0, name
    assert len((out / "calls.jsonl").read_text().splitlines()) == 2 * 16  # 4 jobs x 4 calls, per config
    # The saved workload replays to the same figures.
    again = run_cli("--workload-file", str(out / "workload.jsonl"), "--configs", "vllm,pythia",
                    "--cost-model", "cpu-fitted", "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr[-2000:]
    results = lambda p: [line for line in p.stdout.splitlines() if line.startswith("RESULT")]  # noqa: E731
    assert results(again) == results(proc)


def test_the_cli_runs_replicas_behind_a_router(tmp_path):
    proc = run_cli("--workload", "peer", "--scale", "tiny", "--num-jobs", "4", "--rate", "5", "--configs", "sglang",
                   "--cost-model", "h100-llama3-8b", "--replicas", "2", "--router", "cache-aware",
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 replicas, cache-aware routing" in (tmp_path / "report.md").read_text()
    assert "RESULT mean_jct sglang " in proc.stdout


def test_the_cli_names_an_unknown_config(tmp_path):
    proc = run_cli("--workload", "peer", "--configs", "vllm,nope", "--cost-model", "h100-llama3-8b",
                   "--out", str(tmp_path))
    assert proc.returncode != 0 and "unknown config 'nope'" in proc.stderr

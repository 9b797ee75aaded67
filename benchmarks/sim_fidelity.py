"""The simulator against the real engine: one workload, the same configs, pool and seeds, replayed
over HTTP on the real engine (tiny model) and in the simulator, side by side.

    python -m benchmarks.sim_fidelity --workload peer --rate 11.39 --configs sglang,pythia --repeats 2 \\
        --server-args "--max-total-tokens 4096" --cost-model cpu-fitted --out benchmarks/results/fidelity-peer

The real side is `python -m benchmarks.run`'s comparison (repeats alternate the config order),
each server logging its steps (`--step-log`); the simulated side is `python -m pythia.sim` on the
saved workload, twice: with `--cost-model` (fitted once, at some other hour), and with a model
fitted to the steps each config's real runs logged (`run-fitted`: this machine's speed while
those runs ran, which on a shared machine drifts by 2x within the hour). The run-fitted figures
test the simulator - arrivals, gaps, batching, caching - given the step costs; the committed
model's test the cost model too. `fidelity.md` has, per config, the real repeats' median and
range beside both, and the decisions made (hit rate, preemptions, evictions), so a match of JCT
can be told from a match of behaviour. RESULT lines: `fidelity_mean_jct CONFIG SIM/REAL`,
`fidelity_p95_jct CONFIG SIM/REAL` (run-fitted), the same with `_committed` for `--cost-model`,
and `fidelity_order same|differs|unresolved` (run-fitted; unresolved: the orders differ, but the
real repeats' ranges overlap, so the real order is noise).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.harness.report import summarize, write_records
from benchmarks.harness.load import make_workload
from benchmarks.run import add_replay_args, compare, run_once, start_comparison, step_log_path
from benchmarks.workloads.model import Call, Job, Workload
from benchmarks.workloads import save_workload
from pythia.sim.cost_models import COST_MODEL_NAMES, cost_model
from pythia.sim.cost_models.fitted import FittedCost
from pythia.sim.fit_cost import fit_step_logs
from pythia.sim.replay import merged_stats, simulate

COMPARED = [("mean JCT (s)", "jct_mean_s"), ("P95 JCT (s)", "jct_p95_s"), ("mean TTFT (s)", "ttft_mean_s"),
            ("mean TPOT (s)", "tpot_mean_s"), ("prefix hit rate", "hit_rate"), ("preemptions", "preemptions"),
            ("evicted pages", "evicted_pages")]


def fidelity_rows(real: dict[str, dict], real_runs: dict[str, list[dict]], fitted: dict[str, dict],
                  committed: dict[str, dict], committed_name: str) -> list[str]:
    lines = [f"| config | metric | real (median) | real (range over repeats) | simulated, run-fitted | sim / real "
             f"| simulated, {committed_name} | sim / real |", "|---|---|---|---|---|---|---|---|"]
    for config in real:
        for label, key in COMPARED:
            values = [r[key] for r in real_runs[config]]
            r = real[config][key]
            cells = [f"{s[config][key]:.3f} | {s[config][key] / r:.3f}" if r else f"{s[config][key]:.3f} |"
                     for s in (fitted, committed)]
            lines.append(f"| {config} | {label} | {r:.3f} | {min(values):.3f}-{max(values):.3f} | {' | '.join(cells)} |")
    return lines


def logged_steps(out: Path, config: str, repeats: int, tag: str = "") -> list[dict]:
    paths = [step_log_path(out, config, r, tag) for r in range(repeats)]
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]


def run_fitted(out: Path, config: str, repeats: int, latency_s: float) -> FittedCost:
    """A cost model fitted to the steps `config`'s real runs logged, with the serving path's
    measured latency; written beside them."""
    steps = logged_steps(out, config, repeats)
    prefill, decode, quality = fit_step_logs(steps)
    (out / f"cost-{config}.json").write_text(json.dumps({"prefill": prefill, "decode": decode,
                                                        "request_latency_s": latency_s, "quality": quality}, indent=2))
    return FittedCost(f"run-fitted-{config}", f"fitted to the {len(steps)} steps {config}'s real runs logged "
                      f"(median error {quality['median_rel_error']:.0%}), {1000 * latency_s:.0f} ms serving latency",
                      tuple(prefill), tuple(decode), latency_s)


PROBES = 24


def serving_latency(args: argparse.Namespace, out: Path) -> float:
    """What a call costs outside the engine's steps - HTTP, the front, IPC, the engine loop - which
    the simulator adds per call: lone calls (a second apart, so none waits for another) over the
    replay's own HTTP path, each one's latency less the steps the engine logged for it. The median."""
    probe = Workload(name="latency-probe", scale=args.scale, seed=0, agents={"probe": 16},
                     jobs=[Job(id=f"probe-{i}", type="probe", arrival_s=float(i),
                               calls=[Call(id="c", agent="probe", output_tokens=4, fresh_tokens=32)])
                           for i in range(PROBES)])
    calls, _, _ = run_once("sglang", probe, args, out, 0, "-latency-probe", log_steps=True)
    steps = logged_steps(out, "sglang", 1, "-latency-probe")
    # The steps logged in order are the calls' in order: each call's 4 tokens take one prefill
    # step and 3 decode steps, nothing else running.
    per_call = 4
    if len(steps) != per_call * len(calls):
        raise RuntimeError(f"latency probe: {len(steps)} steps logged for {len(calls)} lone 4-token calls, "
                           f"not {per_call} each; the probe's calls overlapped")
    busy = [sum(s["step_s"] for s in steps[i * per_call:(i + 1) * per_call]) for i in range(len(calls))]
    ordered = sorted(calls, key=lambda c: c.ready_s)
    return float(np.median([c.finished_s - c.ready_s - b for c, b in zip(ordered, busy)]))


def order(summaries: dict[str, dict]) -> list[str]:
    return sorted(summaries, key=lambda c: summaries[c]["jct_mean_s"])


def resolved(real_runs: dict[str, list[dict]]) -> bool:
    """Whether the real repeats rank the configs at all: every two configs' ranges of mean JCT
    over the repeats are apart. Where they overlap the machine's noise, not the configs, decides
    the real order, and a simulator matching it or not says nothing."""
    ranges = sorted((min(r["jct_mean_s"] for r in runs), max(r["jct_mean_s"] for r in runs))
                    for runs in real_runs.values())
    return all(hi < lo for (_, hi), (lo, _) in zip(ranges, ranges[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sim_fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_args(parser)
    parser.add_argument("--cost-model", default="cpu-fitted", choices=COST_MODEL_NAMES)
    args = parser.parse_args()
    if args.model != "tiny":
        sys.exit("the simulator's prompts use the tiny model's vocabulary and cpu-fitted was fitted to it: --model tiny")
    configs, out, command = start_comparison(args, "benchmarks.sim_fidelity")
    workload = make_workload(args)
    save_workload(workload, out / "workload.jsonl")

    result = compare(args, configs, workload, out, log_steps=True)
    real, real_runs = result["summaries"], result["runs"]
    latency = serving_latency(args, out)
    print(f"serving latency outside the engine's steps: {1000 * latency:.1f} ms per call", flush=True)
    cost = cost_model(args.cost_model)
    sim, committed = {}, {}
    for config in configs:
        for figures, model, label in ((sim, run_fitted(out, config, args.repeats, latency), "simulated"),
                                      (committed, cost, f"simulated-{cost.name}")):
            replay, engines = simulate(config, workload, model, args.server_args, not args.untagged)
            write_records(out, f"{config}-{label}", 0, replay.calls, replay.jobs)
            figures[config] = summarize(replay.calls, replay.jobs, merged_stats(engines))
            print(f"{config} simulated ({model.name}): mean JCT {figures[config]['jct_mean_s']:.2f}s, "
                  f"P95 {figures[config]['jct_p95_s']:.2f}s", flush=True)

    same = order(real) == order(sim)
    verdict = "same" if same else ("differs" if resolved(real_runs) else "unresolved")
    lines = [f"# Simulator fidelity: {workload.name} ({workload.scale} scale, {len(workload.jobs)} jobs, "
             f"{workload.num_calls} calls, {'untagged' if args.untagged else 'tagged'})", "",
             f"Command: `{command}`", "",
             f"Real: the tiny model over HTTP, {args.repeats} repeat(s) per config, alternating order. "
             f"Simulated: run-fitted (each config's cost model fitted to the steps its real runs logged, "
             f"`cost-CONFIG.json`, plus {1000 * latency:.0f} ms per call of serving latency outside the steps, "
             f"measured by lone probe calls), and `{cost.name}` ({cost.description}), without it.", ""]
    lines += fidelity_rows(real, real_runs, sim, committed, cost.name)
    lines += ["", f"Order by mean JCT, real: {', '.join(order(real))}; simulated: {', '.join(order(sim))} "
              f"({verdict}" + ("" if verdict != "unresolved" else
              ": the real repeats' ranges overlap, so the machine's noise and not the configs set the real order")
              + ")."]
    (out / "fidelity.md").write_text("\n".join(lines) + "\n")
    (out / "fidelity.json").write_text(json.dumps({"real": real, "real_runs": real_runs, "simulated": sim,
                                                   "simulated_committed": committed, "cost_model": cost.name,
                                                   "command": command}, indent=2))
    print(f"report: {out / 'fidelity.md'}")
    for config in configs:
        for suffix, figures in (("", sim), ("_committed", committed)):
            print(f"RESULT fidelity_mean_jct{suffix} {config} "
                  f"{figures[config]['jct_mean_s'] / real[config]['jct_mean_s']:.3f}")
            print(f"RESULT fidelity_p95_jct{suffix} {config} "
                  f"{figures[config]['jct_p95_s'] / real[config]['jct_p95_s']:.3f}")
    print(f"RESULT fidelity_order {verdict}")


if __name__ == "__main__":
    main()

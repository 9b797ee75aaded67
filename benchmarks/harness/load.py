"""The load a comparison runs at: peak concurrency (a sweep of the baseline) and each config's
capacity (the highest rate within the service level), WORKLOADS.md's definitions.

Both take the measurement as a `Runner`, so the HTTP replay (`benchmarks/run.py`) and the
simulator (`python -m pythia.sim`) search the same way and write the same capacity report.
"""

from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness.capacity import max_rate
from benchmarks.harness.replay import CallRecord, JobRecord
from benchmarks.harness.report import summarize
from benchmarks.workloads import GENERATORS, build_workload, load_workload
from benchmarks.workloads.model import Workload

# (config, workload, tag) -> the run's calls, jobs and server counters; tag names the run's files.
Runner = Callable[[str, Workload, str], tuple[list[CallRecord], list[JobRecord], dict]]


def make_workload(args: argparse.Namespace, rate: float | None = None):
    if args.workload_file:
        return load_workload(args.workload_file)
    return build_workload(args.workload, args.scale, args.seed, args.num_jobs, rate if rate is not None else args.rate)


def default_rate(args: argparse.Namespace) -> float:
    rate = inspect.signature(GENERATORS[args.workload]).parameters["rate"].default
    return args.rate or rate or 1.0


def unloaded_jct(config: str, args: argparse.Namespace, rate: float, run: Runner) -> float:
    """The config's mean JCT at a light `rate`: the unloaded JCT the service level is a multiple of."""
    calls, jobs, _ = run(config, make_workload(args, rate), "-unloaded")
    return summarize(calls, jobs, {})["jct_mean_s"]


def sweep(args: argparse.Namespace, run: Runner) -> float:
    """Peak concurrency (WORKLOADS.md): the arrival rate where the first config's P95 JCT is
    about 3x its unloaded JCT (its mean JCT at a quarter of the starting rate)."""
    config = args.configs.split(",")[0]
    rate = default_rate(args)
    unloaded = unloaded_jct(config, args, rate / 4, run)
    for _ in range(8):
        calls, jobs, _ = run(config, make_workload(args, rate), f"-sweep{rate:.3f}")
        p95 = summarize(calls, jobs, {})["jct_p95_s"]
        print(f"sweep: {rate:.3f} jobs/s -> P95 JCT {p95:.2f}s ({p95 / unloaded:.1f}x unloaded)", flush=True)
        if p95 >= 3 * unloaded:
            print(f"peak concurrency: {rate:.3f} jobs/s", flush=True)
            return rate
        rate *= 1.5
    rate /= 1.5
    print(f"peak concurrency not reached (more jobs would load the server longer); using {rate:.3f} jobs/s",
          flush=True)
    return rate


def capacity(args: argparse.Namespace, configs: list[str], out: Path, command: str, run: Runner, title: str) -> None:
    """Each config's highest arrival rate with P95 JCT within 3x the first config's unloaded mean JCT
    (the service level that defines peak concurrency in WORKLOADS.md), and its throughput there;
    `capacity.md` (headed `# Capacity: {title}`) and `capacity.json` in `out`."""
    start = default_rate(args)
    unloaded = unloaded_jct(configs[0], args, start / 4, run)
    objective = 3 * unloaded
    print(f"capacity: objective P95 JCT <= {objective:.2f}s (3x {configs[0]}'s unloaded {unloaded:.2f}s)", flush=True)
    found: dict[str, dict] = {}
    for config in configs:
        at_rate: dict[float, dict] = {}

        def p95_at(rate: float) -> float:
            calls, jobs, stats = run(config, make_workload(args, rate), f"-capacity{rate:.3f}")
            s = at_rate[rate] = summarize(calls, jobs, stats)
            print(f"capacity: {config} at {rate:.3f} jobs/s -> P95 JCT {s['jct_p95_s']:.2f}s, "
                  f"{s['throughput_tok_s']:.1f} tok/s, hit {s['hit_rate']:.1%}", flush=True)
            return s["jct_p95_s"]

        rate, probes = max_rate(p95_at, objective, start, max_probes=args.max_probes)
        # Unbracketed (no probe missed): the highest rate probed is only a lower bound.
        found[config] = {"max_rate": rate, "bracketed": any(not p.met for p in probes),
                         "at_max_rate": at_rate.get(rate),
                         "probes": [{"rate": p.rate, "met": p.met, **at_rate[p.rate]} for p in probes]}
    (out / "capacity.json").write_text(json.dumps({"objective_s": objective, "unloaded_s": unloaded,
                                                   "configs": found}, indent=2))
    base = found[configs[0]]["max_rate"] if found[configs[0]]["bracketed"] else None
    lines = [f"# Capacity: {title}", "",
             f"Command: `{command}`", "",
             f"Objective: P95 JCT at most {objective:.2f} s, 3x `{configs[0]}`'s unloaded mean JCT "
             f"({unloaded:.2f} s at {start / 4:.3f} jobs/s). Rates probed from {start:.3f} jobs/s by x1.5 steps, "
             "then up to two bisections; one run per rate; >= marks a rate that never missed (a lower bound).", "",
             "| config | max rate (jobs/s) | vs first | out tok/s there | jobs/min there | P95 JCT there (s) "
             "| hit rate there | rates probed (P95 s) |",
             "|---|---|---|---|---|---|---|---|"]
    for config, f in found.items():
        at, rate = f["at_max_rate"], f["max_rate"]
        probed = ", ".join(f"{p['rate']:.2f} ({p['jct_p95_s']:.1f}{'' if p['met'] else ' miss'})" for p in f["probes"])
        if rate is None:
            lines.append(f"| {config} | none met | | | | | | {probed} |")
            continue
        ratio = f"{rate / base:.2f}x" if base and f["bracketed"] else ""
        shown = f"{rate:.3f}" if f["bracketed"] else f">= {rate:.3f}"
        lines.append(f"| {config} | {shown} | {ratio} | {at['throughput_tok_s']:.1f} | {at['jobs_per_min']:.1f} | "
                     f"{at['jct_p95_s']:.2f} | {at['hit_rate']:.3f} | {probed} |")
    (out / "capacity.md").write_text("\n".join(lines) + "\n")
    print(f"report: {out / 'capacity.md'}")
    for config in configs[1:]:
        rate = found[config]["max_rate"]
        if base and rate and found[config]["bracketed"]:
            print(f"RESULT capacity_ratio {config} {rate / base:.3f}")

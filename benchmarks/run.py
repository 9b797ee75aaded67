"""Side-by-side comparison of server configurations on an agent workload.

    python -m benchmarks.run --workload coding-agent --scale cpu --configs vllm,sglang \\
        --repeats 2 --model tiny --out benchmarks/out/coding-agent

For each repeat, each config in turn (alternating, to spread the machine's noise): start a
server with that config's flags, wait for health, replay the workload over HTTP with real
concurrency, record every call and job, stop the server. Then a markdown report with ratios
against the first config, PNG plots, one `RESULT jct_ratio <config> <ratio>` line per
non-first config (first config's mean JCT / this config's; above 1 means faster), and
`RESULT mean_jct <config> <seconds>` and `RESULT p95_jct <config> <seconds>` for every config.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from benchmarks.harness.capacity import max_rate
from benchmarks.harness.configs import server_flags
from benchmarks.harness.replay import Replayer
from benchmarks.harness.report import (markdown, median_over_repeats, plot, result_lines, summarize,
                                      write_records)
from benchmarks.workloads import GENERATORS, build_workload, load_workload, save_workload
from pythia.testing.live_server import LiveServer


def model_flags(model: str) -> list[str]:
    if model == "default":
        return []
    if model == "tiny":
        from pythia.models.tiny_model import tiny_model_path

        return ["--model-path", str(tiny_model_path()), "--served-model-name", "tiny-llama"]
    return ["--model-path", model]


def make_workload(args: argparse.Namespace, rate: float | None = None):
    if args.workload_file:
        return load_workload(args.workload_file)
    return build_workload(args.workload, args.scale, args.seed, args.num_jobs, rate if rate is not None else args.rate)


def run_once(config: str, workload, args: argparse.Namespace, out: Path, repeat: int, tag: str = ""):
    flags = server_flags(config) + model_flags(args.model) + shlex.split(args.server_args)
    server = LiveServer(*flags, log_path=out / f"server-{config}{tag}-{repeat}.log")
    try:
        vocab = server.get("/get_model_info").json()["vocab_size"]
        bar = tqdm(total=workload.num_calls, desc=f"{config}{tag} #{repeat}", unit="call", leave=False,
                   disable=args.no_progress)
        replayer = Replayer(server.url, workload, vocab, tagged=not args.untagged, on_call_done=lambda: bar.update())
        asyncio.run(replayer.run())
        bar.close()
        stats = server.stats()
    except BaseException:
        server.stop()
        raise
    server.close()
    return replayer.calls, replayer.jobs, stats


def compare(args: argparse.Namespace, configs: list[str], workload, out: Path, tag: str = "") -> dict:
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    first_records = {}
    for repeat in range(args.repeats):
        # Odd repeats run the configs in reverse, so a machine drifting over the run biases none.
        for config in configs if repeat % 2 == 0 else configs[::-1]:
            calls, jobs, stats = run_once(config, workload, args, out, repeat, tag)
            write_records(out, config + tag, repeat, calls, jobs)
            runs[config].append(summarize(calls, jobs, stats))
            first_records.setdefault(config, (calls, jobs))
            s = runs[config][-1]
            print(f"{config}{tag} #{repeat}: mean JCT {s['jct_mean_s']:.2f}s, P95 {s['jct_p95_s']:.2f}s, "
                  f"{s['throughput_tok_s']:.1f} tok/s, hit {s['hit_rate']:.1%}", flush=True)
    summaries = {c: median_over_repeats(r) for c, r in runs.items()}
    return {"summaries": summaries, "records": first_records}


def default_rate(args: argparse.Namespace) -> float:
    rate = inspect.signature(GENERATORS[args.workload]).parameters["rate"].default
    return args.rate or rate or 1.0


def unloaded_jct(config: str, args: argparse.Namespace, out: Path, rate: float) -> float:
    """The config's mean JCT at a light `rate`: the unloaded JCT the service level is a multiple of."""
    calls, jobs, _ = run_once(config, make_workload(args, rate), args, out, 0, "-unloaded")
    return summarize(calls, jobs, {})["jct_mean_s"]


def sweep(args: argparse.Namespace, out: Path) -> float:
    """Peak concurrency (WORKLOADS.md): the arrival rate where the first config's P95 JCT is
    about 3x its unloaded JCT (its mean JCT at a quarter of the starting rate)."""
    config = args.configs.split(",")[0]
    rate = default_rate(args)
    unloaded = unloaded_jct(config, args, out, rate / 4)
    for _ in range(8):
        calls, jobs, _ = run_once(config, make_workload(args, rate), args, out, 0, f"-sweep{rate:.3f}")
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


def capacity(args: argparse.Namespace, configs: list[str], out: Path, command: str) -> None:
    """Each config's highest arrival rate with P95 JCT within 3x the first config's unloaded mean JCT
    (the service level that defines peak concurrency in WORKLOADS.md), and its throughput there."""
    start = default_rate(args)
    unloaded = unloaded_jct(configs[0], args, out, start / 4)
    objective = 3 * unloaded
    print(f"capacity: objective P95 JCT <= {objective:.2f}s (3x {configs[0]}'s unloaded {unloaded:.2f}s)", flush=True)
    found: dict[str, dict] = {}
    for config in configs:
        at_rate: dict[float, dict] = {}

        def p95_at(rate: float) -> float:
            calls, jobs, stats = run_once(config, make_workload(args, rate), args, out, 0, f"-capacity{rate:.3f}")
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
    lines = [f"# Capacity: {args.workload} ({args.scale} scale, model {args.model})", "",
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workload", choices=sorted(GENERATORS))
    source.add_argument("--workload-file", help="a workload JSONL (benchmarks/workloads/model.py's save_workload), "
                        "replayed as saved: its arrival times stay, so --rate, --sweep and --capacity do not apply")
    parser.add_argument("--scale", default="cpu", choices=["tiny", "cpu", "gpu"])
    parser.add_argument("--configs", default="vllm,sglang", help="comma-separated; the first is the baseline")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--model", default="tiny", help="tiny, default (SmolLM2) or a checkpoint path")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-jobs", type=int, default=None)
    parser.add_argument("--rate", type=float, default=None, help="job arrivals per second")
    parser.add_argument("--untagged", action="store_true", help="replay without workflow metadata")
    parser.add_argument("--sweep", action="store_true", help="find peak concurrency, then compare there and at half")
    parser.add_argument("--capacity", action="store_true",
                        help="each config's highest rate meeting the peak-concurrency service level (throughput)")
    parser.add_argument("--max-probes", type=int, default=12, help="--capacity: most rates tried per config (>= 1)")
    parser.add_argument("--server-args", default="", help="extra flags for every server")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    if args.workload_file and (args.sweep or args.capacity or args.rate is not None):
        sys.exit("--workload-file replays the saved arrivals: --rate, --sweep and --capacity need --workload")
    configs = args.configs.split(",")
    try:
        for c in configs:
            server_flags(c)
    except ValueError as e:
        sys.exit(str(e))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("calls.jsonl", "jobs.jsonl"):
        (out / name).unlink(missing_ok=True)
    command = "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.capacity:
        if args.max_probes < 1:
            sys.exit("--max-probes must be at least 1")
        capacity(args, configs, out, command)
        return

    rates = [args.rate]
    if args.sweep:
        peak = sweep(args, out)
        rates = [peak, peak / 2]
    sections, headline = [], None
    for i, rate in enumerate(rates):
        workload = make_workload(args, rate)
        tag = f"-rate{rate:.3f}" if args.sweep else ""
        save_workload(workload, out / f"workload{tag}.jsonl")
        result = compare(args, configs, workload, out, tag)
        plots = plot(out, result["records"]) if i == 0 else []
        title = (f"{workload.name} ({workload.scale} scale, {len(workload.jobs)} jobs, {workload.num_calls} calls, "
                 f"{'untagged' if args.untagged else 'tagged'}, model {args.model}"
                 + (f", {rate:.3f} jobs/s" if rate else "") + ")")
        sections.append(markdown(title, command, result["summaries"], plots))
        (out / f"summary{tag}.json").write_text(json.dumps(result["summaries"], indent=2))
        headline = headline or result["summaries"]
    (out / "report.md").write_text("\n".join(sections))
    print(f"report: {out / 'report.md'}")
    print("\n".join(result_lines(headline)))


if __name__ == "__main__":
    main()

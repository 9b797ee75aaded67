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
import json
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from benchmarks.harness.configs import host_tier_flags, server_flags
from benchmarks.harness.load import Runner, capacity, make_workload, sweep
from benchmarks.harness.replay import Replayer
from benchmarks.harness.report import (markdown, median_over_repeats, plot, result_lines, summarize,
                                      write_records)
from benchmarks.workloads import GENERATORS, save_workload
from pythia.testing.live_server import LiveServer


def model_flags(model: str) -> list[str]:
    if model == "default":
        return []
    if model == "tiny":
        from pythia.models.tiny_model import tiny_model_path

        return ["--model-path", str(tiny_model_path()), "--served-model-name", "tiny-llama"]
    return ["--model-path", model]


def step_log_path(out: Path, config: str, repeat: int, tag: str = "") -> Path:
    return out / f"steps-{config}{tag}-{repeat}.jsonl"


def run_once(config: str, workload, args: argparse.Namespace, out: Path, repeat: int, tag: str = "",
             log_steps: bool = False):
    """One server, one replay; with `log_steps` the engine logs its steps (`--step-log`) to
    `step_log_path`, for fitting the simulator's cost model to this run."""
    flags = server_flags(config) + model_flags(args.model) + host_tier_flags(config, shlex.split(args.server_args))
    if log_steps:
        path = step_log_path(out, config, repeat, tag)
        path.unlink(missing_ok=True)
        flags += ["--step-log", str(path)]
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


def runner(args: argparse.Namespace, out: Path) -> Runner:
    """run_once as the load searches call it: one run, repeat 0."""
    return lambda config, workload, tag: run_once(config, workload, args, out, 0, tag)


def compare(args: argparse.Namespace, configs: list[str], workload, out: Path, tag: str = "",
            log_steps: bool = False) -> dict:
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    first_records = {}
    for repeat in range(args.repeats):
        # Odd repeats run the configs in reverse, so a machine drifting over the run biases none.
        for config in configs if repeat % 2 == 0 else configs[::-1]:
            calls, jobs, stats = run_once(config, workload, args, out, repeat, tag, log_steps)
            write_records(out, config + tag, repeat, calls, jobs)
            runs[config].append(summarize(calls, jobs, stats))
            first_records.setdefault(config, (calls, jobs))
            s = runs[config][-1]
            print(f"{config}{tag} #{repeat}: mean JCT {s['jct_mean_s']:.2f}s, P95 {s['jct_p95_s']:.2f}s, "
                  f"{s['throughput_tok_s']:.1f} tok/s, hit {s['hit_rate']:.1%}", flush=True)
    summaries = {c: median_over_repeats(r) for c, r in runs.items()}
    return {"summaries": summaries, "records": first_records, "runs": runs}


def add_replay_args(parser: argparse.ArgumentParser) -> None:
    """The arguments of a side-by-side replay: the workload, the configs and the servers."""
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
    parser.add_argument("--server-args", default="", help="extra flags for every server")
    parser.add_argument("--no-progress", action="store_true")


def start_comparison(args: argparse.Namespace, module: str) -> tuple[list[str], Path, str]:
    """The configs (exits naming an unknown one), the output folder with no earlier records, and
    the command line as the report quotes it."""
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
    return configs, out, f"python -m {module} " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_args(parser)
    parser.add_argument("--sweep", action="store_true", help="find peak concurrency, then compare there and at half")
    parser.add_argument("--capacity", action="store_true",
                        help="each config's highest rate meeting the peak-concurrency service level (throughput)")
    parser.add_argument("--max-probes", type=int, default=12, help="--capacity: most rates tried per config (>= 1)")
    args = parser.parse_args()

    if args.workload_file and (args.sweep or args.capacity or args.rate is not None):
        sys.exit("--workload-file replays the saved arrivals: --rate, --sweep and --capacity need --workload")
    configs, out, command = start_comparison(args, "benchmarks.run")
    if args.capacity:
        if args.max_probes < 1:
            sys.exit("--max-probes must be at least 1")
        capacity(args, configs, out, command, runner(args, out),
                 f"{args.workload} ({args.scale} scale, model {args.model})")
        return

    rates = [args.rate]
    if args.sweep:
        peak = sweep(args, runner(args, out))
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

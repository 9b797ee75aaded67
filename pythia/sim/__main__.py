"""Side-by-side comparison of configurations on an agent workload, SIMULATED.

    python -m pythia.sim --workload coding-agent --scale cpu --configs vllm,pythia \\
        --cost-model cpu-fitted --out benchmarks/out/sim-coding-agent

The same workloads, configs, arrivals, dependencies and tool gaps as `python -m benchmarks.run`,
but every config runs in this process: the real `_core.Scheduler` and `WorkflowTracker` are
stepped on a virtual clock and each step takes what the cost model says. The report, records,
plots and `RESULT` lines are written by the same code as run.py's, and say that they are
simulated and with which cost model. The same arguments give the same figures. `--sweep` and
`--capacity` search the load as run.py's do (benchmarks/harness/load.py), on the virtual clock.

Two configs exist only here, as they read the workload's future: `pythia-true` (Pythia's policies
fed true values) and `oracle` (the core's strongest policies fed true values). With `pythia`,
`pythia-true` and `oracle` all run, `RESULT prediction_gap` and `RESULT policy_gap` lines and the
report split `pythia`'s distance from the bound into the two.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from benchmarks.harness.load import Runner, capacity, make_workload, sweep
from benchmarks.harness.report import markdown, plot, result_lines, summarize, write_records
from benchmarks.workloads import GENERATORS, save_workload
from pythia.models.tiny_model import VOCAB_SIZE
from pythia.sim.cost_models import COST_MODEL_NAMES, cost_model
from pythia.sim.gaps import gap_lines, gap_markdown
from pythia.sim.replay import merged_stats, sim_server_args, simulate
from pythia.sim.routing import ROUTERS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pythia.sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workload", choices=sorted(GENERATORS))
    source.add_argument("--workload-file", help="a workload JSONL (benchmarks/workloads/model.py's save_workload)")
    parser.add_argument("--scale", default="cpu", choices=["tiny", "cpu", "gpu"])
    parser.add_argument("--configs", default="vllm,sglang", help="comma-separated; the first is the baseline")
    parser.add_argument("--cost-model", required=True, choices=COST_MODEL_NAMES)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-jobs", type=int, default=None)
    parser.add_argument("--rate", type=float, default=None, help="job arrivals per second")
    parser.add_argument("--untagged", action="store_true", help="replay without workflow metadata")
    parser.add_argument("--server-args", default="", help="extra server flags for every config (e.g. the pool size)")
    parser.add_argument("--replicas", type=int, default=1, help="simulated engines behind one router")
    parser.add_argument("--router", default="round-robin", choices=ROUTERS, help="with --replicas > 1: routing rule")
    parser.add_argument("--sweep", action="store_true", help="find peak concurrency, then compare there and at half")
    parser.add_argument("--capacity", action="store_true",
                        help="each config's highest rate meeting the peak-concurrency service level")
    parser.add_argument("--max-probes", type=int, default=12, help="--capacity: most rates tried per config (>= 1)")
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE,
                        help="token ids are drawn below this (default: the tiny model's, as the HTTP replay uses)")
    args = parser.parse_args()

    configs = args.configs.split(",")
    if args.replicas < 1:
        sys.exit("--replicas must be at least 1")
    if args.workload_file and (args.sweep or args.capacity or args.rate is not None):
        sys.exit("--workload-file replays the saved arrivals: --rate, --sweep and --capacity need --workload")
    if args.max_probes < 1:
        sys.exit("--max-probes must be at least 1")
    try:
        for c in configs:
            sim_server_args(c, args.server_args)
    except ValueError as e:
        sys.exit(str(e))
    cost = cost_model(args.cost_model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("calls.jsonl", "jobs.jsonl"):
        (out / name).unlink(missing_ok=True)
    command = "python -m pythia.sim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run = sim_runner(args, cost)
    if args.capacity:
        capacity(args, configs, out, command, run, f"{args.workload} ({args.scale} scale, SIMULATED with cost model "
                 f"{cost.name})")
        return
    rates = [args.rate]
    if args.sweep:
        peak = sweep(args, run)
        rates = [peak, peak / 2]
    sections, headline, name = [], None, None
    for i, rate in enumerate(rates):
        tag = f"-rate{rate:.3f}" if args.sweep else ""
        workload = make_workload(args, rate)
        summaries = compare(args, configs, workload, cost, out, command, tag, run, with_plots=i == 0)
        sections.append((out / f"report{tag}.md").read_text())
        headline, name = headline or summaries, name or workload.name
    if args.sweep:  # the peak's report and the half's, in one
        (out / "report.md").write_text("\n".join(sections))
    print(f"report (simulated): {out / 'report.md'}")
    print("\n".join(result_lines(headline) + gap_lines(name, headline)))


def sim_runner(args: argparse.Namespace, cost) -> Runner:
    """One simulated run as the load searches and the comparison call it."""
    def run(config: str, workload, tag: str = ""):
        replay, replicas = simulate(config, workload, cost, args.server_args, not args.untagged, args.vocab_size,
                                    args.replicas, args.router)
        return replay.calls, replay.jobs, merged_stats(replicas)
    return run


def compare(args: argparse.Namespace, configs: list[str], workload, cost, out: Path, command: str, tag: str,
            run: Runner, with_plots: bool) -> dict:
    """Every config on `workload`: records, `report{tag}.md` (and the plots, `with_plots`) in `out`;
    the summaries."""
    save_workload(workload, out / f"workload{tag}.jsonl")
    note = f"SIMULATED with cost model `{cost.name}` ({cost.description}); no model ran."
    summaries, records, engines = {}, {}, {}
    for config in configs:
        calls, jobs, stats = run(config, workload, tag)
        write_records(out, config + tag, 0, calls, jobs)
        engines[config] = stats
        s = summaries[config] = summarize(calls, jobs, stats)
        records[config] = (calls, jobs)
        print(f"{config}{tag} (simulated, {cost.name}): mean JCT {s['jct_mean_s']:.2f}s, P95 {s['jct_p95_s']:.2f}s, "
              f"{s['throughput_tok_s']:.1f} tok/s, hit {s['hit_rate']:.1%}, {s['preemptions']:g} preemptions",
              flush=True)
    plots = plot(out, records, note=f"simulated ({cost.name})") if with_plots else []
    title = (f"SIMULATED: {workload.name} ({workload.scale} scale, {len(workload.jobs)} jobs, {workload.num_calls} "
             f"calls, {'untagged' if args.untagged else 'tagged'}, cost model {cost.name}"
             + (f", {args.replicas} replicas, {args.router} routing" if args.replicas > 1 else "") + ")")
    report = markdown(title, command, summaries, plots, note=note)
    bounds = gap_markdown(summaries)
    (out / f"report{tag}.md").write_text(report + ("\n" + bounds if bounds else ""))
    (out / f"summary{tag}.json").write_text(json.dumps(summaries, indent=2))
    (out / f"simulation{tag}.json").write_text(json.dumps({"simulated": True, "cost_model": cost.name,
                                                          "cost_model_description": cost.description,
                                                          "replicas": args.replicas, "router": args.router,
                                                          "engines": engines}, indent=2))
    return summaries


if __name__ == "__main__":
    main()

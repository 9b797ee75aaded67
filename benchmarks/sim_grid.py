"""Configs side by side over a grid of arrival rates and workload seeds, SIMULATED: whether one
run's ratio holds at the rates and seeds around it.

    python -m benchmarks.sim_grid --workload coding-agent --num-jobs 150 --rates 0.14,0.16875,0.2 \\
        --seeds 0,1,2 --configs sglang,pythia,pythia-no-gate

Past a session workload's knee the simulated server is close to bistable (it either keeps up or
thrashes), so a figure from one seed at one rate can be luck. One line per (rate, seed) with each
config's mean / P95 JCT and hit rate, then per config the median over the grid of its mean JCT
divided by the first config's (`RESULT grid_ratio CONFIG X`; below 1: faster than the first). Engine limits default to
sim_headline.sh's (an 80 GB GPU's pool).
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks.harness.configs import GPU_SERVER_ARGS
from benchmarks.harness.report import summarize
from benchmarks.workloads import GENERATORS, build_workload
from pythia.sim.cost_models import COST_MODEL_NAMES, cost_model
from pythia.sim.replay import merged_stats, simulate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sim_grid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", required=True, choices=sorted(GENERATORS))
    parser.add_argument("--scale", default="gpu")
    parser.add_argument("--num-jobs", type=int, default=150)
    parser.add_argument("--rates", required=True, help="comma-separated jobs/s")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--configs", required=True, help="comma-separated; ratios are against the first")
    parser.add_argument("--cost-model", default="h100-llama3-8b", choices=COST_MODEL_NAMES)
    parser.add_argument("--server-args", default=GPU_SERVER_ARGS)
    args = parser.parse_args()
    cost, configs = cost_model(args.cost_model), args.configs.split(",")
    print(f"SIMULATED: {args.workload} ({args.scale} scale, {args.num_jobs} jobs), cost model {cost.name}, "
          f"server args {args.server_args!r}")
    ratios: dict[str, list[float]] = {c: [] for c in configs}
    for rate in (float(r) for r in args.rates.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            workload = build_workload(args.workload, args.scale, seed, args.num_jobs, rate)
            cells, base = [], None
            for config in configs:
                replay, engines = simulate(config, workload, cost, args.server_args)
                s = summarize(replay.calls, replay.jobs, merged_stats(engines))
                base = base or s["jct_mean_s"]
                ratios[config].append(s["jct_mean_s"] / base)
                cells.append(f"{config} {s['jct_mean_s']:.1f} / {s['jct_p95_s']:.1f} s, hit {s['hit_rate']:.0%}")
            print(f"rate {rate:g} seed {seed}: " + " | ".join(cells), flush=True)
    for config in configs[1:]:
        print(f"{config} / {configs[0]} mean JCT over the grid: median {statistics.median(ratios[config]):.3f}, "
              f"range {min(ratios[config]):.3f}-{max(ratios[config]):.3f}")
        print(f"RESULT grid_ratio {config} {statistics.median(ratios[config]):.3f}")


if __name__ == "__main__":
    main()

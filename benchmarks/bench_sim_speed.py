"""How fast the simulator runs: simulated hours of the coding agent at GPU scale, with about
`--sessions` sessions in flight, per second of this machine's time.

    python -m benchmarks.bench_sim_speed --sessions 500 --hours 1 --replicas 8

The arrival rate comes from Little's law: `--sessions` / a session's mean duration, measured by a
pilot simulation of `--pilot-jobs` sessions at a light load. The run then simulates
rate x hours x 3600 sessions (config `--config`, cost model `--cost-model`, `--replicas` engines
behind `--router`), and reports its wall time, the steps it took, and the concurrency it actually
had (sessions in flight, averaged over the arrival window and over the whole run: above
`--sessions` means the engines fell behind and sessions stretched). Wall time covers everything the CLI would do but the report:
building prompts, the core's scheduling, the tracker, the cost model.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.harness.configs import GPU_SERVER_ARGS
from benchmarks.harness.report import summarize
from benchmarks.workloads import build_workload
from pythia.sim.cost_models import COST_MODEL_NAMES, cost_model
from pythia.sim.replay import merged_stats, simulate
from pythia.sim.routing import ROUTERS


def mean_in_flight(jobs, horizon_s: float) -> float:
    """Sessions in flight averaged over [0, horizon_s]: each job's overlap with the window, summed."""
    return sum(max(0.0, min(j.finished_s, horizon_s) - max(j.arrival_s, 0.0)) for j in jobs) / horizon_s


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sim_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=500, help="sessions in flight to aim for")
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours of arrivals")
    parser.add_argument("--config", default="pythia")
    parser.add_argument("--cost-model", default="h100-llama3-8b", choices=COST_MODEL_NAMES)
    parser.add_argument("--server-args", default=GPU_SERVER_ARGS, help="per engine (default: an 80 GB GPU's)")
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--router", default="cache-aware", choices=ROUTERS)
    parser.add_argument("--pilot-jobs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cost = cost_model(args.cost_model)

    def run(num_jobs: int, rate: float):
        workload = build_workload("coding-agent", "gpu", args.seed, num_jobs, rate)
        t0 = time.perf_counter()
        replay, engines = simulate(args.config, workload, cost, args.server_args, replicas=args.replicas,
                                   router=args.router)
        return replay, engines, time.perf_counter() - t0

    # The pilot: sessions spaced out enough that they rarely share an engine step.
    pilot, _, _ = run(args.pilot_jobs, 0.05 * args.replicas)
    duration = sum(j.jct_s for j in pilot.jobs) / len(pilot.jobs)
    rate = args.sessions / duration
    horizon = args.hours * 3600
    num_jobs = max(1, round(rate * horizon))
    print(f"pilot: a session lasts {duration:.1f} s unloaded -> {rate:.3f} sessions/s, {num_jobs} sessions "
          f"over {horizon:.0f} s", flush=True)

    replay, engines, wall = run(num_jobs, rate)
    stats = merged_stats(engines)
    s = summarize(replay.calls, replay.jobs, stats)
    simulated = max(j.finished_s for j in replay.jobs)
    in_flight = mean_in_flight(replay.jobs, horizon)
    overall = mean_in_flight(replay.jobs, simulated)
    print(f"simulated {simulated:.0f} s ({len(replay.jobs)} sessions, {len(replay.calls)} calls, "
          f"{stats['steps']} steps on {args.replicas} engines) in {wall:.1f} s of wall time: "
          f"{stats['steps'] / wall:.0f} steps/s, {simulated / wall:.1f} simulated s per wall s; "
          f"{in_flight:.0f} sessions in flight on average over the arrival window, {overall:.0f} over the whole "
          f"run; mean JCT "
          f"{s['jct_mean_s']:.1f} s, hit rate {s['hit_rate']:.1%}, {s['preemptions']:g} preemptions (SIMULATED, "
          f"{cost.name})")
    print(f"RESULT sim_wall_s {wall:.1f}")
    print(f"RESULT sim_simulated_s {simulated:.0f}")
    print(f"RESULT sim_steps_per_s {stats['steps'] / wall:.0f}")
    print(f"RESULT sim_sessions_in_flight {in_flight:.0f}")
    print(f"RESULT sim_sessions_in_flight_whole_run {overall:.0f}")


if __name__ == "__main__":
    main()

"""Which of Pythia's predictions its JCT depends on, SIMULATED: `pythia` fed the workload's truth
for some kinds of prediction and the profiler's for the rest.

    python -m benchmarks.sim_prediction_split --workload long-context-mix --num-jobs 150 --rate 0.075

`pythia` vs `pythia-true` (python -m pythia.sim) says how much prediction error costs in all; this
says which prediction it is. Each run replaces one set of the feed's calls with the truth
(`pythia/sim/true_feed.py`), the rest coming from the profiler (`pythia/workflow/feed.py`):
- `work`: the job's remaining work (`set_job_work`, read by the order);
- `job`: the job's next use, dead time and context (`set_job_forecast`, `end_job`; eviction and the gate);
- `agent`: each agent's next use (`set_agent_forecast`; eviction of shared prompts);
- `output`: each call's output length (admission's reservation).
`--gap-noise S` runs `job` again with each true gap (a job's next call less its last finish)
multiplied by exp(N(0, S^2)): how exact the next-use prediction must be to be worth having.
Prints one `RESULT split_jct` line per run. Cost model and engine limits as sim_headline.sh.
"""

from __future__ import annotations

import argparse
import math
import random
from typing import Any

from benchmarks.harness.report import summarize
from benchmarks.workloads import GENERATORS, build_workload
from pythia.sim.cost_models import COST_MODEL_NAMES, cost_model
from benchmarks.harness.configs import GPU_SERVER_ARGS
from pythia.sim.replay import build_replay, feed_future, merged_stats
from pythia.sim.true_feed import JobTruth, TrueFeed, WorkloadFuture
from pythia.workflow.feed import PredictionFeed

PARTS = {"work": {"set_job_work"}, "job": {"set_job_forecast", "end_job"}, "agent": {"set_agent_forecast"}}
FEED_CALLS = {"set_job_work", "set_job_forecast", "end_job", "set_agent_forecast", "set_gap_distribution"}


class _Calls:
    """The core as one feed sees it: the feed calls outside `allowed` are dropped."""

    def __init__(self, core: Any, allowed: set[str]) -> None:
        self._core, self._allowed = core, allowed

    def __getattr__(self, name: str) -> Any:
        if name in FEED_CALLS and name not in self._allowed:
            return lambda *args: None
        return getattr(self._core, name)


class SplitFeed:
    """The tracker's feed: the truth for `true_parts`, the profiler's predictions for the rest."""

    def __init__(self, core: Any, profiler, tags, future: WorkloadFuture, true_parts: set[str]) -> None:
        true_calls = set().union(*(PARTS[p] for p in true_parts if p in PARTS))
        self.truth = TrueFeed(_Calls(core, true_calls), profiler, tags, future)
        self.predicted = PredictionFeed(_Calls(core, FEED_CALLS - true_calls), profiler, tags)
        self.needs = self.truth.needs = self.predicted.needs = core.forecast_needs()
        self.true_output = "output" in true_parts

    def predicted_output_tokens(self, wf_type: str | None, agent: str | None) -> int:
        return (self.truth if self.true_output else self.predicted).predicted_output_tokens(wf_type, agent)

    def publish(self, job_id: str | None, now: float) -> None:
        self.predicted.publish(job_id, now)
        self.truth.publish(job_id, now)


class NoisyFuture(WorkloadFuture):
    """The truth with each waiting job's gap to its next call scaled by exp(N(0, sigma^2)),
    one draw per call (seeded)."""

    def __init__(self, workload, sigma: float, seed: int = 0) -> None:
        super().__init__(workload)
        self.sigma, self.rng, self.factors = sigma, random.Random(seed), {}

    def job(self, job_id: str) -> JobTruth:
        truth = super().job(job_id)
        state = self.states[job_id]
        if not state.ready_at or state.in_flight or not state.done:
            return truth
        key = (job_id, min(state.ready_at, key=state.ready_at.get))
        if key not in self.factors:
            self.factors[key] = math.exp(self.rng.gauss(0.0, self.sigma))
        finish = max(state.done.values())
        return JobTruth(truth.work_tokens, truth.unblocks, finish + (truth.next_use_s - finish) * self.factors[key],
                        truth.steps_to_execution, truth.context_tokens)


def run(args: argparse.Namespace, true_parts: set[str], sigma: float = 0.0) -> dict[str, float]:
    workload = build_workload(args.workload, "gpu", args.seed, args.num_jobs, args.rate)
    replay = build_replay("pythia", workload, cost_model(args.cost_model), args.server_args)
    future = NoisyFuture(workload, sigma) if sigma > 0 else WorkloadFuture(workload)
    feed_future(replay, future, lambda core, profiler, tags, f: SplitFeed(core, profiler, tags, f, true_parts))
    replay.run()
    for engine in replay.engines:
        engine.check_integrity()
    return summarize(replay.calls, replay.jobs, merged_stats(replay.engines))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sim_prediction_split", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", required=True, choices=sorted(GENERATORS))
    parser.add_argument("--num-jobs", type=int, default=150)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cost-model", default="h100-llama3-8b", choices=COST_MODEL_NAMES)
    parser.add_argument("--server-args", default=GPU_SERVER_ARGS,
                        help="engine limits and flags (e.g. --max-job-hold-s 0)")
    parser.add_argument("--gap-noise", default="0.3,0.6,1.0", help="sigmas for the noisy `job` runs ('' for none)")
    args = parser.parse_args()
    runs = [("none", set(), 0.0), ("work", {"work"}, 0.0), ("output", {"output"}, 0.0), ("agent", {"agent"}, 0.0),
            ("job", {"job"}, 0.0), ("all", {"work", "job", "agent", "output"}, 0.0)]
    runs += [(f"job~{s}", {"job"}, float(s)) for s in args.gap_noise.split(",") if s]
    print(f"{args.workload}, {args.num_jobs} jobs at {args.rate} jobs/s, {args.cost_model}, {args.server_args!r}"
          " (SIMULATED)")
    for name, parts, sigma in runs:
        s = run(args, parts, sigma)
        print(f"true {name:8s}: mean JCT {s['jct_mean_s']:8.1f} s, P95 {s['jct_p95_s']:8.1f} s, hit {s['hit_rate']:.1%}, "
              f"TTFT {s['ttft_mean_s']:.2f} s, {s['preemptions']:g} preemptions", flush=True)
        print(f"RESULT split_jct {name} {s['jct_mean_s']:.2f}", flush=True)


if __name__ == "__main__":
    main()

"""Cost of the workflow profiler and prediction feed per request event, with the real core.

    python -m benchmarks.bench_feed [--warm-jobs 200] [--jobs 300]

The profiler first learns a three-agent workflow (planner -> coder, looping -> reviewer) from
`warm-jobs` jobs; then `jobs` more jobs run through it, each call's arrival and finish going
through the profiler and `PredictionFeed.publish` as the engine does it, with every Pythia
policy on (so everything the feed computes is computed). This work runs in the engine loop, so it
adds to every step that coincides with a request event.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pythia import _core
from pythia.workflow.feed import PredictionFeed
from pythia.workflow.profiler import WorkflowProfiler
from pythia.workflow.tags import TagTable

NEXT = {"planner": {"coder": 1.0}, "coder": {"coder": 0.5, "reviewer": 0.5}, "reviewer": {"coder": 0.3, None: 0.7}}


def run_job(profiler, feed, job: str, t: float, rng, timed: dict[str, float] | None) -> float:
    agent: str | None = "planner"
    while agent is not None:
        t0 = time.perf_counter()
        profiler.on_request("bench", job, agent, 100, t)
        feed.publish(job, t)
        feed.predicted_output_tokens("bench", agent)
        t1 = time.perf_counter()
        t += 0.3
        profiler.on_finish("bench", job, agent, 20, t, 0.3)
        feed.publish(job, t)
        t2 = time.perf_counter()
        if timed is not None:
            timed["arrival"] += t1 - t0
            timed["finish"] += t2 - t1
            timed["events"] += 1
        t += rng.exponential(0.2)
        options = NEXT[agent]
        agent = list(options)[rng.choice(len(options), p=list(options.values()))]
    profiler.end_job(job)
    feed.publish(job, t)
    return t


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_feed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm-jobs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    config = _core.SchedulerConfig()
    config.schedule_policy = config.eviction_policy = config.admission_policy = "pythia"
    config.max_job_hold_s = 60.0  # the working-set gate on: the feed sends every forecast
    core = _core.Scheduler(config)
    tags = TagTable()
    tags.intern("type", "bench")
    for agent in ("planner", "coder", "reviewer"):
        tags.intern("agent", agent)
    profiler = WorkflowProfiler()
    feed = PredictionFeed(core, profiler, tags)
    rng = np.random.default_rng(0)
    t = 0.0
    for j in range(args.warm_jobs):
        t = run_job(profiler, feed, f"warm-{j}", t, rng, None)
    timed = {"arrival": 0.0, "finish": 0.0, "events": 0}
    for j in range(args.jobs):
        t = run_job(profiler, feed, f"job-{j}", t, rng, timed)
    n = timed["events"]
    print(f"{n} calls: arrival {1e6 * timed['arrival'] / n:.0f} us, finish {1e6 * timed['finish'] / n:.0f} us "
          f"per event (profiler + feed)")


if __name__ == "__main__":
    main()

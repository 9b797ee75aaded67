"""Fits the `cpu-fitted` cost model to step-time measurements of the real engine.

    python -m pythia.sim.fit_cost benchmarks/results/step-cost-cpu/tiny-*.jsonl \\
        --out pythia/sim/cost_models/cpu_fitted.json --statistic min

The measurements are `benchmarks.bench_step_cost --out` lines (or `benchmarks.gpu.calibrate`'s,
in the same form), from one run or several; or, with --step-logs, the steps a real server logged
with `--step-log` while it served a workload (`fit_step_logs`: the machine's speed during that run). A shape
measured in several runs counts once: its least time (`--statistic min`, the run least
disturbed by the machine's other work) or its median step's median (`median`). Prefill rows fit (a_p, b_p, c_p, d_p)
and decode rows (a_d, b_d, c_d) of `cost_models/fitted.py`, each by non-negative least squares
on relative error: a step of 20 ms matters as much as one of 2 s, and no coefficient may make
a larger batch cheaper.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from pythia.sim.cost_models.fitted import decode_features, prefill_features


STATISTICS = {"median": "step_s", "min": "step_min_s"}


def nonnegative_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares of x @ w ~ y with w >= 0, exactly: the best unconstrained fit over every
    subset of free coefficients (the rest held at 0) that comes out non-negative. Four
    coefficients make sixteen subsets, so no solver is needed."""
    best, best_err = np.zeros(x.shape[1]), float(np.sum(y * y))
    for k in range(1, x.shape[1] + 1):
        for cols in itertools.combinations(range(x.shape[1]), k):
            w_sub, *_ = np.linalg.lstsq(x[:, cols], y, rcond=None)
            if (w_sub < 0).any():
                continue
            w = np.zeros(x.shape[1])
            w[list(cols)] = w_sub
            err = float(np.sum((x @ w - y) ** 2))
            if err < best_err:
                best, best_err = w, err
    return best


def merge_runs(rows: list[dict], statistic: str) -> list[dict]:
    """One row per measured shape, its time the `statistic` over the runs that measured it."""
    key = STATISTICS[statistic]
    by_shape: dict[tuple, list[float]] = {}
    for r in rows:
        if r["kind"] == "prefill":
            shape = ("prefill", tuple(r["lens"]), tuple(r.get("starts", [0] * len(r["lens"]))))
        else:
            shape = ("decode", tuple(r["contexts"]), ())
        by_shape.setdefault(shape, []).append(r[key])
    pick = min if statistic == "min" else (lambda xs: float(np.median(xs)))
    merged = []
    for (kind, shape, starts), times in by_shape.items():
        row = {"kind": kind, ("lens" if kind == "prefill" else "contexts"): list(shape), "step_s": pick(times)}
        if any(starts):
            row["starts"] = list(starts)
        merged.append(row)
    return merged


def fit(rows: list[dict], kind: str) -> tuple[list[float], dict]:
    chosen = [r for r in rows if r["kind"] == kind]
    if len(chosen) < 3:
        raise SystemExit(f"need at least 3 {kind} measurements to fit its coefficients, got {len(chosen)}")
    x = np.array([prefill_features(r["lens"], r.get("starts")) if kind == "prefill" else decode_features(r["contexts"])
                  for r in chosen])
    y = np.array([r["step_s"] for r in chosen])
    w = nonnegative_fit(x / y[:, None], np.ones(len(y)))  # relative error: each row divided by its time
    rel = np.abs(x @ w - y) / y
    return w.tolist(), {"rows": len(chosen), "median_rel_error": float(np.median(rel)),
                        "max_rel_error": float(rel.max())}


def step_features(step: dict) -> list[float]:
    """A logged step's regressors for the joint fit: (1, has prefill, then the prefill terms past
    their constant, then the decode terms past theirs). The constant is a_d and a_p = a_d + the
    prefill indicator's weight, which the non-negative fit keeps >= a_d, as FittedCost's
    `max(a_p, a_d)` for a mixed step assumes."""
    lens, starts, contexts = step["prefill_lens"], step["prefill_starts"], step["decode_contexts"]
    p = prefill_features(lens, starts)[1:] if lens else [0.0, 0.0, 0.0]
    d = decode_features(contexts)[1:] if contexts else [0.0, 0.0]
    return [1.0, 1.0 if lens else 0.0, *p, *d]


def fit_step_logs(steps: list[dict]) -> tuple[list[float], list[float], dict]:
    """(prefill, decode) coefficients of FittedCost fitted jointly to a real run's `--step-log`
    lines, every kind of step at once (most steps of a loaded server mix prefill and decode),
    by relative error; and the fit's quality."""
    if len(steps) < 8:
        raise ValueError(f"need at least 8 logged steps to fit 7 coefficients, got {len(steps)}")
    x = np.array([step_features(s) for s in steps])
    y = np.array([s["step_s"] for s in steps])
    w = nonnegative_fit(x / y[:, None], np.ones(len(y)))
    rel = np.abs(x @ w - y) / y
    a_d, extra_p, b_p, c_p, d_p, b_d, c_d = w.tolist()
    return ([a_d + extra_p, b_p, c_p, d_p], [a_d, b_d, c_d],
            {"steps": len(steps), "median_rel_error": float(np.median(rel)), "max_rel_error": float(rel.max()),
             "total_s": float(y.sum()), "total_model_s": float((x @ w).sum())})


def source(row: dict) -> str:
    """What was measured: a GPU profile says so itself; bench_step_cost's rows are the real engine."""
    if "source" in row:
        return row["source"]
    return (f"the real engine ({row['model']} model, {row.get('threads', 2)} torch threads) on this 2-core "
            f"machine shared with other work")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pythia.sim.fit_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("measurements", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", default="cpu-fitted")
    parser.add_argument("--statistic", default="median", choices=list(STATISTICS),
                        help="which time of each measured shape to fit: the median step, or the least contended")
    parser.add_argument("--step-logs", action="store_true",
                        help="the files are a real run's `--step-log` lines, fitted jointly (fit_step_logs)")
    args = parser.parse_args()
    rows = [json.loads(line) for path in args.measurements for line in Path(path).read_text().splitlines()
            if line.strip()]
    if args.step_logs:
        prefill, decode, quality = fit_step_logs(rows)
        out = {"name": args.name,
               "description": f"fitted to {len(rows)} steps the real engine logged (--step-log) while it served "
                              f"{', '.join(args.measurements)}",
               "prefill": prefill, "decode": decode, "fit_quality": {"joint": quality},
               "measurements": args.measurements,
               "command": f"python -m pythia.sim.fit_cost --step-logs {' '.join(args.measurements)} --out {args.out}"}
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
        return
    merged = merge_runs(rows, args.statistic)
    prefill, prefill_quality = fit(merged, "prefill")
    decode, decode_quality = fit(merged, "decode")
    first = rows[0]
    loads = [r["load_avg_1m"] for r in rows if "load_avg_1m" in r]
    dates = sorted({r["measured_at"] for r in rows})
    when = f"{dates[0]} to {dates[-1]}" + (f" at load averages {min(loads):.1f}-{max(loads):.1f}" if loads else "")
    out = {
        "name": args.name,
        "description": (f"fitted to {len(merged)} shapes' step times measured on {source(first)} "
                        f"({len(args.measurements)} runs, {args.statistic} over steps and runs), {when}"),
        "prefill": prefill,
        "decode": decode,
        "fit_quality": {"prefill": prefill_quality, "decode": decode_quality},
        "measurements": args.measurements,  # paths, relative to the repository root
        "statistic": args.statistic,
        "command": f"python -m pythia.sim.fit_cost {' '.join(args.measurements)} --out {args.out} "
                   f"--statistic {args.statistic}",
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

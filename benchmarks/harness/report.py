"""Per-config metrics (WORKLOADS.md), the markdown report and the plots."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks.harness.replay import CallRecord, JobRecord


def summarize(calls: list[CallRecord], jobs: list[JobRecord], server_stats: dict) -> dict[str, float]:
    jct = np.array([j.jct_s for j in jobs])
    ttft = np.array([c.first_token_s - c.ready_s for c in calls])
    tpot = np.array([(c.finished_s - c.first_token_s) / (c.completion_tokens - 1)
                     for c in calls if c.completion_tokens > 1])
    start = min(j.arrival_s for j in jobs)
    end = max(j.finished_s for j in jobs)
    output_tokens = sum(c.completion_tokens for c in calls)
    prompt_tokens = sum(c.prompt_tokens for c in calls)
    return {
        "jobs": len(jobs),
        "calls": len(calls),
        "jct_mean_s": float(jct.mean()),
        "jct_p95_s": float(np.percentile(jct, 95)),
        "ttft_mean_s": float(ttft.mean()),
        "ttft_p95_s": float(np.percentile(ttft, 95)),
        "tpot_mean_s": float(tpot.mean()) if len(tpot) else 0.0,
        "tpot_p95_s": float(np.percentile(tpot, 95)) if len(tpot) else 0.0,
        "throughput_tok_s": output_tokens / (end - start),
        "jobs_per_min": 60 * len(jobs) / (end - start),
        "hit_rate": sum(c.cached_tokens for c in calls) / max(prompt_tokens, 1),
        # Of the prompt tokens, those loaded back from the host tier (device hits: the rest of hit_rate).
        "host_hit_rate": sum(c.host_cached_tokens for c in calls) / max(prompt_tokens, 1),
        "pages_to_host": server_stats.get("pages_offloaded", 0) + server_stats.get("pages_backed_up", 0),
        "pages_from_host": server_stats.get("pages_loaded", 0),
        "preemptions": server_stats.get("num_preemptions", 0),
        "evicted_pages": server_stats.get("num_evicted_pages", 0),
    }


def median_over_repeats(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def write_records(out: Path, config: str, repeat: int, calls: list[CallRecord], jobs: list[JobRecord]) -> None:
    with open(out / "calls.jsonl", "a") as f:
        for c in calls:
            f.write(json.dumps({"config": config, "repeat": repeat, **asdict(c)}) + "\n")
    with open(out / "jobs.jsonl", "a") as f:
        for j in jobs:
            f.write(json.dumps({"config": config, "repeat": repeat, **asdict(j), "jct_s": j.jct_s}) + "\n")


ROWS = [("mean JCT (s)", "jct_mean_s", False), ("P95 JCT (s)", "jct_p95_s", False),
        ("throughput (out tok/s)", "throughput_tok_s", True), ("jobs/min", "jobs_per_min", True),
        ("mean TTFT (s)", "ttft_mean_s", False), ("P95 TTFT (s)", "ttft_p95_s", False),
        ("mean TPOT (s)", "tpot_mean_s", False), ("prefix hit rate", "hit_rate", True),
        ("of it from host", "host_hit_rate", True), ("pages to host", "pages_to_host", False),
        ("pages from host", "pages_from_host", False),
        ("preemptions", "preemptions", False), ("evicted pages", "evicted_pages", False)]


def result_lines(summaries: dict[str, dict[str, float]]) -> list[str]:
    """The `RESULT` lines of a comparison: the mean-JCT ratio of each config against the first
    (above 1: faster), then every config's mean and P95 JCT in seconds."""
    configs = list(summaries)
    base = summaries[configs[0]]["jct_mean_s"]
    lines = [f"RESULT jct_ratio {c} {base / summaries[c]['jct_mean_s']:.3f}" for c in configs[1:]]
    for c in configs:
        lines += [f"RESULT mean_jct {c} {summaries[c]['jct_mean_s']:.3f}",
                  f"RESULT p95_jct {c} {summaries[c]['jct_p95_s']:.3f}"]
    return lines


def markdown(title: str, command: str, summaries: dict[str, dict[str, float]], plots: list[str], note: str = ""
             ) -> str:
    configs = list(summaries)
    base = summaries[configs[0]]
    lines = [f"# {title}", "", f"Command: `{command}`", ""] + ([note, ""] if note else []) + [
             "| metric | " + " | ".join(configs) + " |", "|---" * (len(configs) + 1) + "|"]
    for label, key, _ in ROWS:
        cells = []
        for c in configs:
            value = summaries[c][key]
            cell = f"{value:g}" if key in ("preemptions", "evicted_pages") else f"{value:.3f}"
            if c != configs[0] and key in ("jct_mean_s", "jct_p95_s", "throughput_tok_s") and base[key] and value:
                ratio = base[key] / value if key.startswith("jct") else value / base[key]
                cell += f" ({ratio:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Ratios in parentheses are against `{configs[0]}` (higher is better for that config).", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def plot(out: Path, per_config: dict[str, tuple[list[CallRecord], list[JobRecord]]], note: str = "") -> list[str]:
    """JCT CDF per config, throughput over time, a Gantt timeline of the first config's jobs;
    `note` (e.g. that the figures are simulated) heads every plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, ax, name: str, xlabel: str, ylabel: str) -> str:
        if note:
            ax.set_title(f"{note}: {ax.get_title()}" if ax.get_title() else note, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ax.get_legend() is None:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        return name

    names = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for config, (_, jobs) in per_config.items():
        jct = np.sort([j.jct_s for j in jobs])
        ax.plot(jct, np.arange(1, len(jct) + 1) / len(jct), label=config)
    names.append(save(fig, ax, "jct_cdf.png", "job completion time (s)", "fraction of jobs"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for config, (calls, _) in per_config.items():
        end = max(c.finished_s for c in calls)
        bins = np.arange(0, end + 10, 10)
        tokens, _ = np.histogram([c.finished_s for c in calls], bins=bins,
                                 weights=[c.completion_tokens for c in calls])
        ax.step(bins[:-1], tokens / 10, where="post", label=config)
    names.append(save(fig, ax, "throughput.png", "time (s)", "output tokens/s (10 s bins, by call finish)"))

    config, (calls, jobs) = next(iter(per_config.items()))
    order = {j.job: i for i, j in enumerate(sorted(jobs, key=lambda j: j.arrival_s))}
    fig, ax = plt.subplots(figsize=(8, max(3, 0.25 * len(order))))
    agents = sorted({c.agent for c in calls})
    colors = {a: plt.cm.tab10(i % 10) for i, a in enumerate(agents)}
    for c in calls:
        ax.barh(order[c.job], c.finished_s - c.ready_s, left=c.ready_s, color=colors[c.agent], height=0.6)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colors[a], label=a) for a in agents], fontsize=7)
    ax.set_title(f"calls over time, {config}")
    names.append(save(fig, ax, "gantt.png", "time (s)", "job (by arrival)"))
    return names

"""Capacity: the highest job arrival rate a config sustains while meeting a JCT objective.

In an open-loop replay every config finishes every job, so measured throughput equals the offered
load until a config falls behind. What a better policy buys is a higher load at the same service
level. The search here finds it for one config: climb the rate geometrically until P95 JCT misses
the objective, then bisect (geometric midpoints) between the last rate that met it and the first
that did not. The measurement is a callable, so the search is tested without a server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


@dataclass
class Probe:
    rate: float
    p95_s: float
    met: bool


def max_rate(p95_at: Callable[[float], float], objective_s: float, start: float, growth: float = 1.5,
             refinements: int = 2, max_probes: int = 12) -> tuple[float | None, list[Probe]]:
    """Highest probed rate whose P95 JCT (from `p95_at(rate)`) is at most `objective_s`.

    Starts at `start`, multiplies (or, if `start` already misses, divides) by `growth` until one
    rate meets the objective and one misses it, then halves that bracket `refinements` times.
    Returns None when no probe met the objective within `max_probes`; the probes in order.
    """
    if start <= 0 or growth <= 1 or objective_s <= 0 or max_probes < 1:
        raise ValueError("max_rate needs start > 0, growth > 1, objective_s > 0 and max_probes >= 1")
    probes: list[Probe] = []
    met_rate: float | None = None  # highest rate that met the objective
    missed_rate: float | None = None  # lowest rate that missed it

    def probe(rate: float) -> None:
        nonlocal met_rate, missed_rate
        p95 = p95_at(rate)
        met = p95 <= objective_s
        probes.append(Probe(rate, p95, met))
        if met:
            met_rate = rate if met_rate is None else max(met_rate, rate)
        else:
            missed_rate = rate if missed_rate is None else min(missed_rate, rate)

    probe(start)
    while (met_rate is None or missed_rate is None) and len(probes) < max_probes:
        probe(met_rate * growth if missed_rate is None else missed_rate / growth)
    for _ in range(refinements):
        if met_rate is None or missed_rate is None or len(probes) >= max_probes:
            break
        probe(math.sqrt(met_rate * missed_rate))
    return met_rate, probes

"""The capacity search of the benchmark harness, against synthetic load curves."""

from __future__ import annotations

import math

import pytest

from benchmarks.harness.capacity import max_rate


def queueing_p95(capacity: float):
    """P95 JCT of an M/M/1-like server: 1 s unloaded, unbounded as the rate nears capacity."""
    return lambda rate: math.inf if rate >= capacity else 1.0 / (1.0 - rate / capacity)


def test_climbs_then_bisects_to_the_last_rate_that_met_the_objective():
    rate, probes = max_rate(queueing_p95(4.0), objective_s=3.0, start=1.0, growth=2.0, refinements=2)
    # The objective (3x unloaded) is met up to 2/3 of capacity: 2.667 jobs/s.
    assert [p.rate for p in probes[:3]] == [1.0, 2.0, 4.0]
    assert [p.met for p in probes[:3]] == [True, True, False]
    assert probes[3].rate == pytest.approx(math.sqrt(8.0))  # between 2 and 4: misses
    assert probes[4].rate == pytest.approx(math.sqrt(2.0 * math.sqrt(8.0)))  # 2.38: meets
    assert rate == pytest.approx(probes[4].rate) and rate <= 4.0 * 2 / 3
    assert len(probes) == 5


def test_descends_when_the_start_already_misses():
    rate, probes = max_rate(queueing_p95(1.0), objective_s=3.0, start=4.0, growth=2.0, refinements=0)
    assert [p.rate for p in probes] == [4.0, 2.0, 1.0, 0.5]
    assert rate == 0.5


def test_gives_up_after_max_probes_and_rejects_bad_arguments():
    rate, probes = max_rate(lambda r: 10.0, objective_s=3.0, start=1.0, max_probes=4)
    assert rate is None and len(probes) == 4 and not any(p.met for p in probes)
    rate, probes = max_rate(lambda r: 0.1, objective_s=3.0, start=1.0, growth=2.0, max_probes=3)
    assert rate == 4.0 and all(p.met for p in probes)  # never missed: the highest probe
    for bad in ({"start": 0.0}, {"growth": 1.0}, {"objective_s": 0.0}, {"max_probes": 0}):
        with pytest.raises(ValueError):
            max_rate(lambda r: 1.0, **{"objective_s": 3.0, "start": 1.0, **bad})

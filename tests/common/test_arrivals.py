"""The arrival-rate plan: exact instants for k6's corner cases, and exact sums over any fleet."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.arrivals import ArrivalPlan, RateSegment, owned_indices_from
from surge.common.options import parse_options
from surge.common.schedule import owned_below, owned_pattern


def ramping(start: int, *stages: tuple[float, int], unit: float = 1.0) -> ArrivalPlan:
    rates = [start, *(t for _, t in stages)]
    return ArrivalPlan(unit, tuple(RateSegment(d, a, b) for (d, _), a, b in zip(stages, rates, rates[1:])), False)


def constant(rate: int, duration_s: float, unit: float = 1.0) -> ArrivalPlan:
    return ArrivalPlan(unit, (RateSegment(duration_s, rate, rate),), True)


def instants(plan: ArrivalPlan) -> list[float]:
    return list(plan.offsets(range(plan.total())))


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        # constant-arrival-rate: the first at once, then every timeUnit/rate, strictly before the end
        (constant(4, 1.0), [0.0, 0.25, 0.5, 0.75]),
        (constant(1, 3.0), [0.0, 1.0, 2.0]),
        # timeUnit other than 1 s: 3 per minute over 1 minute is every 20 s
        (constant(3, 60.0, unit=60.0), [0.0, 20.0, 40.0]),
        (constant(1, 1.0, unit=0.25), [0.0, 0.25, 0.5, 0.75]),
        # ramping-arrival-rate: the k-th when the integral reaches k+1; the one at the very end runs
        (ramping(2, (2.0, 2)), [0.5, 1.0, 1.5, 2.0]),
        # a ramp from 0 to 4 over 2 s owes 4; the integral t^2 reaches k at sqrt(k)
        (ramping(0, (2.0, 4)), [1.0, math.sqrt(2), math.sqrt(3), 2.0]),
        # zero-length stage: a jump to 2/s, then hold 1 s
        (ramping(0, (0.0, 2), (1.0, 2)), [0.5, 1.0]),
        # jump then ramp: to 2/s at once, then 2 -> 0 over 2 s (owes 2)
        (ramping(0, (0.0, 2), (2.0, 0)), [2 - math.sqrt(2), 2.0]),
        # rate change within a second: 4/s for 0.5 s, then 2/s for 0.5 s (owes 2 + 1)
        (ramping(4, (0.5, 4), (0.0, 2), (0.5, 2)), [0.25, 0.5, 1.0]),
        # a stage at rate 0 only lets time pass
        (ramping(1, (1.0, 1), (0.0, 0), (5.0, 0), (0.0, 1), (1.0, 1)), [1.0, 7.0]),
        # timeUnit 1m in a ramp: 0 -> 120/min over 60 s owes 60, the first at sqrt(1/(2/60^2... )) = sqrt(60)
        (ramping(0, (60.0, 120), unit=60.0), [math.sqrt(60 * k) for k in range(1, 61)]),
    ],
)
def test_k6_corner_cases_start_exactly_when_the_integral_says(plan: ArrivalPlan, expected: list[float]) -> None:
    assert instants(plan) == pytest.approx(expected, abs=1e-9)


def test_totals_are_the_integral_for_whole_numbers() -> None:
    assert constant(10, 10.0).total() == 100
    assert ramping(10, (10.0, 10)).total() == 100
    assert ramping(0, (2.0, 30), (2.0, 30), (2.0, 0)).total() == 120
    assert constant(3, 0.5).total() == 2  # 1.5 owed: 0 and 1/3 start before 0.5
    assert ramping(3, (0.5, 3)).total() == 1  # 1.5 owed, the second would be at 2/3 s


def test_the_options_build_the_same_plan() -> None:
    opts, problems = parse_options({"scenarios": {
        "c": {"executor": "constant-arrival-rate", "rate": 3, "timeUnit": "1m", "duration": "1m", "preAllocatedVUs": 1},
        "r": {"executor": "ramping-arrival-rate", "startRate": 0, "preAllocatedVUs": 1,
              "stages": [{"duration": "0s", "target": 2}, {"duration": "2s", "target": 0}]},
    }})  # fmt: skip
    assert opts is not None, problems
    c, r = (sc.arrival_plan() for sc in opts.scenarios)
    assert instants(c) == [0.0, 20.0, 40.0]
    assert instants(r) == pytest.approx([2 - math.sqrt(2), 2.0])


def _area(plan: ArrivalPlan, t: float) -> float:
    """The integral of the rate up to ``t``, straight from the segments (no shared code)."""
    total, start = 0.0, 0.0
    for seg in plan.segments:
        d = seg.duration_s
        r0, r1 = seg.from_rate / plan.time_unit_s, seg.to_rate / plan.time_unit_s
        x = min(max(t - start, 0.0), d)
        if d > 0:
            total += r0 * x + (r1 - r0) * x * x / (2 * d)
        start += d
    return total


stage_st = st.tuples(st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.3, 2.0, 3.0]), st.integers(0, 40))
plan_st = st.one_of(
    st.builds(constant, st.integers(1, 40), st.sampled_from([0.1, 0.5, 1.0, 2.5, 4.0]),
              st.sampled_from([0.5, 1.0, 2.0])),  # fmt: skip
    st.builds(lambda s, stages, u: ramping(s, *stages, unit=u), st.integers(0, 40),
              st.lists(stage_st, min_size=1, max_size=5), st.sampled_from([0.5, 1.0, 2.0])),  # fmt: skip
)
weights_st = st.lists(st.integers(1, 4), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(plan=plan_st, weights=weights_st, rotation=st.integers(0, 7))
def test_the_workers_started_iterations_sum_exactly_to_the_plan_at_every_instant(
    plan: ArrivalPlan, weights: list[int], rotation: int
) -> None:
    total = plan.total()
    owed = Fraction(_area(plan, plan.duration_s)).limit_denominator(10**6)
    assert total == (math.ceil(owed) if plan.first_at_zero else math.floor(owed))
    whole = instants(plan)
    assert whole == sorted(whole) and all(0 <= t <= plan.duration_s for t in whole)
    for k, t in enumerate(whole):  # each starts when the integral reaches k + shift
        assert _area(plan, t) == pytest.approx(k + plan.shift, abs=1e-6)
    per_worker: list[list[tuple[int, float]]] = []
    for w in range(len(weights)):
        period, offsets = owned_pattern(w, weights, rotation=rotation)
        mine = list(owned_indices_from(period, offsets, total))
        assert len(mine) == owned_below(period, offsets, total)
        per_worker.append(list(plan.schedule(mine)))  # what the worker generates by itself
    merged = sorted(pair for mine in per_worker for pair in mine)
    assert merged == list(enumerate(whole))  # every index once, at the same instant
    for t in {*whole, plan.duration_s / 3, plan.duration_s}:
        started = [sum(1 for _, s in mine if s <= t) for mine in per_worker]
        assert sum(started) == sum(1 for s in whole if s <= t)
        for w, n in enumerate(started):  # never a whole iteration from the weight's share
            share = sum(1 for s in whole if s <= t) * weights[w] / sum(weights)
            assert math.floor(share) <= n <= math.ceil(share)

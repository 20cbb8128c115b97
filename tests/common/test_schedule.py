"""Plans as tables, and the split of a plan over the fleet as properties."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.schedule import (
    Stage,
    Step,
    constant_vus_steps,
    max_vus,
    owned_indices,
    ramping_vus_steps,
    split_steps,
    total_duration_s,
    vus_at,
)

SEED_STAGES = [Stage(30, 100), Stage(120, 100), Stage(30, 0)]


# --------------------------------------------------------------------------- global plans


def test_seed_plan_ramps_up_holds_and_ramps_down() -> None:
    steps = ramping_vus_steps(0, SEED_STAGES)

    assert len(steps) == 201
    assert steps[0] == Step(0.0, 0)
    assert steps[1] == Step(0.3, 1)
    assert steps[2] == Step(0.6, 2)
    assert steps[100] == Step(30.0, 100)
    assert steps[101] == Step(150.3, 99)
    assert steps[-2] == Step(179.7, 1)
    assert steps[-1] == Step(180.0, 0)
    # Every offset is the exact decimal value rounded once, not an accumulated float sum.
    assert steps[1:101] == [Step(float(Fraction(3 * k, 10)), k) for k in range(1, 101)]
    assert steps[101:] == [Step(float(150 + Fraction(3 * i, 10)), 100 - i) for i in range(1, 101)]
    assert max_vus(steps) == 100
    assert total_duration_s(SEED_STAGES) == 180.0


@pytest.mark.parametrize(
    ("start_vus", "stages", "expected"),
    [
        # a plateau adds no step; the end marker at T is kept even when nothing changed
        (5, [Stage(10, 5)], [Step(0, 5), Step(10, 5)]),
        (0, [Stage(2, 2), Stage(8, 2)], [Step(0, 0), Step(1, 1), Step(2, 2), Step(10, 2)]),
        (0, [Stage(2, 2), Stage(2, 0), Stage(3, 0)],
         [Step(0, 0), Step(1, 1), Step(2, 2), Step(3, 1), Step(4, 0), Step(7, 0)]),
        (0, [Stage(5, 0)], [Step(0, 0), Step(5, 0)]),
        # a zero-duration stage jumps at once
        (0, [Stage(0, 10), Stage(5, 10)], [Step(0, 10), Step(5, 10)]),
        (1, [Stage(4, 1), Stage(0, 7), Stage(2, 7)], [Step(0, 1), Step(4, 7), Step(6, 7)]),
        (1, [Stage(4, 1), Stage(0, 7), Stage(2, 0)],
         [Step(0, 1), Step(4, 7)] + [Step(float(4 + Fraction(2 * k, 7)), 7 - k) for k in range(1, 8)]),
        # same-offset steps merge, the last value wins
        (3, [Stage(0, 10), Stage(0, 4), Stage(1, 4)], [Step(0, 4), Step(1, 4)]),
        # a jump back to the current count leaves no trace
        (2, [Stage(1, 2), Stage(0, 9), Stage(0, 2), Stage(1, 2)], [Step(0, 2), Step(2, 2)]),
        # going down from start_vus, one VU at a time, reaching the target at the stage's end
        (4, [Stage(2, 0)], [Step(0, 4), Step(0.5, 3), Step(1, 2), Step(1.5, 1), Step(2, 0)]),
        (4, [Stage(2, 2), Stage(1, 3)], [Step(0, 4), Step(1, 3), Step(2, 2), Step(3, 3)]),
        (0, [Stage(1, 3)], [Step(0, 0), Step(1 / 3, 1), Step(2 / 3, 2), Step(1, 3)]),
        # nothing to run
        (0, [], [Step(0, 0)]),
        (7, [Stage(0, 3)], [Step(0, 3)]),
    ],
)
def test_ramping_vus_steps_table(start_vus: int, stages: list[Stage], expected: list[Step]) -> None:
    assert ramping_vus_steps(start_vus, stages) == expected


def test_offsets_are_exact_decimals_rounded_once() -> None:
    stages = [Stage(0.1, 1), Stage(0.2, 1)]
    assert ramping_vus_steps(0, stages) == [Step(0, 0), Step(0.1, 1), Step(0.3, 1)]  # not 0.30000000000000004
    assert total_duration_s(stages) == 0.3
    steps = ramping_vus_steps(0, [Stage(1, 7), Stage(1, 7)])
    assert steps[1:8] == [Step(float(Fraction(k, 7)), k) for k in range(1, 8)]


def test_constant_vus_steps() -> None:
    assert constant_vus_steps(10, 60) == [Step(0, 10), Step(60, 0)]
    assert constant_vus_steps(1, 0.5) == [Step(0, 1), Step(0.5, 0)]
    assert constant_vus_steps(0, 5) == [Step(0, 0), Step(5, 0)]
    assert constant_vus_steps(3, 0) == [Step(0, 0)]


@pytest.mark.parametrize(
    ("start_vus", "stages"),
    [
        (-1, [Stage(1, 1)]),
        (True, [Stage(1, 1)]),
        (0, [Stage(-1, 1)]),
        (0, [Stage(math.inf, 1)]),
        (0, [Stage(math.nan, 1)]),
        (0, [Stage(1, -2)]),
        (0, [Stage(1, 2.5)]),  # type: ignore[arg-type]
    ],
)
def test_ramping_vus_steps_refuses_nonsense(start_vus: int, stages: list[Stage]) -> None:
    with pytest.raises(ValueError):
        ramping_vus_steps(start_vus, stages)


def test_vus_at() -> None:
    steps = [Step(0, 2), Step(1.5, 5), Step(3, 0)]
    assert vus_at(steps, -0.1) == 0
    assert vus_at(steps, 0) == 2
    assert vus_at(steps, 1.4999) == 2
    assert vus_at(steps, 1.5) == 5
    assert vus_at(steps, 3) == 0
    assert vus_at(steps, 1e9) == 0
    assert vus_at([], 1) == 0
    assert vus_at([Step(2, 4)], 1) == 0


def test_max_vus() -> None:
    assert max_vus([]) == 0
    assert max_vus(constant_vus_steps(7, 1)) == 7


# --------------------------------------------------------------------------- execution segments


def _owners(weights: list[int], count: int) -> list[int]:
    owner = {}
    for w in range(len(weights)):
        for k in owned_indices(w, weights, count):
            assert k not in owner
            owner[k] = w
    return [owner[k] for k in range(count)]


def test_equal_weights_are_plain_round_robin() -> None:
    for n in range(1, 9):
        assert _owners([1] * n, 5 * n + 3) == [k % n for k in range(5 * n + 3)]
        assert _owners([3] * n, 4 * n) == [k % n for k in range(4 * n)]


def test_unequal_weights_interleave_smoothly() -> None:
    assert _owners([2, 1, 1], 8) == [0, 1, 0, 2] * 2
    assert owned_indices(0, [2, 1, 1], 10) == [0, 2, 4, 6, 8]
    assert owned_indices(1, [2, 1, 1], 10) == [1, 5, 9]
    assert owned_indices(2, [2, 1, 1], 10) == [3, 7]
    assert owned_indices(2, [2, 1, 1], 0) == []


def test_owned_indices_refuses_nonsense() -> None:
    for weights, worker, count in [([], 0, 1), ([1, 0], 0, 1), ([1], 1, 1), ([1], -1, 1), ([1], 0, -1)]:
        with pytest.raises(ValueError):
            owned_indices(worker, weights, count)


def test_split_seed_plan_three_equal_workers() -> None:
    steps = ramping_vus_steps(0, SEED_STAGES)
    plans = split_steps(steps, [1, 1, 1])

    assert [p[0] for p in plans] == [Step(0, 0)] * 3
    assert plans[0][1] == Step(0.3, 1)  # VU index 0
    assert plans[1][1] == Step(0.6, 1)  # VU index 1
    assert plans[2][1] == Step(0.9, 1)  # VU index 2
    assert [max_vus(p) for p in plans] == [34, 33, 33]
    # Last in, first out: index 99 (worker 0) stops first, index 0 (worker 0) last.
    assert plans[0][-2:] == [Step(179.1, 1), Step(180, 0)]  # index 3 stops at 179.1
    assert plans[1][-2:] == [Step(179.7, 0), Step(180, 0)]  # the end marker
    assert plans[2][-2:] == [Step(179.4, 0), Step(180, 0)]
    assert plans[0][35] == Step(150.3, 33)


def test_split_keeps_first_and_end_steps_and_drops_unchanged_ones() -> None:
    plans = split_steps([Step(0, 1), Step(5, 0)], [1, 1, 1])
    assert plans == [[Step(0, 1), Step(5, 0)], [Step(0, 0), Step(5, 0)], [Step(0, 0), Step(5, 0)]]
    plans = split_steps([Step(0, 0), Step(1, 1), Step(2, 2), Step(3, 1), Step(4, 0)], [1, 1])
    assert plans == [[Step(0, 0), Step(1, 1), Step(4, 0)], [Step(0, 0), Step(2, 1), Step(3, 0), Step(4, 0)]]
    plans = split_steps(ramping_vus_steps(0, [Stage(3, 3), Stage(3, 3)]), [1, 1])
    assert plans == [[Step(0, 0), Step(1, 1), Step(3, 2), Step(6, 2)], [Step(0, 0), Step(2, 1), Step(6, 1)]]
    assert split_steps([Step(0, 2)], [1, 1]) == [[Step(0, 1)], [Step(0, 1)]]
    assert split_steps([], [1, 2]) == [[], []]


# --------------------------------------------------------------------------- properties

durations = st.one_of(
    st.integers(0, 300).map(lambda n: n / 10),  # decimals as users write them
    st.floats(0, 1000, allow_nan=False, allow_infinity=False),
)
stage_lists = st.lists(st.builds(Stage, durations, st.integers(0, 60)), min_size=1, max_size=6)
weight_lists = st.lists(st.integers(1, 5), min_size=1, max_size=16)


@given(st.integers(0, 60), stage_lists)
def test_plan_shape(start_vus: int, stages: list[Stage]) -> None:
    steps = ramping_vus_steps(start_vus, stages)

    assert steps[0].offset_s == 0
    assert all(a.offset_s < b.offset_s for a, b in zip(steps, steps[1:]))
    assert all(a.vus != b.vus for a, b in zip(steps, steps[1:-1]))  # the end marker may repeat
    assert steps[-1] == Step(total_duration_s(stages), stages[-1].target)
    assert max_vus(steps) <= max(start_vus, *(s.target for s in stages))
    if all(s.duration_s >= 0.1 for s in stages):
        # no jumps: the count moves one VU at a time
        assert steps[0].vus == start_vus
        assert all(abs(a.vus - b.vus) == 1 for a, b in zip(steps, steps[1:-1]))
        assert abs(steps[-1].vus - steps[-2].vus) <= 1 if len(steps) > 1 else True
        # and it reaches each stage's target exactly at the stage's end
        end = Fraction(0)
        for s in stages[:-1]:
            end += Fraction(repr(float(s.duration_s)))
            assert vus_at(steps, float(end)) == s.target


@given(st.integers(0, 60), stage_lists, weight_lists, st.lists(st.floats(-1, 2000), max_size=20))
@settings(max_examples=300)
def test_split_sums_exactly_to_the_plan(
    start_vus: int, stages: list[Stage], weights: list[int], probes: list[float]
) -> None:
    steps = ramping_vus_steps(start_vus, stages)
    plans = split_steps(steps, weights)

    assert len(plans) == len(weights)
    for plan in plans:
        assert plan[0].offset_s == steps[0].offset_s
        assert plan[-1].offset_s == steps[-1].offset_s  # every plan ends where the scenario ends
        assert all(a.offset_s < b.offset_s for a, b in zip(plan, plan[1:]))
        assert all(a.vus != b.vus for a, b in zip(plan, plan[1:-1]))
        assert {s.offset_s for s in plan} <= {s.offset_s for s in steps}
    for t in [s.offset_s for s in steps] + probes:
        assert sum(vus_at(p, t) for p in plans) == vus_at(steps, t)


@given(st.integers(0, 60), stage_lists, weight_lists)
def test_split_is_monotone_and_fair(start_vus: int, stages: list[Stage], weights: list[int]) -> None:
    steps = ramping_vus_steps(start_vus, stages)
    plans = split_steps(steps, weights)
    total = sum(weights)

    before = [vus_at(p, steps[0].offset_s) for p in plans]
    for step in steps[1:]:
        now = [vus_at(p, step.offset_s) for p in plans]
        up = step.vus > sum(before)
        assert all((b <= a) if up else (b >= a) for b, a in zip(before, now))
        # never a whole VU away from the exact share, at every global count
        for w, n in zip(weights, now):
            assert math.floor(step.vus * w / total) <= n <= math.ceil(step.vus * w / total)
        before = now

    peak = max_vus(steps)
    for w, plan in zip(weights, plans):
        assert abs(max_vus(plan) - round(peak * w / total)) <= 1


@given(weight_lists, st.integers(0, 400))
def test_owned_indices_partition_and_match_the_split(weights: list[int], count: int) -> None:
    owned = [owned_indices(w, weights, count) for w in range(len(weights))]

    assert sorted(k for ks in owned for k in ks) == list(range(count))
    assert all(ks == sorted(ks) for ks in owned)
    plans = split_steps([Step(0, count)], weights)
    assert [len(ks) for ks in owned] == [p[0].vus for p in plans]
    # periodic: each period of sum(weights) indices gives worker i exactly weights[i]
    period = sum(weights)
    for w, ks in zip(weights, owned):
        assert len([k for k in ks if k < period * (count // period)]) == w * (count // period)


# --------------------------------------------------------------------------- rotation


def test_rotation_moves_the_first_vu_to_another_worker() -> None:
    assert [owned_indices(w, [1, 1, 1], 4, rotation=1) for w in range(3)] == [[2], [0, 3], [1]]
    assert [owned_indices(w, [1, 1, 1], 4, rotation=5) for w in range(3)] == [[1], [2], [0, 3]]  # 5 % 3 == 2
    one = [Step(0, 1), Step(10, 0)]
    assert [max_vus(p) for p in split_steps(one, [1, 1], rotation=1)] == [0, 1]


@settings(max_examples=300, deadline=None)
@given(
    weights=st.lists(st.integers(1, 7), min_size=1, max_size=8),
    rotation=st.integers(0, 50),
    count=st.integers(0, 120),
)
def test_a_rotated_order_keeps_every_count_within_its_quota(weights: list[int], rotation: int, count: int) -> None:
    total = sum(weights)
    owned = [owned_indices(w, weights, count, rotation=rotation) for w in range(len(weights))]
    assert sorted(k for ks in owned for k in ks) == list(range(count))  # each index owned once
    plans = split_steps([Step(float(v), v) for v in range(count + 1)], weights, rotation=rotation)
    for v in range(count + 1):
        counts = [vus_at(p, float(v)) for p in plans]
        assert sum(counts) == v
        for w, c in enumerate(counts):
            assert math.floor(v * weights[w] / total) <= c <= math.ceil(v * weights[w] / total)
            assert c == sum(1 for k in owned[w] if k < v)  # the split and the ids agree


def test_splitting_over_a_thousand_workers_keeps_no_table_of_their_square() -> None:
    """What a split leaves cached grows with the workers, not with their square: a table of
    every prefix of the owner order was ~8 MB at 1,000 workers (the coordinator's whole memory
    budget at that size is 150 MB), and one is cached per distinct weights."""
    import gc
    import tracemalloc

    from surge.common import schedule

    weights = [1] * 1000
    steps = ramping_vus_steps(0, [Stage(30.0, 1500), Stage(60.0, 1500), Stage(30.0, 0)])
    schedule._owners(tuple(weights))  # the owner order itself (one entry a worker) may stay cached
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plans = split_steps(steps, weights)
        del plans
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000, f"a split over {len(weights)} workers left {kept / 1e6:.1f} MB behind"

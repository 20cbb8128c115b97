"""Per-worker plans add up to the global plan exactly, and every VU id is used once."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from surge.common.arrivals import owned_indices_from
from surge.common.options import Options, ScenarioConfig, parse_options
from surge.common.protocol import ScenarioSlice
from surge.common.schedule import Step, max_vus, owned_below, vus_at
from surge.coordinator.plan import plan_slices, scenario_duration_s

RAW: dict[str, Any] = {
    "scenarios": {
        "purchase": {
            "executor": "ramping-vus",
            "startVUs": 0,
            "stages": [
                {"duration": "30s", "target": 100},
                {"duration": "2m", "target": 100},
                {"duration": "30s", "target": 0},
            ],
            "gracefulRampDown": "10s",
        },
        "browse": {
            "executor": "constant-vus",
            "vus": 13,
            "duration": "1m",
            "startTime": "45s",
            "gracefulStop": "5s",
            "exec": "browse",
            "env": {"PAGE": "home"},
            "tags": {"kind": "reader"},
        },
    },
}

WEIGHTS = [[1] * n for n in range(1, 9)] + [[2, 1, 1], [1, 3], [5, 1, 1, 1], [1, 2, 3, 4, 5], [7, 1, 1, 1, 1, 1, 1, 2]]


def _options(raw: dict[str, Any]) -> Options:
    options, problems = parse_options(raw)
    assert problems == []
    assert options is not None
    return options


OPTIONS = _options(RAW)


def _offsets(steps: list[Step]) -> list[float]:
    """Every step's offset, the midpoints between them, and a moment before and after the plan."""
    at = [s.offset_s for s in steps]
    mids = [(a + b) / 2 for a, b in pairwise(at)]
    return [-1.0, *at, *mids, at[-1] + 1.0]


def _slice_steps(sl: ScenarioSlice) -> list[Step]:
    return [Step(offset, vus) for offset, vus in sl.steps]


def _check_plan(options: Options, weights: list[int]) -> list[list[ScenarioSlice]]:
    plans = plan_slices(options, weights)

    assert len(plans) == len(weights)
    for worker_slices in plans:
        assert [sl.name for sl in worker_slices] == [sc.name for sc in options.scenarios]

    id_base = 0
    all_ids: list[int] = []
    for i, sc in enumerate(options.scenarios):
        glob = sc.steps()
        slices = [worker_slices[i] for worker_slices in plans]
        # the workers' counts add up to the scenario's at every moment
        for t in _offsets(glob):
            assert sum(vus_at(_slice_steps(sl), t) for sl in slices) == vus_at(glob, t), (sc.name, t)
        # each worker's plan starts and ends (its end marker) where the scenario does
        for sl in slices:
            assert sl.steps[0][0] == glob[0].offset_s
            assert sl.steps[-1][0] == glob[-1].offset_s
            offsets = [o for o, _ in sl.steps]
            assert offsets == sorted(set(offsets))
        # ids: one per VU the worker ever runs at once, and the scenario's range exactly
        top = max_vus(glob)
        ids = [vu for sl in slices for vu in sl.vu_ids]
        assert sorted(ids) == list(range(id_base + 1, id_base + top + 1)), sc.name
        for sl in slices:
            assert len(sl.vu_ids) == max_vus(_slice_steps(sl))
            assert sl.vu_ids == sorted(sl.vu_ids)
        all_ids += ids
        id_base += top
        # what the worker needs to run it
        for sl in slices:
            assert sl.executor == sc.executor.value
            assert sl.exec_name == sc.exec_name
            assert sl.start_time_s == sc.start_time_s
            assert sl.duration_s == scenario_duration_s(sc) == glob[-1].offset_s
            assert sl.graceful_stop_s == sc.graceful_stop_s
            assert sl.graceful_ramp_down_s == sc.graceful_ramp_down_s
            assert sl.env == dict(sc.env)
            assert sl.tags == dict(sc.tags)
    assert len(all_ids) == len(set(all_ids)) == options.total_max_vus()
    return plans


@pytest.mark.parametrize("weights", WEIGHTS, ids=str)
def test_worker_plans_add_up_to_the_global_plan(weights: list[int]) -> None:
    _check_plan(OPTIONS, weights)


def test_the_seed_plan_on_four_equal_workers() -> None:
    plans = _check_plan(OPTIONS, [1, 1, 1, 1])
    purchase = [p[0] for p in plans]
    browse = [p[1] for p in plans]

    assert [sl.vu_ids[:3] for sl in purchase] == [[1, 5, 9], [2, 6, 10], [3, 7, 11], [4, 8, 12]]
    assert [len(sl.vu_ids) for sl in purchase] == [25, 25, 25, 25]
    assert [len(sl.vu_ids) for sl in browse] == [4, 3, 3, 3]
    assert sorted(vu for sl in browse for vu in sl.vu_ids) == list(range(101, 114))
    assert purchase[0].steps[:3] == [(0.0, 0), (0.3, 1), (1.5, 2)]
    assert (purchase[0].duration_s, purchase[0].graceful_ramp_down_s, purchase[0].graceful_stop_s) == (180.0, 10.0, 30.0)
    assert browse[0].steps == [(0.0, 4), (60.0, 0)]
    assert (browse[0].start_time_s, browse[0].duration_s, browse[0].graceful_stop_s) == (45.0, 60.0, 5.0)
    assert (browse[0].exec_name, browse[0].env, browse[0].tags) == ("browse", {"PAGE": "home"}, {"kind": "reader"})


def test_one_worker_gets_the_global_plan() -> None:
    (only,) = plan_slices(OPTIONS, [3])

    for sl, sc in zip(only, OPTIONS.scenarios):
        assert _slice_steps(sl) == sc.steps()


def test_a_worker_can_get_no_vus() -> None:
    options = _options({"scenarios": {"tiny": {"executor": "constant-vus", "vus": 1, "duration": "10s"}}})

    plans = _check_plan(options, [1, 1, 1])

    assert [p[0].vu_ids for p in plans] == [[1], [], []]
    assert [p[0].steps for p in plans] == [[(0.0, 1), (10.0, 0)], [(0.0, 0), (10.0, 0)], [(0.0, 0), (10.0, 0)]]


@pytest.mark.parametrize("weights", [[], [0], [1, 0], [2, -1]], ids=str)
def test_plan_slices_refuses_bad_weights(weights: list[int]) -> None:
    with pytest.raises(ValueError, match="weights"):
        plan_slices(OPTIONS, weights)


def test_scenario_duration_without_graceful_stop() -> None:
    purchase, browse = OPTIONS.scenarios

    assert isinstance(purchase, ScenarioConfig)
    assert scenario_duration_s(purchase) == 180.0
    assert scenario_duration_s(browse) == 60.0


# --------------------------------------------------------------------------- random stages

_duration = st.one_of(
    st.integers(0, 120).map(lambda s: f"{s}s"),
    st.integers(0, 5000).map(lambda ms: f"{ms}ms"),
    st.integers(0, 3).map(lambda m: f"{m}m"),
)
_stage = st.fixed_dictionaries({"duration": _duration, "target": st.integers(0, 30)})


@st.composite
def _raw_options(draw: st.DrawFn) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            scenarios[f"ramp{i}"] = {
                "executor": "ramping-vus",
                "startVUs": draw(st.integers(0, 10)),
                "stages": draw(st.lists(_stage, min_size=1, max_size=4)),
                "startTime": draw(_duration),
                "gracefulRampDown": draw(_duration),
            }
        else:
            scenarios[f"const{i}"] = {
                "executor": "constant-vus",
                "vus": draw(st.integers(1, 40)),
                "duration": draw(st.integers(1, 600).map(lambda s: f"{s}s")),
                "gracefulStop": draw(_duration),
            }
    return {"scenarios": scenarios}


@settings(max_examples=100, deadline=None)
@given(raw=_raw_options(), weights=st.lists(st.integers(1, 6), min_size=1, max_size=8))
def test_random_plans_add_up_and_use_each_id_once(raw: dict[str, Any], weights: list[int]) -> None:
    options, problems = parse_options(raw)
    assume(options is not None)  # e.g. a ramp whose start and targets are all 0
    assert options is not None and problems == []

    _check_plan(options, weights)


ABC: dict[str, Any] = {
    "scenarios": {
        "a": {"executor": "constant-vus", "vus": 2, "duration": "10s"},
        "b": {"executor": "constant-vus", "vus": 1, "duration": "10s", "startTime": "10s"},
        "c": {"executor": "constant-vus", "vus": 1, "duration": "10s", "startTime": "10s"},
    },
}


def test_single_vu_scenarios_do_not_all_land_on_worker_0() -> None:
    plans = _check_plan(_options(ABC), [1, 1])
    owners = {sc: [w for w in range(2) if plans[w][i].vu_ids] for i, sc in enumerate("abc")}
    assert owners == {"a": [0, 1], "b": [0], "c": [1]}
    assert [max(len(p[1].vu_ids) + len(p[2].vu_ids), len(p[0].vu_ids)) for p in plans] == [1, 1]


# --------------------------------------------------------------------------- iteration indices

_counted = st.one_of(
    st.builds(lambda v, extra: {"executor": "shared-iterations", "vus": v, "iterations": v + extra},
              st.integers(1, 7), st.integers(0, 40)),  # fmt: skip
    st.builds(lambda r, pre, more: {"executor": "constant-arrival-rate", "rate": r, "duration": "1s",
                                    "preAllocatedVUs": pre, "maxVUs": pre + more},
              st.integers(1, 30), st.integers(1, 5), st.integers(0, 3)),  # fmt: skip
)


@settings(max_examples=200, deadline=None)
@given(first=_counted, second=_counted, weights=st.lists(st.integers(1, 4), min_size=1, max_size=5))
def test_shared_and_arrival_indices_are_owned_once_and_only_by_workers_with_vus(
    first: dict[str, Any], second: dict[str, Any], weights: list[int]
) -> None:
    opts, problems = parse_options({"scenarios": {"a": first, "b": second}})
    assert opts is not None, problems
    per_worker = plan_slices(opts, weights)
    for n, sc in enumerate(opts.scenarios):
        total = sc.iterations if sc.executor.counts_iterations else sc.arrival_plan().total()
        owned: list[int] = []
        for worker in per_worker:
            sl = worker[n]
            mine = list(owned_indices_from(sl.index_period, sl.index_offsets, total))
            assert len(mine) == owned_below(sl.index_period, sl.index_offsets, total) if sl.index_offsets else not mine
            assert not mine or sl.vu_ids  # a worker without a VU owns nothing
            owned += mine
        assert sorted(owned) == list(range(total))
        assert sum(w[n].pre_allocated_vus for w in per_worker) == sc.pre_allocated_vus


@given(st.integers(1, 5000), st.sampled_from([0.25, 1.0, 2.0, 10.0]))
def test_members_take_turns_to_report_a_bounded_number_at_a_time(members: int, interval_s: float) -> None:
    from collections import Counter

    from surge.coordinator.plan import REPORT_SPREAD, REPORTS_PER_PHASE, report_delays_s

    delays = report_delays_s(members, interval_s)
    assert len(delays) == members and delays[0] == 0.0
    assert all(0.0 <= d < interval_s * REPORT_SPREAD for d in delays)
    at_once = Counter(delays)
    assert max(at_once.values()) <= REPORTS_PER_PHASE  # what lands together is bounded, whatever the fleet
    phases = sorted(at_once)
    if members <= REPORTS_PER_PHASE:
        assert phases == [0.0]  # a small fleet is not delayed at all
    else:
        assert len(phases) == -(-members // REPORTS_PER_PHASE)  # no more turns than needed
        gaps = [b - a for a, b in pairwise(phases)]
        assert all(g == pytest.approx(interval_s * REPORT_SPREAD / len(phases)) for g in gaps)  # evenly spread
        assert max(at_once.values()) - min(at_once.values()) <= 1  # and evenly filled


def test_report_phases_refuse_an_empty_fleet_or_a_zero_interval() -> None:
    from surge.coordinator.plan import report_delays_s

    with pytest.raises(ValueError, match="at least one member"):
        report_delays_s(0, 1.0)
    with pytest.raises(ValueError, match="positive interval"):
        report_delays_s(3, 0.0)

"""A lost worker's share, cut at the instant of its loss, adds up on the survivors exactly."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from surge.common.arrivals import owned_indices_from
from surge.common.options import parse_options
from surge.common.protocol import ScenarioSlice
from surge.common.schedule import Step, vus_at
from surge.coordinator.plan import plan_slices
from surge.coordinator.takeover import iterations_key, owed, take_over
from surge.worker.arrivals import arrival_plan


def _plan(raw: dict[str, Any], n: int) -> list[list[ScenarioSlice]]:
    options, problems = parse_options({"scenarios": {"s": raw}})
    assert problems == [] and options is not None
    return plan_slices(options, [1] * n)


def _slices(raw: dict[str, Any], n: int) -> list[list[ScenarioSlice]]:
    assume(parse_options({"scenarios": {"s": raw}})[1] == [])  # generated options may plan no VU at all
    return _plan(raw, n)


def _steps(sl: ScenarioSlice) -> list[Step]:
    return [Step(o, v) for o, v in sl.steps]


_stages = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 30)).map(lambda t: {"duration": f"{t[0]}s", "target": t[1]}),
    min_size=1, max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(_stages, st.integers(0, 10), st.integers(2, 5), st.data())
def test_ramping_vus_the_survivors_run_the_lost_count_from_the_loss_on(
    stages: list[dict[str, Any]], start_vus: int, n: int, data: st.DataObject
) -> None:
    per_worker = _slices({"executor": "ramping-vus", "startVUs": start_vus, "stages": stages}, n)
    lost_i = data.draw(st.integers(0, n - 1))
    (lost,) = per_worker[lost_i]
    at = data.draw(st.floats(0, lost.duration_s + 5, allow_nan=False))
    survivors = n - 1
    shares = take_over([lost], {}, at, [1] * survivors)
    if at >= lost.duration_s:
        assert all(share == [] for share in shares)
        return
    given_ids: list[int] = []
    for share in shares:
        for sl in share:
            given_ids += sl.vu_ids
            assert sl.executor == "ramping-vus" and sl.start_time_s == lost.start_time_s
    assert sorted(given_ids) == sorted(set(given_ids)) and set(given_ids) <= set(lost.vu_ids)
    offsets = [o for o, _ in lost.steps]
    moments = {at, *offsets, *((a + b) / 2 for a, b in zip(offsets, offsets[1:])), (at + offsets[-1]) / 2}
    for t in sorted(m for m in moments if m >= at):
        got = sum(vus_at(_steps(sl), t) for share in shares for sl in share)
        assert got == vus_at(_steps(lost), t), (t, at)
    if at > 0:
        before = at / 2
        assert sum(vus_at(_steps(sl), before) for share in shares for sl in share) == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 50), st.integers(1, 20), st.integers(2, 5), st.data())
def test_arrival_rate_the_survivors_get_exactly_the_lost_arrivals_after_the_loss(
    rate: int, max_vus: int, n: int, data: st.DataObject
) -> None:
    raw = {"executor": "constant-arrival-rate", "rate": rate, "timeUnit": "1s", "duration": "10s",
           "preAllocatedVUs": max_vus, "maxVUs": max_vus}
    per_worker = _slices(raw, n)
    lost_i = data.draw(st.integers(0, n - 1))
    (lost,) = per_worker[lost_i]
    at = data.draw(st.floats(0, 12, allow_nan=False))
    plan = arrival_plan(lost)

    def after(sl: ScenarioSlice) -> set[int]:
        mine = owned_indices_from(sl.index_period, sl.index_offsets, plan.total())
        return {k for k, off in plan.schedule(mine) if sl.start_time_s + off >= sl.skip_before_s}

    expected = after(lost) if lost.vu_ids else set()
    expected = {k for k in expected if lost.start_time_s + plan.offset_s(k) >= at}
    shares = take_over([lost], {}, at, [1] * (n - 1))
    got: list[int] = []
    for share in shares:
        for sl in share:
            assert sl.skip_before_s == at and sl.vu_ids and sl.pre_allocated_vus <= len(sl.vu_ids)
            got += sorted(after(sl))
    if at >= lost.duration_s:
        assert got == []
    else:
        assert sorted(got) == sorted(expected)  # each later arrival once, none before the loss


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["shared-iterations", "per-vu-iterations"]), st.integers(1, 12), st.integers(1, 60),
       st.integers(2, 5), st.data())
def test_iterations_the_survivors_run_what_the_lost_worker_had_not_reported_done(
    executor: str, vus: int, iterations: int, n: int, data: st.DataObject
) -> None:
    per_worker = _slices({"executor": executor, "vus": vus, "iterations": iterations, "maxDuration": "1m"}, n)
    lost_i = data.draw(st.integers(0, n - 1))
    (lost,) = per_worker[lost_i]
    planned = owed(lost)
    done = data.draw(st.integers(0, planned))
    shares = take_over([lost], {"s": done}, 3.0, [1] * (n - 1))
    left = sum(owed(sl) for share in shares for sl in share)
    assert left == planned - done
    for share in shares:
        for sl in share:
            assert sl.executor == "shared-iterations" and sl.vu_ids and set(sl.vu_ids) <= set(lost.vu_ids)
    # the fleet's total: what the others were planned, what the lost one did, what the survivors take
    total = sum(owed(w[0]) for i, w in enumerate(per_worker) if i != lost_i) + done + left
    assert total == (iterations if executor == "shared-iterations" else vus * iterations)


def test_a_second_loss_hands_over_what_the_first_survivor_took_over_too() -> None:
    per_worker = _plan({"executor": "shared-iterations", "vus": 6, "iterations": 60, "maxDuration": "1m"}, 3)
    first = take_over(per_worker[0], {"s": 4}, 2.0, [1, 1])  # worker 0 lost: to workers 1 and 2
    w1 = [*per_worker[1], *first[0]]
    done_w1 = 7
    second = take_over(w1, {"s": done_w1}, 5.0, [1])  # then worker 1: everything it still owed, to worker 2
    assert sum(owed(sl) for sl in second[0]) == sum(owed(sl) for sl in w1) - done_w1
    assert iterations_key("s") == "iterations{scenario:s}"


def test_nothing_is_handed_over_once_a_scenario_is_over() -> None:
    per_worker = _plan({"executor": "constant-vus", "vus": 4, "duration": "5s"}, 2)
    assert take_over(per_worker[0], {}, 5.0, [1]) == [[]]
    assert take_over(per_worker[0], {}, 4.0, [1])[0][0].steps == [(0.0, 0), (4.0, 2), (5.0, 0)]

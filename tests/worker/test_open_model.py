"""The iteration and arrival-rate executors on virtual time: exact instants, drops, growth, graceful stop."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from surge.common.metrics import CounterSink, TrendSink
from surge.common.options import parse_options
from surge.common.protocol import ScenarioSlice
from surge.coordinator.plan import plan_slices
from surge.worker.arrivals import ArrivalRateVUs
from surge.worker.iterations import IterationVUs
from surge.worker.recorder import Recorder
from surge.worker.vu import START_SLICE, VU, ErrorLog
from tests.virtual_time import run_virtual

Body = Callable[[VU], Awaitable[Any]]


def slices(scenario: dict[str, Any], weights: list[int] | None = None) -> list[ScenarioSlice]:
    opts, problems = parse_options({"scenarios": {"s": scenario}})
    assert opts is not None, problems
    return [worker[0] for worker in plan_slices(opts, weights or [1])]


class Played:
    def __init__(self) -> None:
        self.starts: list[tuple[float, int, int | None, int]] = []  # (time, vu id, iteration_in_test, vu.iteration)
        self.totals: dict[str, float] = {}
        self.trends: dict[str, int] = {}
        self.trend_max: dict[str, float] = {}
        self.vus: list[tuple[float, int]] = []
        self.allocated: list[int] = []
        self.ended_at = 0.0
        self.executor: Any = None


def play(plan: ScenarioSlice, body: Body, *, stop_at: float | None = None) -> Played:
    out = Played()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rec = Recorder(clock=loop.time, metric_defs={})

        async def fn(vu: VU) -> None:
            out.starts.append((loop.time(), vu.id, vu.iteration_in_test, vu.iteration))
            await body(vu)

        kw: dict[str, Any] = dict(errors=ErrorLog(), on_abort=lambda e: None,
                                  on_vus=lambda n: out.vus.append((loop.time(), n)))  # fmt: skip
        make = lambda i: VU(i, "s", {}, None, {"scenario": "s"})  # noqa: E731
        if plan.executor.endswith("arrival-rate"):
            ex: Any = ArrivalRateVUs(plan, fn, make, rec, on_allocated=lambda: out.allocated.append(ex.allocated), **kw)
        else:
            ex = IterationVUs(plan, fn, make, rec, **kw)
        out.executor = ex
        if stop_at is not None:
            loop.call_at(stop_at, ex.stop_now)
        await ex.run(loop.time())
        out.ended_at = loop.time()
        series, _ = rec.flush()
        for name, sink in series.items():
            if isinstance(sink, CounterSink):
                out.totals[name] = sink.total
            elif isinstance(sink, TrendSink):
                values = sink.values(1.0, ("count", "max"))
                out.trends[name] = int(values["count"])
                out.trend_max[name] = float(values["max"])

    run_virtual(main())
    return out


def sleeping(seconds: float) -> Body:
    return lambda vu: asyncio.sleep(seconds)


# --------------------------------------------------------------------------- iterations


@pytest.mark.parametrize("executor", ["per-vu-iterations", "shared-iterations"])
def test_iteration_vus_take_their_first_step_a_slice_per_turn_of_the_loop(executor: str) -> None:
    """As looping VUs (tests/worker/test_vu.py): 600 VUs start together, 256 of them per turn."""
    n = 600
    turns = [0]
    first: dict[int, int] = {}

    async def body(vu: VU) -> None:
        loop = asyncio.get_running_loop()
        if not first:  # count the loop's turns from the first slice on

            def tick() -> None:
                turns[0] += 1
                if len(first) < n:
                    loop.call_soon(tick)

            loop.call_soon(tick)
        first.setdefault(vu.id, turns[0])
        await asyncio.sleep(1.0)

    iterations = 1 if executor == "per-vu-iterations" else n  # each VU one, or the fleet n
    out = play(slices({"executor": executor, "vus": n, "iterations": iterations})[0], body)
    per_turn = sorted(collections.Counter(first.values()).items())
    assert [count for _, count in per_turn] == [START_SLICE, START_SLICE, n - 2 * START_SLICE]
    assert out.totals["iterations"] == n


def test_per_vu_iterations_runs_each_vu_its_iterations_back_to_back() -> None:
    (plan,) = slices({"executor": "per-vu-iterations", "vus": 2, "iterations": 3})
    p = play(plan, sleeping(0.5))
    assert sorted(p.starts) == [
        (0.0, 1, 0, 0), (0.0, 2, 3, 0), (0.5, 1, 1, 1), (0.5, 2, 4, 1), (1.0, 1, 2, 2), (1.0, 2, 5, 2),
    ]  # fmt: skip
    assert p.totals["iterations"] == 6 and p.ended_at == 1.5


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_per_vu_iterations_split_is_exact_and_numbers_unique(workers: int) -> None:
    parts = slices({"executor": "per-vu-iterations", "vus": 5, "iterations": 4}, [1] * workers)
    played = [play(plan, sleeping(0.1)) for plan in parts]
    assert sum(p.totals.get("iterations", 0) for p in played) == 20
    numbers = sorted(n for p in played for _, _, n, _ in p.starts)
    assert numbers == list(range(20))
    assert sorted(i for p in played for _, i, _, _ in p.starts) == sorted([1, 2, 3, 4, 5] * 4)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shared_iterations_run_exactly_the_total_numbered_once(workers: int) -> None:
    parts = slices({"executor": "shared-iterations", "vus": 4, "iterations": 23}, [1] * workers)
    played = [play(plan, sleeping(0.1)) for plan in parts]
    assert sum(p.totals.get("iterations", 0) for p in played) == 23
    assert sorted(n for p in played for _, _, n, _ in p.starts) == list(range(23))


def test_shared_iterations_go_to_whichever_vu_is_free() -> None:
    (plan,) = slices({"executor": "shared-iterations", "vus": 2, "iterations": 5})
    p = play(plan, lambda vu: asyncio.sleep(1.0 if vu.id == 1 else 0.25))
    by_vu = {i: [n for _, v, n, _ in p.starts if v == i] for i in (1, 2)}
    assert by_vu == {1: [0], 2: [1, 2, 3, 4]} and p.totals["iterations"] == 5


def test_max_duration_stops_new_iterations_and_graceful_stop_interrupts_the_rest() -> None:
    (plan,) = slices({"executor": "per-vu-iterations", "vus": 1, "iterations": 100,
                      "maxDuration": "2s", "gracefulStop": "1s"})  # fmt: skip
    p = play(plan, sleeping(0.75))  # starts 0, .75, 1.5; the one from 1.5 ends 2.25 < 3: counted
    assert [t for t, *_ in p.starts] == [0.0, 0.75, 1.5] and p.totals["iterations"] == 3
    assert "interrupted_iterations" not in p.totals
    p = play(plan, sleeping(1.6))  # starts 0, 1.6; the second would end 3.2 > 3: cut off at 3
    assert [t for t, *_ in p.starts] == [0.0, 1.6] and p.totals["iterations"] == 1
    assert p.totals["interrupted_iterations"] == 1 and p.trends["iteration_duration"] == 1
    assert p.ended_at == 3.0 and p.executor.interrupted == 1
    assert p.totals["dropped_iterations"] == 98  # k6: planned minus attempted


def test_shared_iterations_left_at_max_duration_are_dropped() -> None:
    (plan,) = slices({"executor": "shared-iterations", "vus": 2, "iterations": 10, "maxDuration": "1s"})
    p = play(plan, sleeping(0.4))  # each VU starts at 0, .4, .8: 6 attempted, all done by 1.2
    assert p.totals["iterations"] == 6 and p.totals["dropped_iterations"] == 4
    p = play(plan, sleeping(0.1))
    assert p.totals["iterations"] == 10 and "dropped_iterations" not in p.totals


# --------------------------------------------------------------------------- arrival rate


def test_constant_arrival_rate_starts_on_schedule_whatever_the_server_does() -> None:
    (plan,) = slices({"executor": "constant-arrival-rate", "rate": 4, "duration": "1s", "preAllocatedVUs": 4})
    p = play(plan, sleeping(0.9))  # each takes longer than the gap: 4 VUs busy at once, none dropped
    assert [t for t, *_ in p.starts] == [0.0, 0.25, 0.5, 0.75]
    assert [n for _, _, n, _ in p.starts] == [0, 1, 2, 3]
    assert p.totals["iterations"] == 4 and "dropped_iterations" not in p.totals
    assert p.trends["iteration_duration_from_schedule"] == 4


def test_busy_vus_mean_dropped_iterations_never_delayed_ones() -> None:
    (plan,) = slices({"executor": "constant-arrival-rate", "rate": 10, "duration": "1s", "preAllocatedVUs": 2})
    p = play(plan, sleeping(0.35))  # VU a: 0 -> .35, .4 -> .75, .8 ->; VU b: .1 -> .45, .5 -> .85, .9 ->
    assert [round(t, 9) for t, *_ in p.starts] == [0.0, 0.1, 0.4, 0.5, 0.8, 0.9]
    assert p.totals["dropped_iterations"] == 4  # 0.2, 0.3, 0.6, 0.7
    assert p.totals["iterations"] == 6


def test_vus_grow_up_to_max_vus_then_drop() -> None:
    (plan,) = slices({"executor": "constant-arrival-rate", "rate": 10, "duration": "1s",
                      "preAllocatedVUs": 1, "maxVUs": 3})  # fmt: skip
    p = play(plan, sleeping(0.25))
    # 0: a; .1: b (new); .2: c (new); .3: a again (free since .25); .4: b; ...
    assert len(p.starts) == 10 and "dropped_iterations" not in p.totals
    assert p.allocated == [2, 3] and p.executor.allocated == 3  # the pre-allocated one came with the executor
    p = play(plan, sleeping(0.45))  # each VU busy for 4.5 gaps: 3 VUs cannot keep up
    assert p.allocated == [2, 3]
    assert p.totals["iterations"] + p.totals["dropped_iterations"] == 10
    assert p.totals["dropped_iterations"] > 0


def test_graceful_stop_of_an_arrival_rate_scenario() -> None:
    (plan,) = slices({"executor": "constant-arrival-rate", "rate": 2, "duration": "1s",
                      "preAllocatedVUs": 2, "gracefulStop": "0.5s"})  # fmt: skip
    p = play(plan, sleeping(0.8))  # 0 -> .8 and .5 -> 1.3, both before the hard end at 1.5
    assert p.totals["iterations"] == 2 and "interrupted_iterations" not in p.totals
    p = play(plan, sleeping(1.2))  # 0 -> 1.2 counted; .5 -> 1.7 cut at 1.5
    assert p.totals["iterations"] == 1 and p.totals["interrupted_iterations"] == 1
    assert p.ended_at == 1.5


def test_corrected_latency_counts_from_the_planned_start() -> None:
    (plan,) = slices({"executor": "constant-arrival-rate", "rate": 1, "duration": "2s", "preAllocatedVUs": 1})
    p = play(plan, sleeping(0.5))
    assert p.trends["iteration_duration_from_schedule"] == 2 and p.totals["iterations"] == 2
    assert p.trend_max["iteration_duration_from_schedule"] == pytest.approx(500.0)


def test_ramping_arrival_rate_follows_the_integral() -> None:
    (plan,) = slices({"executor": "ramping-arrival-rate", "startRate": 0, "preAllocatedVUs": 5,
                      "stages": [{"duration": "0s", "target": 4}, {"duration": "1s", "target": 4}]})  # fmt: skip
    p = play(plan, sleeping(0.1))
    assert [t for t, *_ in p.starts] == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_arrival_rate_split_starts_exactly_the_plan_across_workers(workers: int) -> None:
    scenario = {"executor": "ramping-arrival-rate", "startRate": 3, "timeUnit": "500ms", "preAllocatedVUs": 6,
                "stages": [{"duration": "1s", "target": 9}, {"duration": "0s", "target": 2}, {"duration": "1.5s", "target": 2}]}
    (whole,) = slices(scenario)
    expected = [t for t, *_ in play(whole, sleeping(0.05)).starts]
    played = [play(plan, sleeping(0.05)) for plan in slices(scenario, [1] * workers)]
    merged = sorted((n, t) for p in played for t, _, n, _ in p.starts)
    assert [t for _, t in merged] == expected and [n for n, _ in merged] == list(range(len(expected)))


def test_stop_now_ends_an_arrival_rate_scenario_at_once() -> None:
    (plan,) = slices({"executor": "constant-arrival-rate", "rate": 1, "duration": "10s", "preAllocatedVUs": 1})
    p = play(plan, sleeping(0.5), stop_at=2.25)
    assert len(p.starts) == 3 and p.ended_at == 2.25
    assert p.executor.interrupted == 1 and p.totals["interrupted_iterations"] == 1
    assert p.totals["iterations"] == 2 and p.vus[-1] == (2.25, 0)


@pytest.mark.parametrize(
    ("scenario", "weights"),
    [
        ({"executor": "shared-iterations", "vus": 1, "iterations": 3}, [1, 1]),
        ({"executor": "shared-iterations", "vus": 2, "iterations": 9}, [1, 1, 1]),
        ({"executor": "shared-iterations", "vus": 3, "iterations": 10}, [3, 1, 1]),
    ],
)
def test_a_worker_without_a_vu_owns_no_shared_iteration(scenario: dict[str, Any], weights: list[int]) -> None:
    played = [play(plan, sleeping(0.1)) for plan in slices(scenario, weights)]
    assert sum(p.totals.get("iterations", 0) for p in played) == scenario["iterations"]


def test_a_worker_without_a_vu_owns_no_arrival() -> None:
    scenario = {"executor": "constant-arrival-rate", "rate": 10, "duration": "1s", "preAllocatedVUs": 1}
    played = [play(plan, sleeping(0.01)) for plan in slices(scenario, [1, 1])]
    assert sum(p.totals.get("iterations", 0) for p in played) == 10
    assert all("dropped_iterations" not in p.totals for p in played)

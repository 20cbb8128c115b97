"""The looping-VU executor on virtual time: exact instants, no sleeping, no tolerances."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import math
from pathlib import Path
from typing import Any

import pytest

from surge.common.metrics import BUILTIN_METRICS, CounterSink, MetricType
from surge.common.protocol import ScenarioSlice
from surge.common.schedule import Stage, ramping_vus_steps
from surge.worker.recorder import Recorder
from surge.common.api import AbortTest
from surge.worker.vu import START_SLICE, VU, ErrorLog, LoopingVUs
from tests.virtual_time import run_virtual


def _slice(steps: list[tuple[float, int]], duration_s: float, *, ramp_down_s: float = 30.0,
           stop_s: float = 30.0, n_vus: int | None = None) -> ScenarioSlice:
    top = n_vus if n_vus is not None else max(v for _, v in steps)
    return ScenarioSlice(
        name="s", executor="ramping-vus", exec_name="default", start_time_s=0.0, duration_s=duration_s,
        graceful_stop_s=stop_s, graceful_ramp_down_s=ramp_down_s, steps=steps, vu_ids=list(range(1, top + 1)),
    )


class Harness:
    """Runs one executor on the virtual loop and keeps what a test wants to look at."""

    def __init__(self, plan: ScenarioSlice, body: Any) -> None:
        self.plan = plan
        self.body = body
        self.starts: list[tuple[float, int, int]] = []  # (time, vu id, iteration)
        self.vus: list[tuple[float, int]] = []
        self.aborted: list[AbortTest] = []
        self.errors = ErrorLog()
        self.recorder: Recorder | None = None
        self.executor: LoopingVUs | None = None
        self.ended_at = 0.0

    async def main(self, stop_at: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.recorder = Recorder(clock=loop.time, metric_defs={})

        async def fn(vu: VU) -> None:
            self.starts.append((loop.time(), vu.id, vu.iteration))
            await self.body(vu)

        def on_abort(exc: AbortTest) -> None:  # as the runner does: one abort stops the run
            self.aborted.append(exc)
            ex.stop_now()

        ex = self.executor = LoopingVUs(
            self.plan, fn, lambda i: VU(i, "s", {}, None, {"scenario": "s"}), self.recorder,
            errors=self.errors, on_abort=on_abort,
            on_vus=lambda n: self.vus.append((loop.time(), n)),
        )
        if stop_at is not None:
            loop.call_at(stop_at, ex.stop_now)
        await ex.run(loop.time())
        self.ended_at = loop.time()

    def iterations(self) -> float:
        assert self.recorder is not None
        series, _ = self.recorder.flush()
        sink = series.get("iterations")
        return sink.total if sink is not None else 0.0  # type: ignore[union-attr]


def test_vus_start_at_planned_instants_and_ramp_down_lifo() -> None:
    # 0 -> 10 VUs over 10 s, hold 10 s, 10 -> 0 over 10 s; every iteration takes 0.77 s (never a tie with a step instant).
    steps = ramping_vus_steps(0, [Stage(10, 10), Stage(10, 10), Stage(10, 0)])
    h = Harness(_slice([(s.offset_s, s.vus) for s in steps], 30.0), lambda vu: asyncio.sleep(0.77))
    run_virtual(h.main())

    first_start = {}
    for t, vu_id, it in h.starts:
        if it == 0:
            first_start[vu_id] = t
    assert first_start == {k: float(k) for k in range(1, 11)}
    # VU k is ramped down at 31 - k (last in, first out) and finishes the iteration it is in:
    # it starts iterations at k, k+0.77, ... while still active.
    for k in range(1, 11):
        starts = [t for t, vu_id, _ in h.starts if vu_id == k]
        assert len(starts) == math.ceil((31 - 2 * k) / 0.77)
        assert max(starts) < 31 - k
    assert h.iterations() == len(h.starts)  # every started iteration completed (grace 30 s)
    assert h.executor is not None and h.executor.interrupted == 0
    assert max(n for _, n in h.vus) == 10
    assert h.vus[-1][1] == 0


def test_graceful_ramp_down_and_stop_interrupt_at_their_deadlines() -> None:
    # Two VUs, one ramped down at 10 s with 1 s of grace; the stages end at 19 s with none.
    h = Harness(_slice([(0.0, 2), (10.0, 1)], 19.0, ramp_down_s=1.0, stop_s=0.0), lambda vu: asyncio.sleep(4))
    run_virtual(h.main())
    # VU 2: iterations at 0, 4 complete; the one from 8 is cut at 11. VU 1: 0, 4, 8, 12 complete; 16 cut at 19.
    assert sorted((vu, t) for t, vu, _ in h.starts) == [
        (1, 0.0), (1, 4.0), (1, 8.0), (1, 12.0), (1, 16.0), (2, 0.0), (2, 4.0), (2, 8.0),
    ]
    assert h.iterations() == 6
    assert h.executor is not None and h.executor.interrupted == 2
    assert (11.0, 1) in h.vus  # VU 2's task ended exactly at its deadline
    assert h.ended_at == 19.0


def test_a_finishing_vu_is_reactivated_not_restarted() -> None:
    # Down to 0 at 1.0 while mid-iteration, back to 1 at 1.5: the same task goes on.
    h = Harness(_slice([(0.0, 1), (1.0, 0), (1.5, 1)], 3.0, ramp_down_s=5.0, stop_s=5.0), lambda vu: asyncio.sleep(0.8))
    run_virtual(h.main())
    assert [it for _, _, it in h.starts] == list(range(len(h.starts)))
    assert all(n == 1 for t, n in h.vus if 0 < t < 3.0)  # never dropped to 0 VUs in between


def test_stop_now_interrupts_everything_at_once() -> None:
    steps = ramping_vus_steps(5, [Stage(100, 5)])
    h = Harness(_slice([(s.offset_s, s.vus) for s in steps], 100.0), lambda vu: asyncio.sleep(3))
    run_virtual(h.main(stop_at=7.5))
    assert h.ended_at == 7.5
    assert h.executor is not None and h.executor.interrupted == 5
    assert h.iterations() == 10  # 0->3, 3->6 for each of 5 VUs


def test_script_errors_end_the_iteration_only(capsys: pytest.CaptureFixture[str]) -> None:
    async def body(vu: VU) -> None:
        await asyncio.sleep(1)
        if vu.iteration % 2:
            raise ValueError("boom")

    h = Harness(_slice([(0.0, 1)], 10.0, stop_s=0.0), body)
    run_virtual(h.main())
    assert h.errors.count == 5
    assert h.iterations() == 10
    assert "ValueError: boom" in capsys.readouterr().err


def test_abort_test_stops_the_executor() -> None:
    async def body(vu: VU) -> None:
        await asyncio.sleep(1)
        if vu.iteration == 2:
            raise AbortTest("enough")

    h = Harness(_slice([(0.0, 3)], 100.0), body)
    run_virtual(h.main())
    assert len(h.aborted) >= 1
    assert h.ended_at == 3.0


HERE = str(Path(__file__).resolve().parent)  # plays the scenario's directory for ErrorLog


def _line_of(fn: Any, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_script_errors_are_counted_in_surge_script_errors() -> None:
    async def body(vu: VU) -> None:
        await asyncio.sleep(1)
        if vu.iteration % 2:
            raise ValueError("boom")

    h = Harness(_slice([(0.0, 1)], 10.0, stop_s=0.0), body)
    run_virtual(h.main())
    assert h.recorder is not None
    series, _ = h.recorder.flush()
    errors = series["surge_script_errors"]
    assert isinstance(errors, CounterSink) and errors.total == 5
    assert BUILTIN_METRICS["surge_script_errors"].type is MetricType.COUNTER


def test_each_kind_of_error_is_shown_three_times_then_summarised(capsys: pytest.CaptureFixture[str]) -> None:
    async def body(vu: VU) -> None:
        await asyncio.sleep(1)
        if vu.iteration < 10:
            {}[f"key{vu.iteration}"]  # KeyError, another message each time: still one kind
        elif vu.iteration < 12:
            1 / 0

    h = Harness(_slice([(0.0, 1)], 20.0, stop_s=0.0), body)
    h.errors = ErrorLog(root=HERE)
    run_virtual(h.main())
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 3 + 2
    assert "KeyError: 'key0'" in err and "KeyError: 'key2'" in err and "'key3'" not in err
    key_line, div_line = _line_of(body, "{}[f\"key"), _line_of(body, "1 / 0")
    h.errors.print_summary()
    assert capsys.readouterr().err.splitlines() == [
        f"surge worker: KeyError at test_vu.py:{key_line} in body: 10 times (first 3 shown above, 7 more like this)",
        f"surge worker: ZeroDivisionError at test_vu.py:{div_line} in body: 2 times (all shown above)",
    ]
    assert h.errors.count == 12


def test_the_kinds_tracked_are_bounded_the_rest_summarised_as_other(capsys: pytest.CaptureFixture[str]) -> None:
    log = ErrorLog(root=HERE, max_kinds=2)
    vu = VU(1, "s", {}, None, {})
    for exc_type in (KeyError, ValueError, TypeError, OSError, TypeError):
        try:
            raise exc_type("x")
        except Exception as exc:  # noqa: BLE001
            log.report(vu, exc)
    capsys.readouterr()
    log.print_summary()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[0].startswith("surge worker: KeyError") and lines[1].startswith("surge worker: ValueError")
    assert lines[2] == "surge worker: 3 more script errors of other kinds (not shown; only 2 kinds are tracked)"


def test_a_module_missing_inside_an_iteration_gets_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    async def body(vu: VU) -> None:
        await asyncio.sleep(1)
        import surge_no_such_module_for_tests  # noqa: F401

    h = Harness(_slice([(0.0, 1)], 5.0, stop_s=0.0), body)
    h.errors = ErrorLog(root=HERE)
    run_virtual(h.main())
    err = capsys.readouterr().err
    assert err.count("ModuleNotFoundError") == 3
    assert err.count("hint:") == 1
    assert "import it at the top of the scenario file" in err and "install it on every load machine" in err


def _two_idle_vus(loop: asyncio.AbstractEventLoop, duration_s: float) -> LoopingVUs:
    """Two VUs that sleep through a slice of ``duration_s`` with gracefulStop 0."""
    return LoopingVUs(
        _slice([(0.0, 2)], duration_s, stop_s=0.0), lambda vu: asyncio.sleep(10),
        lambda i: VU(i, "s", {}, None, {"scenario": "s"}), Recorder(clock=loop.time, metric_defs={}),
        errors=ErrorLog(), on_abort=lambda exc: None, on_vus=lambda n: None,
    )


def test_a_vu_stopped_with_no_grace_left_is_not_live_at_that_instant() -> None:
    # Scenarios back to back: at the instant one ends with gracefulStop 0, the next may start
    # its own VUs, and a sample of vus taken then must not count the ending ones.
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ex = _two_idle_vus(loop, 100.0)

        def ramp_down_now() -> None:
            ex._resize(0, loop.time())  # the deadline is this very instant
            seen.append((ex.running, ex.live))

        loop.call_at(3.0, ramp_down_now)
        loop.call_at(3.0 + 1e-9, lambda: seen.append((ex.running, ex.live)))
        await ex.run(loop.time())

    run_virtual(main())
    assert seen[0] == (2, 0)  # both tasks still exist, neither is live
    assert seen[1] == (0, 0)


def test_past_the_hard_end_no_vu_is_live_whatever_callback_the_loop_runs_first() -> None:
    # A late loop may serve the vus sampler's tick before the callback that ends the slice
    # (both due at the same instant): the sample must not count VUs the plan has ended.
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ex = _two_idle_vus(loop, 2.0)
        t0 = loop.time()
        loop.call_at(t0 + 1.0, lambda: seen.append((ex.running, ex.live)))
        # scheduled before run() schedules its own end: the loop runs this one first
        loop.call_at(t0 + 2.0, lambda: seen.append((ex.running, ex.live)))
        await ex.run(t0)

    run_virtual(main())
    assert seen[0] == (2, 2)
    assert seen[1] == (2, 0)  # the tasks still exist; by the plan, none is live


def test_a_vus_tick_counts_by_the_plans_instants_not_by_which_timer_fired_first() -> None:
    # A loop may fire the start of the next scenario a millisecond early; a tick at that
    # instant counts neither the early starter's VUs before its start nor the ender's after.
    seen: list[tuple[int, int, int, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ex = _two_idle_vus(loop, 2.0)
        t0 = loop.time()
        loop.call_at(t0 + 1.0, lambda: seen.append(
            (ex.live_at(t0 - 0.001), ex.live_at(t0), ex.live_at(t0 + 1.999), ex.live_at(t0 + 2.0))))
        await ex.run(t0)

    run_virtual(main())
    assert seen == [(0, 2, 2, 0)]


def test_iteration_in_test_is_unique_across_workers_for_looping_vus() -> None:
    # Two workers of one scenario: worker w owns the residues {w} of period 2.
    numbers: list[int | None] = []

    for offsets in ([0], [1]):
        plan = dataclasses.replace(_slice([(0.0, 2)], 3.0, stop_s=0.0), index_period=2, index_offsets=offsets)

        async def body(vu: VU) -> None:
            numbers.append(vu.iteration_in_test)
            await asyncio.sleep(1)

        run_virtual(Harness(plan, body).main())
    assert None not in numbers
    assert len(numbers) == len(set(numbers)) == 12  # 2 workers x 2 VUs x 3 iterations, none shared


def test_vus_activated_together_take_their_first_step_a_slice_per_turn_of_the_loop() -> None:
    """1,000 VUs live from the same instant, but their first iterations begin START_SLICE per
    turn of the loop, so that what the first ones sent can be read between two slices; a VU
    stopped before its turn ends without an interrupted iteration."""
    n = 1_000
    turns = [0]
    first: dict[int, int] = {}  # vu id -> the loop turn of its first iteration

    async def body(vu: VU) -> None:
        first.setdefault(vu.id, turns[0])
        await asyncio.sleep(10.0)

    h = Harness(_slice([(0.0, n)], 5.0, stop_s=0.0), body)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:  # one per turn of the loop, until every VU has begun
            turns[0] += 1
            if len(first) < n:
                loop.call_soon(tick)

        loop.call_soon(tick)
        await h.main()

    run_virtual(main())
    assert sorted(first) == list(range(1, n + 1))
    per_turn: dict[int, int] = {}
    for turn in first.values():
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert max(per_turn.values()) == START_SLICE
    assert len(per_turn) == math.ceil(n / START_SLICE)
    assert [vu_id for vu_id, _ in sorted(first.items(), key=lambda kv: (kv[1], kv[0]))] == list(range(1, n + 1))
    assert h.vus[0] == (0.0, n)  # every one of them live from the first instant, as in k6
    assert h.executor is not None and h.executor.interrupted == n  # each cut at the end, in its sleep


def test_a_vu_stopped_before_its_slices_turn_interrupts_nothing() -> None:
    started: list[int] = []
    h: Harness

    async def body(vu: VU) -> None:
        if not started:  # the first slice runs; the stop comes before the second one's turn
            assert h.executor is not None
            asyncio.get_running_loop().call_soon(h.executor.stop_now)
        started.append(vu.id)
        await asyncio.sleep(10.0)

    h = Harness(_slice([(0.0, 2 * START_SLICE)], 5.0), body)
    run_virtual(h.main())
    assert len(started) == START_SLICE
    assert h.executor is not None and h.executor.interrupted == START_SLICE  # only the first slice's
    assert h.executor.running == 0


def test_vus_stopped_in_the_turn_they_were_activated_end_and_interrupt_nothing() -> None:
    """A Stop (or another scenario's abort) that lands in the very turn the VUs were activated,
    before any of them took a first step: their tasks are cancelled unstarted, so no code of
    theirs runs, and the executor must still see them gone (it waited for them forever)."""
    started: list[int] = []

    async def body(vu: VU) -> None:
        started.append(vu.id)
        await asyncio.sleep(10.0)

    h = Harness(_slice([(0.0, 3)], 5.0), body)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: h.executor.stop_now() if h.executor else None)  # runs before the VUs' first steps
        await h.main()

    run_virtual(main())
    assert started == []
    assert h.executor is not None and (h.executor.running, h.executor.interrupted) == (0, 0)
    assert h.vus[-1][1] == 0

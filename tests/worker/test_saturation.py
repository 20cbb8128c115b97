"""The saturation monitor on virtual time: a stalled loop shows up as lag and a saturated second."""

from __future__ import annotations

import asyncio

import pytest

from surge.common.metrics import BUILTIN_METRICS, MetricType, RateSink, TrendSink
from surge.worker import saturation
from surge.worker.recorder import Recorder
from tests.virtual_time import VirtualTimeLoop, run_virtual


async def _watch(seconds: float, stall_at: float | None = None, stall_s: float = 0.0) -> Recorder:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    rec = Recorder(clock=loop.time, metric_defs={})
    if stall_at is not None:
        def stall() -> None:  # a callback that "takes" stall_s of the loop's time
            loop.now += stall_s

        loop.call_at(stall_at, stall)
    task = loop.create_task(saturation.monitor(rec, clock=loop.time))
    await asyncio.sleep(seconds)
    task.cancel()
    return rec


def test_an_idle_loop_is_on_time_and_not_saturated() -> None:
    rec = run_virtual(_watch(3.05))
    series, _ = rec.flush()
    lag, sat, cpu = series["surge_loop_lag"], series["surge_saturated"], series["surge_cpu"]
    assert isinstance(lag, TrendSink) and lag.sketch.count == 30 and lag.sketch.max == 0.0
    assert isinstance(sat, RateSink) and (sat.passes, sat.total) == (0, 3)
    assert isinstance(cpu, TrendSink) and cpu.sketch.count == 3


def test_a_stalled_loop_is_seen_as_lag_and_one_saturated_second() -> None:
    rec = run_virtual(_watch(3.05, stall_at=1.05, stall_s=0.2))
    series, _ = rec.flush()
    lag, sat = series["surge_loop_lag"], series["surge_saturated"]
    assert isinstance(lag, TrendSink) and lag.sketch.max == pytest.approx(150.0)  # woke at 1.25, due 1.1
    assert isinstance(sat, RateSink) and sat.passes == 1


def test_cpu_is_a_share_of_one_core_per_second_of_the_injected_wall_clock() -> None:
    async def main() -> Recorder:
        loop = asyncio.get_running_loop()
        rec = Recorder(clock=loop.time, metric_defs={})
        # a process that burns a quarter of a core: 0.25 s of CPU per second of (virtual) wall time
        task = loop.create_task(saturation.monitor(rec, clock=loop.time, cpu_clock=lambda: loop.time() * 0.25))
        await asyncio.sleep(4.05)
        task.cancel()
        return rec

    series, _ = run_virtual(main()).flush()
    cpu = series["surge_cpu"]
    assert isinstance(cpu, TrendSink) and cpu.sketch.count == 4
    assert (cpu.sketch.min, cpu.sketch.max) == (0.25, 0.25)  # a share of one core, not a percentage
    assert BUILTIN_METRICS["surge_cpu"].type is MetricType.TREND


def test_lag_is_measured_on_the_injected_clock_not_the_loops_cached_time() -> None:
    async def main() -> Recorder:
        loop = asyncio.get_running_loop()
        rec = Recorder(clock=loop.time, metric_defs={})
        # uvloop's loop.time() is cached per loop iteration: a callback that takes 0.4 ms moves
        # only the fine clock, and the monitor's next wake-up is that late
        extra = [0.0]

        def busy() -> None:
            extra[0] += 0.0004

        loop.call_at(0.55, busy)
        task = loop.create_task(saturation.monitor(rec, clock=lambda: loop.time() + extra[0]))
        await asyncio.sleep(1.05)
        task.cancel()
        return rec

    series, _ = run_virtual(main()).flush()
    lag = series["surge_loop_lag"]
    assert isinstance(lag, TrendSink) and lag.sketch.count == 10
    assert lag.sketch.max == pytest.approx(0.4)  # woke at 0.6 by the loop's clock, 0.6004 in truth

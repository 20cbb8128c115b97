"""The saturation monitor on virtual time: a stalled loop shows up as lag and a saturated second."""

from __future__ import annotations

import asyncio

import pytest

from surge.common.metrics import GaugeSink, RateSink, TrendSink
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
    task = loop.create_task(saturation.monitor(rec))
    await asyncio.sleep(seconds)
    task.cancel()
    return rec


def test_an_idle_loop_is_on_time_and_not_saturated() -> None:
    rec = run_virtual(_watch(3.05))
    series, _ = rec.flush()
    lag, sat, cpu = series["surge_loop_lag"], series["surge_saturated"], series["surge_cpu"]
    assert isinstance(lag, TrendSink) and lag.sketch.count == 30 and lag.sketch.max == 0.0
    assert isinstance(sat, RateSink) and (sat.passes, sat.total) == (0, 3)
    assert isinstance(cpu, GaugeSink) and not cpu.is_empty()


def test_a_stalled_loop_is_seen_as_lag_and_one_saturated_second() -> None:
    rec = run_virtual(_watch(3.05, stall_at=1.05, stall_s=0.2))
    series, _ = rec.flush()
    lag, sat = series["surge_loop_lag"], series["surge_saturated"]
    assert isinstance(lag, TrendSink) and lag.sketch.max == pytest.approx(150.0)  # woke at 1.25, due 1.1
    assert isinstance(sat, RateSink) and sat.passes == 1

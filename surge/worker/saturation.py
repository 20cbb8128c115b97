"""Is this worker itself the bottleneck? Loop lag and CPU, sampled while the run goes.

A load generator that is out of CPU, or whose event loop is late, measures its own queueing:
a response that arrived on time sits in the socket until the loop gets to it, and the latency
recorded includes that wait. The monitor makes that visible instead of silently wrong:

* ``surge_loop_lag`` (trend, ms): every 100 ms the monitor asks to wake up; how late it
  actually woke is the loop's delay at that moment (a healthy loop: well under 1 ms). Both
  the planned instant and the wake-up are read from ``time.perf_counter()``, not from
  ``loop.time()``: uvloop caches the loop's time once per loop iteration, in whole
  milliseconds, so a lag read from it is 0 or 1 ms and misses the time spent in the
  callbacks that ran before the monitor in the same iteration.
* ``surge_cpu`` (trend, a share of one core: 1.0 = one core busy, shown as a percentage):
  the worker process's own CPU time (``time.process_time()``: all its threads, user and
  system) per second of ``perf_counter`` wall time, one sample per second. It is a trend,
  not a gauge, because the question it answers is about the fleet over the run: a gauge keeps
  one worker's last second (whichever reported last, usually an idle second at the end),
  while a trend of every worker's every second gives the typical load (med), the hot
  workers or moments (p95) and the worst second (max). Its first sample covers the run's
  first second only, not the process start-up before it.
* ``surge_saturated`` (rate): one sample per second, true when that second's CPU was above
  ``CPU_LIMIT`` or the loop was late by more than ``LAG_LIMIT_MS`` at any sample.

The coordinator prints a warning when ``surge_saturated`` is true for more than a few percent
of the run (see :mod:`surge.coordinator.report`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from surge.worker.recorder import Recorder

SAMPLE_S = 0.1
CPU_LIMIT = 0.90
LAG_LIMIT_MS = 50.0


async def monitor(
    recorder: Recorder,
    *,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.process_time,
) -> None:
    """Sample until cancelled. ``clock`` is wall time in seconds (tests pass a virtual loop's)."""
    start = window_start = clock()
    cpu_start = cpu_clock()
    worst_lag_ms = 0.0
    slot = window = 0
    per_window = round(1.0 / SAMPLE_S)
    while True:
        slot += 1
        due = start + slot * SAMPLE_S  # an exact cadence: no drift from adding up delays
        await asyncio.sleep(max(0.0, due - clock()))
        now = clock()
        lag_ms = max(0.0, now - due) * 1000.0
        recorder.add("surge_loop_lag", lag_ms)
        worst_lag_ms = max(worst_lag_ms, lag_ms)
        # Slots a stall swallowed are skipped, not sampled late one after another: one stall
        # is one late sample.
        slot = max(slot, int((now - start) / SAMPLE_S))
        if slot // per_window > window:
            window = slot // per_window
            cpu_now = cpu_clock()
            cpu = (cpu_now - cpu_start) / max(now - window_start, 1e-9)
            recorder.add("surge_cpu", cpu)
            recorder.add("surge_saturated", 1.0 if cpu > CPU_LIMIT or worst_lag_ms > LAG_LIMIT_MS else 0.0)
            window_start, cpu_start, worst_lag_ms = now, cpu_now, 0.0

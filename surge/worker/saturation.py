"""Is this worker itself the bottleneck? Loop lag and CPU, sampled while the run goes.

A load generator that is out of CPU, or whose event loop is late, measures its own queueing:
a response that arrived on time sits in the socket until the loop gets to it, and the latency
recorded includes that wait. The monitor makes that visible instead of silently wrong:

* ``surge_loop_lag`` (trend, ms): every 100 ms the monitor asks to wake up; how late it
  actually woke is the loop's delay at that moment (a healthy loop: well under 1 ms).
* ``surge_cpu`` (gauge, % of one core): this process's CPU time over each second of wall time.
* ``surge_saturated`` (rate): one sample per second, true when that second's CPU was above
  ``CPU_LIMIT`` or the loop was late by more than ``LAG_LIMIT_MS`` at any sample.

The coordinator prints a warning when ``surge_saturated`` is true for more than a few percent
of the run (see :mod:`surge.coordinator.report`).
"""

from __future__ import annotations

import asyncio
import time

from surge.worker.recorder import Recorder

SAMPLE_S = 0.1
CPU_LIMIT = 0.90
LAG_LIMIT_MS = 50.0


async def monitor(recorder: Recorder) -> None:
    """Sample until cancelled."""
    loop = asyncio.get_running_loop()
    start = window_start = loop.time()
    cpu_start = time.process_time()
    worst_lag_ms = 0.0
    slot = window = 0
    per_window = round(1.0 / SAMPLE_S)
    while True:
        slot += 1
        due = start + slot * SAMPLE_S  # an exact cadence: no drift from adding up delays
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        lag_ms = max(0.0, now - due) * 1000.0
        recorder.add("surge_loop_lag", lag_ms)
        worst_lag_ms = max(worst_lag_ms, lag_ms)
        # Slots a stall swallowed are skipped, not sampled late one after another: one stall
        # is one late sample.
        slot = max(slot, int((now - start) / SAMPLE_S))
        if slot // per_window > window:
            window = slot // per_window
            cpu = (time.process_time() - cpu_start) / max(now - window_start, 1e-9)
            recorder.set_gauge("surge_cpu", cpu * 100.0)
            recorder.add("surge_saturated", 1.0 if cpu > CPU_LIMIT or worst_lag_ms > LAG_LIMIT_MS else 0.0)
            window_start, cpu_start, worst_lag_ms = now, time.process_time(), 0.0

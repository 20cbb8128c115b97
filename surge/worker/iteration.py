"""One iteration of a VU, as the iteration and arrival-rate executors play it.

:func:`play_iteration` runs ``exec(vu)`` once and records it the way every executor must:

* a completed iteration (even one whose code raised: a script error ends the iteration, it
  is counted in ``surge_script_errors`` and its traceback goes to the :class:`ErrorLog`) adds
  to ``iterations`` and ``iteration_duration``, then bumps ``vu.iteration``;
* an arrival-rate iteration also adds ``iteration_duration_from_schedule``: from the loop
  instant it was *planned* to start to its end, so an iteration that started late because
  the worker was behind, or a VU that waited on a stalled server, shows in the numbers
  (wrk2's coordinated-omission correction);
* a cancelled iteration (cut off at the end of the grace period, or stopped) is *not*
  counted, as in k6: :class:`asyncio.CancelledError` goes to the caller, which counts it in
  ``interrupted_iterations`` (see :func:`record_interrupted`);
* ``abort_test()`` raises :class:`~surge.common.api.AbortTest`: handed to ``on_abort`` and
  the iteration is not counted.

An iteration that never suspends is followed by one loop turn, for the reason given in
:mod:`surge.worker.vu`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import Enum

from surge.common.api import AbortTest
from surge.worker.recorder import Recorder
from surge.worker.vu import VU, ErrorLog, ExecFn, _resume


class Outcome(Enum):
    DONE = "done"  # counted; go on
    ABORTED = "aborted"  # abort_test(): not counted, the run stops
    STOPPED = "stopped"  # counted, then cancelled between iterations: nothing was interrupted


async def play_iteration(
    fn: ExecFn,
    vu: VU,
    rec: Recorder,
    errors: ErrorLog,
    on_abort: Callable[[AbortTest], None],
    *,
    planned_at: float | None = None,
) -> Outcome:
    """Run one iteration and record it (see the module docstring)."""
    perf = time.perf_counter
    t = perf()
    suspended = False
    try:
        coro = fn(vu)
        try:
            first = coro.send(None)
        except StopIteration:
            pass
        else:
            suspended = True
            await _resume(coro, first)
    except AbortTest as exc:
        on_abort(exc)
        return Outcome.ABORTED
    except Exception as exc:  # noqa: BLE001 - a script error ends this iteration only
        rec.add("surge_script_errors", 1.0)
        errors.report(vu, exc)
    rec.add_iteration((perf() - t) * 1000.0)
    if planned_at is not None:
        late_ms = (asyncio.get_running_loop().time() - planned_at) * 1000.0
        rec.add("iteration_duration_from_schedule", max(late_ms, 0.0))
    vu.iteration += 1
    if not suspended:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return Outcome.STOPPED
    return Outcome.DONE


def record_interrupted(rec: Recorder) -> None:
    rec.add("interrupted_iterations", 1.0)

"""The iteration-counted executors: k6's ``per-vu-iterations`` and ``shared-iterations``.

Both start this worker's share of ``vus`` at the scenario's start (the slice's first step)
and end when the iterations are done or at ``maxDuration``, whichever comes first:

* ``per-vu-iterations``: each VU runs ``iterations`` iterations, so the fleet runs exactly
  ``vus * iterations``. ``vu.iteration_in_test`` is ``index * iterations + vu.iteration``,
  where ``index`` is the VU's 0-based place in the scenario (``vu.id`` minus the scenario's
  id base, minus one): unique across the fleet, and dense.
* ``shared-iterations``: the fleet's ``iterations`` are numbered ``0..iterations-1`` and each
  worker owns the numbers the owner sequence of :mod:`surge.common.schedule` gives it,
  weighted by the workers' VU counts (the slice's ``index_period`` and ``index_offsets``), so
  a worker without a VU owns none; its VUs take its numbers in order, each VU the next one
  when it is free. ``vu.iteration_in_test`` is
  that number. The split is static, decided by the plan, as k6 splits over its instances:
  the fleet runs exactly ``iterations`` with no message per iteration, and a worker's share
  is within one iteration of its VUs' share. The price is that a worker whose target answers
  slower finishes later while the others sit idle; claiming iterations from the
  coordinator in batches would even that out, but it needs a request/response on the wire
  (surge's protocol has none today), so it is left for later.

At ``maxDuration`` no new iteration starts; one in flight may go on for ``gracefulStop`` and
is then cancelled: not counted in ``iterations`` or ``iteration_duration`` (as in k6), but in
``interrupted_iterations``. As in k6, the iterations ``maxDuration`` left unstarted are counted
in ``dropped_iterations`` (planned minus attempted, an interrupted one being attempted), unless
the run was stopped (abort, Ctrl-C).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from surge.common.api import AbortTest
from surge.common.arrivals import owned_indices_from
from surge.common.protocol import ScenarioSlice
from surge.common.schedule import owned_below
from surge.worker.iteration import Outcome, play_iteration, record_interrupted
from surge.worker.recorder import Recorder, vu_tags
from surge.worker.vu import VU, ErrorLog, ExecFn, PlannedWaits, StartSlices, _resolve


def vu_index(plan: ScenarioSlice, j: int) -> int:
    """The scenario-wide index of this worker's ``j``-th VU (the owner rule applied to VUs)."""
    per = len(plan.index_offsets)
    return (j // per) * plan.index_period + plan.index_offsets[j % per]


class IterationVUs(PlannedWaits):
    """Runs one slice of a ``per-vu-iterations`` or ``shared-iterations`` scenario on this worker."""

    def __init__(
        self,
        plan: ScenarioSlice,
        fn: ExecFn,
        make_vu: Callable[[int], VU],
        recorder: Recorder,
        *,
        errors: ErrorLog,
        on_abort: Callable[[AbortTest], None],
        on_vus: Callable[[int], None],
    ) -> None:
        self.plan = plan
        self._fn = fn
        self._make_vu = make_vu
        self._rec = recorder
        self._errors = errors
        self._on_abort = on_abort
        self._on_vus = on_vus
        self._shared = plan.executor == "shared-iterations"
        self._numbers: Iterator[int] = owned_indices_from(plan.index_period, plan.index_offsets, plan.iterations)
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = True
        self._stopped = False
        self._waiter: asyncio.Future[bool] | None = None
        self.live = 0
        self.interrupted = 0
        self.dropped = 0
        self._attempted = 0

    @property
    def allocated(self) -> int:
        return len(self.plan.vu_ids)

    def _vus(self) -> int:
        return self.plan.steps[0][1] if self.plan.steps else 0

    async def run(self, t0: float) -> None:
        p = self.plan
        loop = asyncio.get_running_loop()
        start = t0 + p.start_time_s
        end = start + p.duration_s
        try:
            if not await self._wait_until(start):
                return
            burst = StartSlices()  # the VUs' first steps a slice per turn of the loop, as LoopingVUs'
            for j in range(min(self._vus(), len(p.vu_ids))):
                vu = self._make_vu(p.vu_ids[j])
                task = loop.create_task(self._vu_main(vu, vu_index(p, j), burst.gate(loop)))
                task.add_done_callback(self._vu_gone)  # not a finally: a task cancelled unstarted skips its body
                self._tasks.append(task)
            burst.open(loop)
            self.live = len(self._tasks)
            self._on_vus(self.live)
            if not self._tasks:
                return
            done = asyncio.gather(*self._tasks, return_exceptions=True)
            regular = loop.call_at(end, self._end_regular)
            hard = loop.call_at(end + p.graceful_stop_s, self._cut_off)
            try:
                await done
            finally:
                regular.cancel()
                hard.cancel()
            if not self._stopped:
                # k6: what maxDuration left unstarted is dropped (interrupted ones were attempted)
                self.dropped = self._owed() - self._attempted
                if self.dropped > 0:
                    self._rec.add("dropped_iterations", float(self.dropped))
        except asyncio.CancelledError:
            self.stop_now()
            raise

    def _end_regular(self) -> None:
        """``maxDuration``: no new iteration starts; those in flight have ``gracefulStop`` left."""
        self._accepting = False

    def _owed(self) -> int:
        """The iterations this worker was planned to run."""
        if self._shared:
            return owned_below(self.plan.index_period, self.plan.index_offsets, self.plan.iterations)
        return len(self._tasks) * self.plan.iterations

    def _cut_off(self) -> None:
        """The end of ``gracefulStop``: iterations still running are interrupted."""
        self._accepting = False
        for task in self._tasks:
            task.cancel()

    def stop_now(self) -> None:
        self._stopped = True
        self._accepting = False
        if self._waiter is not None:
            _resolve(self._waiter, False)
        for task in self._tasks:
            task.cancel()

    def _next_number(self, vu: VU, index: int) -> int | None:
        # per-vu-iterations: the slice's ownership rule is its VUs' (see plan_slices), so
        # ``index`` (from vu_index) is the VU's scenario-wide index.
        if self._shared:
            return next(self._numbers, None)
        if vu.iteration >= self.plan.iterations:
            return None
        return index * self.plan.iterations + vu.iteration

    def _vu_gone(self, _task: asyncio.Task[None]) -> None:
        self.live -= 1
        self._on_vus(self.live)

    async def _vu_main(self, vu: VU, index: int, gate: asyncio.Future[None] | None = None) -> None:
        vu_tags.set(vu.tags)
        if gate is not None:  # its slice's turn (surge.worker.vu.StartSlices)
            try:
                await gate
            except asyncio.CancelledError:
                return  # stopped before its first iteration: nothing was interrupted
        while self._accepting:
            number = self._next_number(vu, index)
            if number is None:
                return
            vu.iteration_in_test = number
            self._attempted += 1
            try:
                outcome = await play_iteration(self._fn, vu, self._rec, self._errors, self._on_abort)
            except asyncio.CancelledError:
                self.interrupted += 1
                record_interrupted(self._rec)
                return
            if outcome is not Outcome.DONE:
                return

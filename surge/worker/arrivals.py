"""The open-model executors: k6's ``constant-arrival-rate`` and ``ramping-arrival-rate``.

The coordinator ships the rate plan (``rate_segments``, ``time_unit_s``) and this worker's
ownership rule (``index_period``, ``index_offsets``); the worker generates the instants of
the iterations it owns itself (:mod:`surge.common.arrivals`), lazily, one at a time. So at
every instant the fleet has started exactly the iterations the plan owes by then, with no
list of instants on the wire.

Each iteration starts at its planned instant, whether or not the server has answered the
previous ones: the open model. At that instant:

* a free VU runs it;
* else, while fewer than this worker's share of ``maxVUs`` are allocated, a new VU is
  allocated and runs it (k6 allocates one in the background and drops the iteration that
  found no VU; a surge VU costs nothing to make, so the iteration runs on it at once);
* else it is *dropped*: counted in ``dropped_iterations`` and never run later, so a slow
  server shows as drops, not as a silently lower rate.

``preAllocatedVUs`` (this worker's share) are allocated when the executor is built, before
Start, as k6 does; ``vus_max`` is the number allocated so far and ``vus`` the number allocated while the scenario runs (k6
activates them all), then those still finishing an iteration in the graceful stop.

Besides ``iteration_duration``, each iteration records ``iteration_duration_from_schedule``:
from its planned instant to its end (see :mod:`surge.worker.iteration`). At the end of the
rate plan no new iteration starts; one in flight may go on for ``gracefulStop`` and is then
cancelled: not counted in ``iterations`` (as in k6) but in ``interrupted_iterations``.
``vu.iteration_in_test`` is the iteration's fleet-wide index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from surge.common.api import AbortTest
from surge.common.arrivals import ArrivalPlan, RateSegment, owned_indices_from
from surge.common.protocol import ScenarioSlice
from surge.worker.iteration import Outcome, play_iteration, record_interrupted
from surge.worker.recorder import Recorder, vu_tags
from surge.worker.vu import VU, ErrorLog, ExecFn, PlannedWaits, _resolve


def arrival_plan(plan: ScenarioSlice) -> ArrivalPlan:
    """The rate plan a slice carries, as the coordinator built it."""
    return ArrivalPlan(
        plan.time_unit_s,
        tuple(RateSegment(d, a, b) for d, a, b in plan.rate_segments),
        first_at_zero=plan.executor == "constant-arrival-rate",
    )


class ArrivalRateVUs(PlannedWaits):
    """Runs one slice of a ``constant-arrival-rate`` or ``ramping-arrival-rate`` scenario."""

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
        on_allocated: Callable[[], None] = lambda: None,
    ) -> None:
        self.plan = plan
        self.rates = arrival_plan(plan)
        self._fn = fn
        self._make_vu = make_vu
        self._rec = recorder
        self._errors = errors
        self._on_abort = on_abort
        self._on_vus = on_vus
        self._on_allocated = on_allocated
        self._free: list[VU] = []
        self._vus: list[VU] = []
        self._busy: dict[asyncio.Task[Outcome], VU] = {}
        self._dispatching = False
        self._stopped = False
        self._waiter: asyncio.Future[bool] | None = None
        self._all_done: asyncio.Event | None = None
        self.interrupted = 0
        self.dropped = 0
        # k6 initializes the pre-allocated VUs before the test starts: vus_max counts them from the first instant.
        for _ in range(min(plan.pre_allocated_vus, len(plan.vu_ids))):
            self._vus.append(self._make_vu(plan.vu_ids[len(self._vus)]))

    @property
    def allocated(self) -> int:
        return len(self._vus)

    @property
    def live(self) -> int:
        return len(self._vus) if self._dispatching else len(self._busy)

    def _allocate(self) -> VU:
        vu = self._make_vu(self.plan.vu_ids[len(self._vus)])
        self._vus.append(vu)
        self._on_allocated()
        return vu

    async def run(self, t0: float) -> None:
        p = self.plan
        loop = asyncio.get_running_loop()
        start = t0 + p.start_time_s
        end = start + p.duration_s
        self._all_done = asyncio.Event()
        self._all_done.set()
        try:
            if not await self._wait_until(start):
                return
            self._dispatching = True
            self._free = list(reversed(self._vus))  # popped from the end: the first allocated goes first
            self._on_vus(self.live)
            mine = owned_indices_from(p.index_period, p.index_offsets, self.rates.total())
            # A share taken over from a lost worker: arrivals planned before the loss were its own.
            skip = p.skip_before_s - p.start_time_s
            for k, offset in self.rates.schedule(mine):
                if offset < skip:
                    continue
                planned = start + offset
                if not await self._wait_until(planned):
                    break
                self._start(k, planned)
            await self._wait_until(end)
            self._dispatching = False
            self._on_vus(self.live)
            if self._busy:
                # After a stop the cancelled iterations still unwind: wait for them too, so
                # nothing of this scenario runs once run() has returned.
                hard = None if self._stopped else loop.call_at(end + p.graceful_stop_s, self.stop_now)
                try:
                    await self._all_done.wait()
                finally:
                    if hard is not None:
                        hard.cancel()
        except asyncio.CancelledError:
            self.stop_now()
            raise
        finally:
            self._dispatching = False

    def _start(self, k: int, planned: float) -> None:
        if self._free:
            vu = self._free.pop()
        elif len(self._vus) < len(self.plan.vu_ids):
            vu = self._allocate()
            self._on_vus(self.live)
        else:
            self.dropped += 1
            self._rec.add("dropped_iterations", 1.0)
            return
        vu.iteration_in_test = k
        task = asyncio.get_running_loop().create_task(self._iterate(vu, planned))
        self._busy[task] = vu
        task.add_done_callback(self._done)
        assert self._all_done is not None
        self._all_done.clear()

    async def _iterate(self, vu: VU, planned: float) -> Outcome:
        vu_tags.set(vu.tags)
        try:
            return await play_iteration(self._fn, vu, self._rec, self._errors, self._on_abort, planned_at=planned)
        except asyncio.CancelledError:
            self.interrupted += 1
            record_interrupted(self._rec)
            return Outcome.STOPPED

    def _done(self, task: asyncio.Task[Outcome]) -> None:
        # A done callback, not a finally: a task cancelled before its first step never runs its body.
        vu = self._busy.pop(task)
        if not task.cancelled() and task.exception() is None and task.result() is Outcome.DONE and not self._stopped:
            self._free.append(vu)
        if not self._busy and self._all_done is not None:
            self._all_done.set()
        if not self._dispatching:
            self._on_vus(self.live)

    def stop_now(self) -> None:
        self._stopped = True
        if self._waiter is not None:
            _resolve(self._waiter, False)
        for task in list(self._busy):
            task.cancel()


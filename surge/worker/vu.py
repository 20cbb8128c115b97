"""Virtual users and the looping-VU executor (k6's ``ramping-vus`` and ``constant-vus``).

An executor runs one :class:`ScenarioSlice`: this worker's share of one scenario, as a list of
``(offset_s, vus)`` steps planned by the coordinator. It waits for each step and resizes its
pool; it never computes a schedule itself ("plan, then act").

A VU goes through these states::

    idle ──activate──> running ──deactivate──> finishing ──iteration ends──> idle
                          ^                        │
                          └──────activate──────────┘        (reused, no new task)
                                                   │
                                   deadline passes └──cancel──> idle  (iteration interrupted)

* *running*: loops ``await exec(vu)``; each completed iteration is counted (``iterations``,
  ``iteration_duration``) and bumps ``vu.iteration``.
* *finishing*: the VU was ramped down (or the scenario's stages ended); its current iteration
  may go on until the deadline: ``gracefulRampDown`` after a ramp-down step,
  ``gracefulStop`` after the end of the stages, never later than the end of the stages plus
  ``gracefulStop``. Then it is cancelled; an interrupted iteration is not counted, as in k6.
* A VU to deactivate is always the most recently activated one (last in, first out), which is
  what makes every worker's share of the fleet-wide count line up with the plan.
* VUs activated at the same instant take their first step :data:`START_SLICE` at a time, one
  slice per turn of the loop (:class:`StartSlices`; the iteration-count executors' VUs too): all live from that instant, as k6's, but
  10,000 of them do not dial 10,000 connections in one stretch of the loop that reads no
  response meanwhile (~0.6 s on one core, charged to the first requests' latency as surge's
  own queueing). Go's scheduler interleaves its goroutines' first steps with the network
  poller in the same way.
* An iteration that never suspends (an empty ``default``, one that raises before its first
  await, a request refused before it is sent) is followed by one turn of the loop, so a VU
  can iterate as fast as k6's would without starving reports, heartbeats and Stop. Code that
  blocks the loop itself (``time.sleep``) is not cured here: the worker's link names it.

The loop's clock is the only clock: a test runs a 3-minute ramp in milliseconds on a
virtual-time event loop (tests/worker/test_vu.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from typing import Any

from surge.common.api import AbortTest
from surge.common.protocol import ScenarioSlice
from surge.worker import sleeper
from surge.worker.recorder import Recorder, vu_tags


class VU:
    """What a scenario's ``default(vu)`` receives.

    ``id`` is k6's ``__VU`` (1-based, unique across the fleet); ``iteration`` is ``__ITER``
    (0-based, per VU); ``iteration_in_test`` is k6's ``exec.scenario.iterationInTest``, the
    iteration's number unique across the fleet within its scenario, for the iteration and
    arrival-rate executors (the fleet-wide index of a shared or arrival-rate iteration;
    ``vu index * iterations + vu.iteration`` for per-vu-iterations), and for the looping ones
    this worker's j-th iteration's index among its residues (unique, not sequential across
    workers, as k6's own); ``env`` is ``__ENV`` (this machine's environment overlaid with the ``-e``
    pairs). ``data`` is what ``setup()`` returned (None without a ``setup``; see
    :mod:`surge.worker.lifecycle`).
    """

    __slots__ = ("id", "iteration", "iteration_in_test", "scenario", "env", "http", "data", "tags")

    def __init__(self, id: int, scenario: str, env: Mapping[str, str], http: Any, tags: Mapping[str, str], data: Any = None) -> None:
        self.id = id
        self.iteration = 0
        self.iteration_in_test: int | None = None
        self.scenario = scenario
        self.env = env
        self.http = http
        self.data = data
        self.tags = tags

    def sleep(self, seconds: float) -> Awaitable[None]:
        """k6's ``sleep``: think time inside an iteration (``await vu.sleep(1)``).

        Not a coroutine: the awaitable of the loop's shared :mod:`surge.worker.sleeper`, which
        is what makes think time cheap at 10,000 VUs (no timer handle, coroutine or context
        copy per sleep)."""
        return sleeper.sleep(seconds)

    def __repr__(self) -> str:
        return f"VU(id={self.id}, scenario={self.scenario!r}, iteration={self.iteration})"


ExecFn = Callable[[VU], Coroutine[Any, Any, Any]]


class _Slot:
    __slots__ = ("vu", "task", "active", "kill", "doomed", "started")

    def __init__(self, vu: VU) -> None:
        self.vu = vu
        self.task: asyncio.Task[None] | None = None
        self.active = False
        self.kill: asyncio.TimerHandle | None = None
        self.doomed = False  # its task was told to stop and has not finished yet
        self.started = False  # its task's body has begun (a task cancelled before never runs it)


class ErrorLog:
    """Script errors: counted, their tracebacks shown a few times per kind, summarised at the end.

    A broken line in ``default`` fails every iteration of every VU, so printing each traceback
    would bury the one useful copy under thousands; printing only the first few of the whole
    run would hide a second, rarer bug behind the first. So errors are told apart by *kind*:
    the exception type and the scenario line where it was raised (the innermost frame inside
    the scenario's directory ``root``, else the innermost frame at all), not the message, so
    ``KeyError: 'a'`` and ``KeyError: 'b'`` from one line are one kind. Each kind's first
    ``shown`` tracebacks are printed; :meth:`print_summary` prints one line per kind when the
    run ends on this worker. At most ``max_kinds`` kinds are tracked (memory stays bounded
    whatever the scenario raises); errors of further kinds are only counted, as one line.

    An ``ImportError`` raised inside an iteration usually means a module imported lazily in
    ``default``: the bundle carries only the modules the scenario imported when it was loaded,
    so a remote worker lacks it. Its first traceback comes with a hint saying so.
    """

    def __init__(self, *, root: str | None = None, shown: int = 3, max_kinds: int = 100) -> None:
        self.count = 0
        self._root = os.path.join(os.path.abspath(root), "") if root else None
        self._shown = shown
        self._max_kinds = max_kinds
        self._kinds: dict[tuple[str, str, int, str], int] = {}
        self._other = 0

    def _where(self, exc: BaseException) -> tuple[str, int, str]:
        """(file relative to the scenario's directory, line, function) where ``exc`` was raised."""
        frames: list[traceback.FrameSummary] = list(traceback.extract_tb(exc.__traceback__))
        if self._root is not None:
            inside = [f for f in frames if os.path.abspath(f.filename).startswith(self._root)]
            frames = inside or frames
        if not frames:
            return "?", 0, "?"
        f = frames[-1]
        path = os.path.abspath(f.filename)
        shown = path[len(self._root):] if self._root is not None and path.startswith(self._root) else os.path.basename(path)
        return shown, f.lineno or 0, f.name

    def report(self, vu: VU, exc: BaseException) -> None:
        self.count += 1
        key = (type(exc).__name__, *self._where(exc))
        seen = self._kinds.get(key)
        if seen is None:
            if len(self._kinds) >= self._max_kinds:
                self._other += 1
                return
            seen = 0
        self._kinds[key] = seen + 1
        if seen >= self._shown:
            return
        text = "".join(traceback.format_exception(exc)).rstrip()
        out = sys.stderr
        print(f"surge worker: VU {vu.id} iteration {vu.iteration} raised:\n{text}", file=out)
        if seen == 0 and isinstance(exc, ImportError):
            print(
                "surge worker: hint: a module imported inside an iteration may be missing on remote workers: "
                "modules under the scenario's directory reach workers only if the scenario imports them when "
                "it is loaded; import it at the top of the scenario file, or install it on every load machine",
                file=out,
            )

    def summary(self) -> list[str]:
        """One line per kind of error seen, in first-seen order, and one for untracked kinds."""
        lines = []
        for (name, file, line, func), n in self._kinds.items():
            if n <= self._shown:
                tail = "all shown above"
            else:
                tail = f"first {self._shown} shown above, {n - self._shown} more like this"
            lines.append(f"surge worker: {name} at {file}:{line} in {func}: {n} times ({tail})")
        if self._other:
            lines.append(
                f"surge worker: {self._other} more script errors of other kinds "
                f"(not shown; only {self._max_kinds} kinds are tracked)"
            )
        return lines

    def print_summary(self) -> None:
        """Print :meth:`summary` on stderr (nothing when no script error happened)."""
        for line in self.summary():
            print(line, file=sys.stderr)


class PlannedWaits:
    """What every executor shares: waiting for a planned instant, cut short by ``stop_now``.

    The executor sets ``_stopped`` and resolves ``_waiter`` with False to stop; each executor
    class holds those two attributes itself.
    """

    _stopped: bool
    _waiter: asyncio.Future[bool] | None

    def live_at(self, instant: float) -> int:
        """VUs live at the planned loop-clock ``instant`` (what a ``vus`` tick counts)."""
        live: int = self.live  # type: ignore[attr-defined]
        return live

    async def _wait_until(self, when: float) -> bool:
        """Sleep until loop time ``when`` exactly; False if the executor was stopped meanwhile."""
        if self._stopped:
            return False
        loop = asyncio.get_running_loop()
        if when <= loop.time():
            return True
        # call_at with the planned instant, not sleep(when - now): the step fires at the
        # instant the plan names, with no rounding from a relative delay.
        self._waiter = waiter = loop.create_future()
        handle = loop.call_at(when, _resolve, waiter, True)
        try:
            return bool(await waiter)
        finally:
            handle.cancel()
            self._waiter = None


START_SLICE = 256
"""VUs activated together whose first step runs in one turn of the loop (a first step dials:
~60 µs each on loopback, so a slice is ~15 ms of the loop)."""


class StartSlices:
    """The first steps of a burst of VUs, :data:`START_SLICE` per turn of the loop.

    :meth:`gate` gives the n-th VU of the burst None (the first slice starts at once) or a
    future of its own (not shared: cancelling a VU that waits cancels only its own); :meth:`open`
    then resolves one slice per turn, each turn's I/O polled between two slices.
    """

    __slots__ = ("_n", "_slices")

    def __init__(self) -> None:
        self._n = 0
        self._slices: list[list[asyncio.Future[None]]] = []

    def gate(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None] | None:
        n = self._n
        self._n += 1
        if n < START_SLICE:
            return None
        if n % START_SLICE == 0:
            self._slices.append([])
        fut: asyncio.Future[None] = loop.create_future()
        self._slices[-1].append(fut)
        return fut

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the slices, the first one in the next turn of the loop."""
        if self._slices:
            loop.call_soon(_open_slice, loop, self._slices, 0)


def _open_slice(loop: asyncio.AbstractEventLoop, slices: list[list[asyncio.Future[None]]], i: int) -> None:
    for fut in slices[i]:
        if not fut.done():  # a VU stopped before its turn has cancelled its own
            fut.set_result(None)
    if i + 1 < len(slices):
        loop.call_soon(_open_slice, loop, slices, i + 1)


class LoopingVUs(PlannedWaits):
    """Runs one slice of a ``ramping-vus`` or ``constant-vus`` scenario on this worker."""

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
        self._slots: list[_Slot] = []
        self._active = 0
        self.running = 0  # VU tasks alive: running or finishing
        self._doomed = 0  # of those, the ones already cancelled (gone at their next step)
        self._started = 0  # iterations this worker started in the scenario, for iteration_in_test
        self.interrupted = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = False
        self._waiter: asyncio.Future[bool] | None = None
        self._hard_end = 0.0
        self._start_at = 0.0

    async def run(self, t0: float) -> None:
        """Play the slice with the loop time ``t0`` as the run's start; return when every VU is idle."""
        p = self.plan
        start = t0 + p.start_time_s
        end = start + p.duration_s
        self._start_at = start
        self._hard_end = end + p.graceful_stop_s
        try:
            for offset, vus in p.steps:
                at = start + offset
                if at >= end or not await self._wait_until(at):
                    break
                self._resize(vus, min(at + p.graceful_ramp_down_s, self._hard_end))
            if await self._wait_until(end):
                self._resize(0, self._hard_end)
            await self._idle.wait()
        except asyncio.CancelledError:
            self.stop_now()
            raise

    @property
    def allocated(self) -> int:
        """VUs this slice may use (``vus_max``): its share of the scenario's peak."""
        return len(self.plan.vu_ids)

    def _next_number(self) -> int | None:
        """k6's ``iterationInTest`` for the next iteration started here: this worker's j-th
        iteration takes the j-th index of its residues (the slice's ``index_period`` and
        ``index_offsets``), so numbers are unique across the fleet; as k6 says of its own,
        workers that iterate at different speeds do not make them sequential."""
        offsets = self.plan.index_offsets
        if not offsets:
            return None
        j = self._started
        self._started += 1
        return (j // len(offsets)) * self.plan.index_period + offsets[j % len(offsets)]

    @property
    def live(self) -> int:
        """VUs running or finishing an iteration, not counting those already told to stop.

        This is what ``vus`` samples: a VU cancelled at the instant another scenario starts
        its own is gone, even though its task has not yet run its last step. And past the
        slice's hard end (the end of its stages plus ``gracefulStop``) none is live, even if the
        loop has not yet run the callback that cancels them: the sampler's tick and the next
        scenario's start may be served first when the loop is late, and the count must not
        depend on which callback a busy loop happens to run first.
        """
        return self.live_at(asyncio.get_running_loop().time())

    def live_at(self, instant: float) -> int:
        """The VUs live at the loop-clock ``instant``, judged by the plan's instants, not by
        which callbacks have run: none before the slice's start, none from its hard end on.

        A ``vus`` tick is due at the very instants where one scenario ends and the next starts,
        and a loop fires timers up to a millisecond early (uvloop) or late: counted by what
        has run, the tick would see the ending scenario's VUs and the starting one's together.
        """
        if self.running == 0 or instant < self._start_at or (self._hard_end and instant >= self._hard_end):
            return 0
        return self.running - self._doomed

    def stop_now(self) -> None:
        """Interrupt every VU at once (abort, Ctrl-C, lost coordinator)."""
        self._stopped = True
        if self._waiter is not None:
            _resolve(self._waiter, False)
        for slot in self._slots:
            slot.active = False
            self._kill(slot)

    def _doom(self, slot: _Slot) -> None:
        """From now on this VU no longer counts as live (its task ends at its next step)."""
        if slot.task is not None and not slot.task.done() and not slot.doomed:
            slot.doomed = True
            self._doomed += 1
            self._on_vus(self.live)

    def _kill(self, slot: _Slot) -> None:
        slot.kill = None
        self._doom(slot)
        if slot.task is not None and not slot.task.done() and slot.task.cancel() and not slot.started:
            # Cancelled before its first step (a Stop in the very turn it was activated): the
            # task ends without running a line of _vu_main, so its ``finally`` is done here, and
            # a reactivation makes a new task rather than count on this one.
            self._gone(slot)
            slot.task = None

    def _gone(self, slot: _Slot) -> None:
        """A VU's task is over (or will end without running): the executor's counts let it go."""
        if slot.kill is not None:
            slot.kill.cancel()
            slot.kill = None
        if slot.doomed:
            slot.doomed = False
            self._doomed -= 1
        self.running -= 1
        self._on_vus(self.live)
        if self.running == 0:
            self._idle.set()

    def _resize(self, target: int, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        target = min(target, len(self.plan.vu_ids))
        burst = StartSlices()
        while self._active < target:
            idx = self._active
            if idx == len(self._slots):
                self._slots.append(_Slot(self._make_vu(self.plan.vu_ids[idx])))
            slot = self._slots[idx]
            slot.active = True
            if slot.kill is not None:  # ramped down and back up before its deadline: it stays
                slot.kill.cancel()
                slot.kill = None
                if slot.doomed:
                    slot.doomed = False
                    self._doomed -= 1
            if slot.task is None or slot.task.done():
                self.running += 1
                self._idle.clear()
                slot.started = False
                slot.task = loop.create_task(self._vu_main(slot, burst.gate(loop)))
            self._active += 1
        burst.open(loop)
        while self._active > target:
            self._active -= 1
            slot = self._slots[self._active]
            slot.active = False
            if slot.task is not None and not slot.task.done():
                if slot.kill is not None:
                    slot.kill.cancel()
                    slot.kill = None
                if deadline <= loop.time():
                    # No grace left: it is gone now for whoever counts VUs at this instant
                    # (the next scenario may start its own in it), though an iteration that
                    # ends at this very instant still completes, as it always did.
                    self._doom(slot)
                slot.kill = loop.call_at(deadline, self._kill, slot)
        self._on_vus(self.live)

    async def _vu_main(self, slot: _Slot, gate: asyncio.Future[None] | None = None) -> None:
        slot.started = True
        vu = slot.vu
        vu_tags.set(vu.tags)  # this task's own context copy
        perf = time.perf_counter
        try:
            if gate is not None:  # its slice's turn (StartSlices)
                try:
                    await gate
                except asyncio.CancelledError:
                    return  # stopped before its first iteration: nothing was interrupted
            while slot.active:
                t = perf()
                suspended = False
                vu.iteration_in_test = self._next_number()
                try:
                    coro = self._fn(vu)
                    try:
                        first = coro.send(None)
                    except StopIteration:
                        pass  # finished without ever suspending
                    else:
                        suspended = True
                        await _resume(coro, first)
                except AbortTest as exc:
                    self._on_abort(exc)
                    return
                except Exception as exc:  # noqa: BLE001 - a script error ends this iteration only
                    self._rec.add("surge_script_errors", 1.0)
                    self._errors.report(vu, exc)
                self._rec.add_iteration((perf() - t) * 1000.0)
                vu.iteration += 1
                if not suspended:
                    # An iteration that never awaited (an empty default, one that raised
                    # before its first await, a request refused before it was sent) gave
                    # the loop no turn: without this the VU would spin forever and starve
                    # every heartbeat, report and Stop. k6 iterates as fast as it can; so
                    # does surge, one loop turn per iteration.
                    try:
                        await asyncio.sleep(0)
                    except asyncio.CancelledError:
                        return  # between iterations: nothing was interrupted
        except asyncio.CancelledError:
            self.interrupted += 1
            self._rec.add("interrupted_iterations", 1.0)
        finally:
            self._gone(slot)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], first: Any) -> Generator[Any, None, Any]:
    """Go on with a coroutine already started by hand, whose first ``send`` yielded ``first``.

    The executor starts each iteration with ``coro.send(None)`` to learn whether it suspends
    at all (see ``_vu_main``); when it does, this hands ``first`` (the future it waits on) to
    the task, then delegates the rest with ``yield from``, which also forwards a
    cancellation thrown in later. Costs one generator frame per iteration, a tenth of a
    ``sleep(0)`` on uvloop.
    """
    try:
        yield first
    except BaseException as exc:  # a cancellation (or close) while waiting on ``first``
        try:
            nxt = coro.throw(exc)
        except StopIteration as stop:
            return stop.value
        return (yield from _resume(coro, nxt))
    return (yield from coro.__await__())


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)

"""Think time for many VUs on one loop: futures by the millisecond and one loop timer, not a timer each.

Why: ``asyncio.sleep`` on uvloop makes, for every sleep, a coroutine, a future, a
``TimerHandle`` with its libuv timer, a copy of the context and an argument tuple: about
2 µs, and ten objects the cyclic collector tracks. 10,000 VUs that each sleep 1 s keep
~100,000 of them alive at any moment, and every young-generation collection walks the ones
born since the last (on this machine ~1 µs an object at that scale: their referents are cold
in the cache). Here a sleep is one future in the list of its millisecond (:class:`Sleeper`);
the loop timer is armed only at the earliest wake-up and serves every sleeper due by then in
one callback.

Meaning, as ``asyncio.sleep``'s: the awaiting task resumes no earlier than ``seconds``
later, within the loop clock's resolution (uvloop rounds its timers to the millisecond, so
an entry due within half a millisecond of the wake-up is served by it, as uvloop's own timer
would have been), and at most a millisecond later than that before the loop's own lateness
(a sleep is due at its instant rounded up to the millisecond); sleepers due in the same
millisecond wake in the order they fell asleep; cancelling the awaiting task cancels its future, whose entry is then
skipped when it comes due. ``seconds <= 0`` yields to the loop once (``asyncio.sleep(0)``);
``inf`` never wakes.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import weakref
from collections.abc import Awaitable

__all__ = ["Sleeper", "sleep"]

# uvloop's call_at rounds the delay to whole milliseconds (half a millisecond either way)
_EARLY_S = 0.0005


class Sleeper:
    """The sleepers of one event loop (see the module docstring).

    Wake-ups are kept by the loop clock's millisecond (a sleep is due at its instant rounded
    up to one): a list of futures per millisecond, in the order they were asked for, and a heap
    of the milliseconds that hold any. 10,000 VUs that sleep 1 s ask for ~10 a millisecond, so
    a sleep is an append to a list, and only a new millisecond is a heap push (of an int); a
    heap of one ``(when, seq, future)`` tuple per sleep compared tuples on every push and pop:
    ~5 % of the worker's CPU at that scale (bench/RESULTS.md, 2026-12-04).
    """

    # No reference to the loop is kept (but by the armed timer): the loop is the key this
    # sleeper is found under, weakly, and a value that held its key would keep it forever.
    __slots__ = ("_due", "_ms", "_n", "_timer", "_timer_ms")

    def __init__(self) -> None:
        self._due: dict[int, list[asyncio.Future[None]]] = {}  # millisecond -> its sleepers, in order
        self._ms: list[int] = []  # a heap of the keys of _due
        self._n = 0  # futures in _due (cancelled ones included until they come due)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_ms = math.inf

    def sleep(self, loop: asyncio.AbstractEventLoop, seconds: float) -> Awaitable[None]:
        """The future of a sleep of ``seconds`` on ``loop`` (the running loop, whose sleeper this is)."""
        if not seconds > 0:
            if math.isnan(seconds):
                raise ValueError("sleep: seconds must be a number, got nan")
            return asyncio.sleep(0)
        fut: asyncio.Future[None] = loop.create_future()
        if seconds == math.inf:
            return fut  # never due; cancelling the task ends it
        ms = math.ceil((loop.time() + seconds) * 1000.0)
        waiting = self._due.get(ms)
        if waiting is None:
            self._due[ms] = [fut]
            heapq.heappush(self._ms, ms)
            if ms < self._timer_ms:
                self._arm(loop, ms)
        else:
            waiting.append(fut)
        self._n += 1
        return fut

    def __len__(self) -> int:
        """Sleepers not yet due (cancelled ones included until they come due)."""
        return self._n

    def _arm(self, loop: asyncio.AbstractEventLoop, ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_ms = ms
        self._timer = loop.call_at(ms / 1000.0, self._wake, loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_ms = math.inf
        keys, due = self._ms, self._due
        now_ms = (loop.time() + _EARLY_S) * 1000.0
        while keys and keys[0] <= now_ms:
            waiting = due.pop(heapq.heappop(keys))
            self._n -= len(waiting)
            for fut in waiting:
                if not fut.done():  # a cancelled sleeper's future is done already
                    fut.set_result(None)
        if keys:
            self._arm(loop, keys[0])


_SLEEPERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Sleeper] = weakref.WeakKeyDictionary()


def sleep(seconds: float) -> Awaitable[None]:
    """``await sleep(s)``: ``asyncio.sleep(s)`` through the running loop's :class:`Sleeper`."""
    loop = asyncio.get_running_loop()
    sleeper = _SLEEPERS.get(loop)
    if sleeper is None:
        sleeper = _SLEEPERS[loop] = Sleeper()
    return sleeper.sleep(loop, seconds)

"""Think time for many VUs on one loop: one heap of futures and one loop timer, not a timer each.

Why: ``asyncio.sleep`` on uvloop makes, for every sleep, a coroutine, a future, a
``TimerHandle`` with its libuv timer, a copy of the context and an argument tuple: about
2 µs, and ten objects the cyclic collector tracks. 10,000 VUs that each sleep 1 s keep
~100,000 of them alive at any moment, and every young-generation collection walks the ones
born since the last (on this machine ~1 µs an object at that scale: their referents are cold
in the cache). Here a sleep is one future and one heap entry; the loop timer is armed only
at the earliest wake-up and serves every sleeper due by then in one callback.

Meaning, as ``asyncio.sleep``'s: the awaiting task resumes no earlier than ``seconds``
later, within the loop clock's resolution (uvloop rounds its timers to the millisecond, so
an entry due within half a millisecond of the wake-up is served by it, as uvloop's own timer
would have been); cancelling the awaiting task cancels its future, whose entry is then
skipped when it comes due. ``seconds <= 0`` yields to the loop once (``asyncio.sleep(0)``);
``inf`` never wakes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import weakref
from collections.abc import Awaitable

__all__ = ["Sleeper", "sleep"]

# uvloop's call_at rounds the delay to whole milliseconds (half a millisecond either way)
_EARLY_S = 0.0005


class Sleeper:
    """The sleepers of one event loop (see the module docstring)."""

    # No reference to the loop is kept (but by the armed timer): the loop is the key this
    # sleeper is found under, weakly, and a value that held its key would keep it forever.
    __slots__ = ("_heap", "_seq", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()  # ties keep their order, and futures are never compared
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def sleep(self, loop: asyncio.AbstractEventLoop, seconds: float) -> Awaitable[None]:
        """The future of a sleep of ``seconds`` on ``loop`` (the running loop, whose sleeper this is)."""
        if not seconds > 0:
            if math.isnan(seconds):
                raise ValueError("sleep: seconds must be a number, got nan")
            return asyncio.sleep(0)
        fut: asyncio.Future[None] = loop.create_future()
        if seconds == math.inf:
            return fut  # never due; cancelling the task ends it
        when = loop.time() + seconds
        heapq.heappush(self._heap, (when, next(self._seq), fut))
        if when < self._timer_at:
            self._arm(loop, when)
        return fut

    def __len__(self) -> int:
        """Entries in the heap (cancelled ones included until they come due)."""
        return len(self._heap)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._wake, loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_at = math.inf
        heap = self._heap
        due = loop.time() + _EARLY_S
        while heap and heap[0][0] <= due:
            fut = heapq.heappop(heap)[2]
            if not fut.done():  # a cancelled sleeper's future is done already
                fut.set_result(None)
        if heap:
            self._arm(loop, heap[0][0])


_SLEEPERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Sleeper] = weakref.WeakKeyDictionary()


def sleep(seconds: float) -> Awaitable[None]:
    """``await sleep(s)``: ``asyncio.sleep(s)`` through the running loop's :class:`Sleeper`."""
    loop = asyncio.get_running_loop()
    sleeper = _SLEEPERS.get(loop)
    if sleeper is None:
        sleeper = _SLEEPERS[loop] = Sleeper()
    return sleeper.sleep(loop, seconds)

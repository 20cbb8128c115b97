"""The deadlines of the fast transport's connections: one loop timer for all of them.

Why: each kept-alive connection held a loop timer armed at its exchange's deadline (the
timer outlives the exchange, so that a request on it costs no ``call_at`` and ``cancel``:
see ``Connection.exchange``). On uvloop that is a ``TimerHandle``, its libuv timer, an argument
tuple and a context: ~670 bytes, for every idle VU of 10,000 (tests/worker/http/test_idle_memory.py).
Here a connection with a deadline is one entry in the dictionary of its millisecond, and one
loop timer is armed at the earliest millisecond that holds any.

What it promises: :meth:`Deadlines.arm` calls the connection's ``on_deadline(loop)`` no
earlier than ``when`` less half a millisecond (uvloop rounds its timers to the millisecond)
and, before the loop's own lateness, at most a millisecond after ``when`` (a deadline is kept
at its instant rounded up to the millisecond); arming again moves it; :meth:`disarm` (a closed
connection) forgets it at once, so that nothing here keeps a closed connection alive.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import weakref
from typing import Protocol

__all__ = ["Deadlines", "Timed", "deadlines"]

_EARLY_MS = 0.5  # uvloop rounds call_at's delay to whole milliseconds, half a millisecond either way


class Timed(Protocol):
    """What a connection holds for its deadline (``Connection`` is one)."""

    timer_ms: int  # the millisecond it is armed at, 0 when not armed

    def on_deadline(self, loop: asyncio.AbstractEventLoop) -> None: ...


class Deadlines:
    """The armed deadlines of one event loop (see the module docstring)."""

    __slots__ = ("_due", "_keys", "_timer", "_timer_ms")

    def __init__(self) -> None:
        self._due: dict[int, dict[Timed, None]] = {}  # millisecond -> its connections, in order
        self._keys: list[int] = []  # a heap of milliseconds; one whose entry emptied stays until popped
        self._timer: asyncio.TimerHandle | None = None
        self._timer_ms = 0  # 0: no loop timer armed

    def arm(self, loop: asyncio.AbstractEventLoop, conn: Timed, when: float) -> None:
        """Call ``conn.on_deadline(loop)`` at ``when`` (loop time), instead of any earlier arming."""
        ms = math.ceil(when * 1000.0)
        if conn.timer_ms:
            self._remove(conn)
        conn.timer_ms = ms
        due = self._due.get(ms)
        if due is None:
            self._due[ms] = {conn: None}
            heapq.heappush(self._keys, ms)
            if len(self._keys) > 2 * len(self._due) + 1024:  # emptied milliseconds pile up: rebuild
                self._keys = list(self._due)
                heapq.heapify(self._keys)
            if not self._timer_ms or ms < self._timer_ms:
                self._arm_loop(loop, ms)
        else:
            due[conn] = None

    def disarm(self, conn: Timed) -> None:
        """Forget ``conn``'s deadline (it closed)."""
        if conn.timer_ms:
            self._remove(conn)
            conn.timer_ms = 0

    def __len__(self) -> int:
        """Connections armed."""
        return sum(len(due) for due in self._due.values())

    def _remove(self, conn: Timed) -> None:
        due = self._due.get(conn.timer_ms)
        if due is not None:
            due.pop(conn, None)
            if not due:
                del self._due[conn.timer_ms]

    def _arm_loop(self, loop: asyncio.AbstractEventLoop, ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_ms = ms
        self._timer = loop.call_at(ms / 1000.0, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_ms = 0
        keys, all_due = self._keys, self._due
        now_ms = loop.time() * 1000.0 + _EARLY_MS
        while keys and keys[0] <= now_ms:
            due = all_due.pop(heapq.heappop(keys), None)
            if due is None:
                continue  # emptied by disarm, or served already
            for conn in due:
                conn.timer_ms = 0
            for conn in due:  # each may arm itself again (a later exchange's deadline)
                conn.on_deadline(loop)
        while keys and keys[0] not in all_due:
            heapq.heappop(keys)
        if keys and keys[0] != self._timer_ms:  # (a re-arm above may have set a later one)
            self._arm_loop(loop, keys[0])


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = weakref.WeakKeyDictionary()


def deadlines(loop: asyncio.AbstractEventLoop) -> Deadlines:
    """``loop``'s deadlines (made on first use; they go with the loop)."""
    found = _LOOPS.get(loop)
    if found is None:
        found = _LOOPS[loop] = Deadlines()
    return found

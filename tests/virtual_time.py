"""An asyncio event loop on virtual time: sleeping costs nothing, and the clock is exact.

When the loop has nothing ready to run, instead of blocking in ``select`` until the next
timer it jumps its clock to that timer. A 3-minute ramp runs in milliseconds and every
``loop.time()`` a test sees is the exact planned instant. Only for code that does no real
I/O (real sockets would not be waited for).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("virtual-time loop would wait forever: nothing scheduled")
        if timeout > 0:
            # jump to the next timer's exact instant (adding the timeout would accumulate
            # rounding error: t + (when - t) is not always when)
            scheduled = self._loop._scheduled  # the loop's timer heap
            self._loop.now = scheduled[0].when() if scheduled else self._loop.now + timeout
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

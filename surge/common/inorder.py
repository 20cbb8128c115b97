"""Each sender's numbered reports, taken once and in order: the rule both mergers follow.

A sender numbers its reports 1, 2, 3... and sends each again until it is acknowledged. The
receiver takes report ``seq`` only once every lower number has been taken: one that arrives
early waits in a buffer until the gap before it fills; a number already taken (or already
buffered) is a duplicate, a resend whose ack was lost, and is dropped. A report more than
:data:`MAX_AHEAD` numbers ahead is not kept (``TOO_FAR``) and must not be acknowledged, so its
sender sends it again later: one sender can make the receiver hold at most ``MAX_AHEAD``
reports. These are the coordinator's rules (:mod:`surge.coordinator.aggregate`); a machine
that merges its own processes' reports (:mod:`surge.worker.localmerge`) follows the same ones
through :class:`InOrder`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

MAX_AHEAD = 256

T = TypeVar("T")


class Accepted(Enum):
    APPLIED = "applied"  # applied now (perhaps with buffered successors)
    BUFFERED = "buffered"  # ahead of a gap; applied when the gap fills
    DUPLICATE = "duplicate"  # already applied or already buffered
    TOO_FAR = "too far"  # beyond the buffer's bound: not kept, not to be acknowledged


class InOrder(Generic[T]):
    """Per sender (0..n-1): the next number expected and the early arrivals.

    :meth:`take` hands each item to ``apply(sender, item)`` exactly once, in number order.
    """

    def __init__(self, n_senders: int, apply: Callable[[int, T], None], max_ahead: int = MAX_AHEAD) -> None:
        self._next = [1] * n_senders
        self._buffer: list[dict[int, T]] = [{} for _ in range(n_senders)]
        self._apply = apply
        self._max_ahead = max_ahead

    def take(self, sender: int, seq: int, item: T) -> Accepted:
        nxt = self._next[sender]
        buf = self._buffer[sender]
        if seq < nxt or seq in buf:
            return Accepted.DUPLICATE
        if seq >= nxt + self._max_ahead:
            return Accepted.TOO_FAR
        buf[seq] = item
        if seq != nxt:
            return Accepted.BUFFERED
        while nxt in buf:
            self._apply(sender, buf.pop(nxt))
            nxt += 1
        self._next[sender] = nxt
        return Accepted.APPLIED

    def next_seq(self, sender: int) -> int:
        """The number ``sender``'s next report to apply must carry."""
        return self._next[sender]

    def held(self) -> int:
        """Early arrivals waiting for a gap to fill, over every sender."""
        return sum(map(len, self._buffer))

"""The coordinator's byte budget for reports: workers offer, the coordinator grants.

A worker's report is ~50 kB (the ticket-purchase scenario's trends). Before grants, every
worker sent each report as soon as it was cut, so what the coordinator could be made to hold
grew with the fleet: a coordinator that fell behind had libzmq's queue of every peer full
(RCVHWM frames each: ~290 MB at 1,000 workers), however little of it the coordinator could
merge in the next second. Now a report goes in two steps::

    W -> C  Offer(run_id, seq, size)   tiny: "report seq is ready, it is size bytes"
    C -> W  Grant(run_id, seq)         "send it"; the worker then sends the Report itself

and the coordinator's I/O thread grants only while the bytes granted and not yet arrived, plus
the bytes arrived and not yet taken by its loop, stay within one budget for the whole fleet.
What waits beyond that waits in the workers, which keep every report until it is
acknowledged anyway; the coordinator holds a queue of small offers. Its peak memory then
grows with the connections it serves (libzmq's state, ~35 kB each) and not with the backlog.

This module is the bookkeeping alone, pure (no clock, no I/O), driven by the router's thread
(:mod:`surge.common.router`), which is its only user:

* Offers wait first in, first out; the head is granted when it fits the budget, or alone
  when nothing else is granted or unread (a report larger than the budget still goes). The
  queue never skips its head, so a large report is not starved by small ones.
* A grant whose report has not arrived within ``ttl_s`` (of the caller's clock: the router
  uses listening time, so a coordinator that is not reading does not expire its own grants)
  gives its bytes back, and the worker's next offer of it is granted again. A lost worker's
  grant costs the budget for ``ttl_s`` at most.
* An offer of a report that is granted and on its way, or arrived and not yet taken by the
  coordinator's loop, is not queued again (a worker re-offers what is not acknowledged, on
  its resend backoff). Once the loop has taken it, the session has applied it (the router
  then answers a re-offer with an Ack) or not kept it (ahead of a gap too far): then a
  re-offer is granted, and the report comes again.
* At most ``max_offers_per_peer`` offers wait per peer; more are dropped (the worker offers
  them again later), so the queue is bounded by the fleet, with a few small entries each.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

GRANT_BUDGET_BYTES = 8 * 2**20  # reports granted or unread, fleet-wide: ~170 of the seed's 48 kB reports
GRANT_TTL_S = 5.0  # of listening time
MAX_OFFERS_PER_PEER = 8
_LANDED_PER_PEER = 64  # arrived reports remembered per peer until taken (the worker's outbox holds 64)

Key = tuple[bytes, str, int]  # (peer identity, run_id, seq)


@dataclass
class _Granted:
    size: int
    at: float


class GrantBook:
    """Offers waiting, grants outstanding, and the budget between them (one router thread's)."""

    def __init__(
        self,
        budget_bytes: int = GRANT_BUDGET_BYTES,
        *,
        ttl_s: float = GRANT_TTL_S,
        max_offers_per_peer: int = MAX_OFFERS_PER_PEER,
    ) -> None:
        self.budget_bytes = max(1, budget_bytes)
        self.ttl_s = ttl_s
        self.max_offers_per_peer = max(1, max_offers_per_peer)
        self._waiting: collections.OrderedDict[Key, int] = collections.OrderedDict()  # key -> size
        self._waiting_per_peer: collections.Counter[bytes] = collections.Counter()
        self._granted: collections.OrderedDict[Key, _Granted] = collections.OrderedDict()  # oldest first
        # peer -> (run_id, seq) -> its ticket: the loop has taken it once the router's count of
        # messages taken reaches the ticket (the inbox is first in, first out)
        self._landed: dict[bytes, collections.OrderedDict[tuple[str, int], int]] = {}
        self.outstanding_bytes = 0
        self.granted_total = 0
        self.expired = 0
        self.dropped_offers = 0

    @property
    def waiting(self) -> int:
        """Offers not yet granted."""
        return len(self._waiting)

    @property
    def outstanding(self) -> int:
        """Grants whose report has not arrived."""
        return len(self._granted)

    def offer(self, peer: bytes, run_id: str, seq: int, size: int, taken: int) -> bool:
        """Queue an offer; False if it is granted already, arrived and not yet taken (``taken``:
        how many arrivals the loop has taken), waiting, or if its peer has too many waiting."""
        key = (peer, run_id, seq)
        if key in self._granted or key in self._waiting:
            return False
        landed = self._landed.get(peer)
        if landed is not None:
            ticket = landed.pop((run_id, seq), None)
            if ticket is not None and ticket > taken:
                landed[(run_id, seq)] = ticket
                return False
        if self._waiting_per_peer[peer] >= self.max_offers_per_peer:
            self.dropped_offers += 1
            return False
        self._waiting[key] = max(0, size)
        self._waiting_per_peer[peer] += 1
        return True

    def grant(self, now: float, unread_bytes: int) -> list[Key]:
        """The offers to grant now, given ``unread_bytes`` arrived and not yet taken (each is then
        outstanding, its bytes counted, until :meth:`arrived` or its TTL)."""
        self._expire(now)
        out: list[Key] = []
        while self._waiting:
            key, size = next(iter(self._waiting.items()))
            used = self.outstanding_bytes + max(0, unread_bytes)
            if used + size > self.budget_bytes and (used > 0 or out):
                break
            del self._waiting[key]
            self._drop_waiting_count(key[0])
            self._granted[key] = _Granted(size, now)
            self.outstanding_bytes += size
            self.granted_total += 1
            out.append(key)
        return out

    def arrived(self, peer: bytes, run_id: str, seq: int, ticket: int = 0) -> bool:
        """A report arrived: its grant's bytes are free again. ``ticket``: the number of the
        arrival the loop will take it as (0: it never reaches the loop, a duplicate answered by
        the router). False if it had no grant outstanding (expired, or never granted)."""
        granted = self._granted.pop((peer, run_id, seq), None)
        if granted is not None:
            self.outstanding_bytes -= granted.size
        if ticket:
            landed = self._landed.setdefault(peer, collections.OrderedDict())
            landed[(run_id, seq)] = ticket
            while len(landed) > _LANDED_PER_PEER:
                landed.popitem(last=False)
        return granted is not None

    def forget(self, peer: bytes) -> None:
        """A peer that is gone: its offers, grants and landed reports go with it."""
        for key in [k for k in self._waiting if k[0] == peer]:
            del self._waiting[key]
        self._waiting_per_peer.pop(peer, None)
        for key in [k for k in self._granted if k[0] == peer]:
            self.outstanding_bytes -= self._granted.pop(key).size
        self._landed.pop(peer, None)

    def _expire(self, now: float) -> None:
        while self._granted:
            key, granted = next(iter(self._granted.items()))
            if now - granted.at < self.ttl_s:
                break
            del self._granted[key]
            self.outstanding_bytes -= granted.size
            self.expired += 1

    def _drop_waiting_count(self, peer: bytes) -> None:
        left = self._waiting_per_peer[peer] - 1
        if left > 0:
            self._waiting_per_peer[peer] = left
        else:
            del self._waiting_per_peer[peer]

"""The coordinator's end of the ZeroMQ link: one ROUTER socket, many workers.

The coordinator binds a ROUTER socket; every worker connects a DEALER
(:mod:`surge.common.dealer`). ROUTER prefixes each incoming frame with the sender's identity,
which is how the coordinator tells workers apart and answers one of them. The I/O thread both
ends share, and the rules it keeps (heartbeats in every phase, silence measured by arrival,
backpressure instead of a growing inbox, clocks compared on the threads), are described in
:mod:`surge.common.wire`; this module is the part only the coordinator has: who is watched,
what a frame from a stranger may cost, when reading stops, how a resend of a report
already applied is answered without decoding it, and which offered reports are granted: the
thread keeps the bytes of reports granted or unread within one budget for the whole fleet
(:mod:`surge.common.grants`), so what a coordinator that falls behind holds does not grow
with the number of workers.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass

import zmq

from surge.common import curve
from surge.common.clock import ClockSample, clock_sample
from surge.common.errors import ProtocolError
from surge.common.grants import GRANT_BUDGET_BYTES, GrantBook
from surge.common.protocol import (
    Ack,
    Grant,
    Heartbeat,
    Message,
    Offer,
    Ping,
    Pong,
    Report,
    decode,
    encode,
    peek_report,
    peek_seq,
)
from surge.common.wire import (
    _LINGER_MS,
    HEARTBEAT_S,
    LOOP_STALE_S,
    MAX_FRAME_TO_COORDINATOR,
    LinkError,
    _log,
    _Thread,
    check_endpoint,
)

MAX_INBOX = 10_000  # messages from strangers waiting for the coordinator's loop; more are dropped
# Decoded messages waiting for the coordinator's loop before its thread stops reading: a
# report decodes to ~0.1 MB of sketches, and 1,000 workers send 1,000 reports a second.
MAX_UNREAD = 128
# The coordinator's loop beat only has to beat LOOP_STALE_S, and its thread has nothing timed
# but its heartbeats: both wake once a second, not ten times (an idle coordinator's CPU).
_ROUTER_BEAT_S = 1.0
# Frames libzmq holds per peer, read from TCP and not yet read by the thread. Its default
# (1,000) bounds messages, not bytes: a coordinator that fell behind held every resend of
# every worker's 50 kB reports (3 GB at 1,000 workers). Beyond this many, libzmq stops
# reading that peer's connection and the frames wait in TCP and in the worker, which keeps
# them until acknowledged anyway. Reports come only when granted (the grant budget), so what
# waits here beyond the granted reports is small frames: offers, heartbeats.
_RCVHWM_PER_PEER = 4
# Messages read in one turn of the thread are handed to the loop together, this many at most.
_HANDOVER_BATCH = 32
_PEEK_OVER = 4096  # frames larger than this (reports) are peeked at for a resend before decoding
_STRANGER_EVERY_S = 1.0  # at most one message a second from an identity that is not a peer
_MAX_STRANGERS = 4096
_MAX_PINGS = 16  # unanswered clock probes remembered per peer


@dataclass(frozen=True)
class Arrival:
    """A message that decoded, with who sent it and when it arrived (``link.now()`` clock)."""

    identity: bytes
    peer: str  # the sender's address, as libzmq saw it ("" if unknown)
    at: float
    msg: Message
    size: int = 0  # a report's frame bytes: counted in the grant budget until the loop takes it


@dataclass(frozen=True)
class Refused:
    """A frame from a known peer that did not decode; ``report`` is what it claimed to be, if a Report."""

    identity: bytes
    peer: str
    at: float
    reason: str
    report: tuple[str, int, bool] | None  # (run_id, seq, final)


class RouterLink(_Thread):
    """The coordinator's end: many workers, addressed by their ZeroMQ identity.

    The session calls :meth:`watch` for each worker it welcomed: watched identities get
    heartbeats, have their arrival times and their last heartbeat kept, and have their bad
    frames delivered as :class:`Refused` (so that a bad report can be skipped and the worker
    told). Everyone else's bad frames are only counted and logged, and at most one message a
    second per unknown identity reaches the session.

    At most ``max_unread`` decoded messages wait for the session; beyond that the thread stops
    reading until the session has taken half of them (see the module's docstring: the backlog
    stays in ZeroMQ's queues and the workers', and silence is counted in listening time).
    """

    _beat_s = _ROUTER_BEAT_S
    _poll_s = None
    _read_per_turn = 1000  # frames, then the outgoing queue and the clock get their turn

    def __init__(
        self,
        bind: str,
        *,
        keys: curve.CoordinatorKeys | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        max_frame: int = MAX_FRAME_TO_COORDINATOR,
        max_unread: int = MAX_UNREAD,
        grant_budget: int = GRANT_BUDGET_BYTES,
        log: Callable[[str], None] = _log,
    ) -> None:
        check_endpoint(bind)
        # Backpressure state. Each counter has one writer (the thread delivers, the loop
        # takes), so their difference is exact without a lock; _deaf is (seconds that were not
        # listening time before the current stretch of it, when that stretch began or None),
        # replaced whole so that the loop never reads half an update.
        self._max_unread = max(2, max_unread)
        self._delivered = 0
        self._taken = 0
        self._paused = False
        self._behind = False  # the last turn left frames in the socket (see _read_all)
        self._deaf: tuple[float, float | None] = (0.0, None)
        self.pauses = 0
        # The grant budget: the thread's book; report bytes delivered (thread) and taken (loop).
        self.grants = GrantBook(grant_budget)
        self._delivered_bytes = 0
        self._taken_bytes = 0
        self._gone: collections.deque[bytes] = collections.deque()  # forgotten peers (loop appends, thread pops)
        self.ungranted = 0  # reports that came without a grant (a peer that does not follow the protocol)
        super().__init__("surge-coordinator-link", bind, heartbeat_s, log)
        self._auth: curve.FleetAuthenticator | None = None
        sock = self._sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, _LINGER_MS)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, max_frame)
        sock.setsockopt(zmq.RCVHWM, _RCVHWM_PER_PEER)
        try:
            if keys is not None:
                # The gate first: a CURVE server without its ZAP handler would let anyone in.
                self._auth = curve.start_authenticator(self._ctx, keys, on_refused=log)
                curve.make_server(sock, keys)
                self._auth.watch(sock)  # handshakes that fail before the gate is asked
            sock.bind(bind)
        except zmq.ZMQError as exc:
            self._shutdown_sockets()
            self._close_thread()
            raise LinkError(f"cannot listen on {bind}: {exc.strerror}") from None
        self.endpoint: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._inbox: asyncio.Queue[Arrival | Refused] = asyncio.Queue()
        self._batch: list[Arrival | Refused] = []  # read this turn, not yet handed to the loop (the thread's)
        self._watched: set[bytes] = set()
        self._arrivals: dict[bytes, float] = {}  # identity -> last arrival on the listening clock (now - deaf)
        self._health: dict[bytes, Heartbeat] = {}
        self._strangers: dict[bytes, float] = {}
        self._probes: collections.deque[bytes] = collections.deque()  # identities to Ping (loop appends, thread pops)
        # identity -> when its Pings still unanswered left (the thread's own): a round trip longer
        # than the gap between probes still counts, matched by its stamp
        self._pinged: dict[bytes, collections.deque[float]] = {}
        self._clocks: dict[bytes, ClockSample] = {}
        self._applied: dict[bytes, tuple[str, int]] = {}  # identity -> (run_id, next seq the session expects)
        self.duplicates = 0  # resends of applied reports, acknowledged here undecoded
        self.bad_frames = 0
        self._beat_frame = encode(Heartbeat())
        self._spoke: set[bytes] = set()  # peers sent a frame other than a beat since the last beat (the thread's)
        self._start()

    # -------------------------------------------------------------- the session's side

    async def recv(self) -> Arrival | Refused:
        got = await self._inbox.get()
        self._took(got)
        return got

    def recv_nowait(self) -> Arrival | Refused | None:
        """The next message if one is waiting, else None (no task, no timer: the report hot path)."""
        try:
            got = self._inbox.get_nowait()
        except asyncio.QueueEmpty:
            return None
        self._took(got)
        return got

    def _took(self, got: Arrival | Refused) -> None:
        self._taken += 1
        if isinstance(got, Arrival) and got.size:
            self._taken_bytes += got.size
            if self.grants.waiting:  # room in the budget for an offer that waits: the thread grants it
                self._queue_wake()
        # The thread sets _paused before it looks at _taken again (see _reading), so one of
        # the two always sees the other's write: a paused thread is never left waiting. A
        # paused thread delivers nothing, so the count falls one by one and passes half once:
        # one wake-up per pause, not one per message taken.
        if self._paused and self._delivered - self._taken == self._max_unread // 2:
            self._queue_wake()

    @property
    def unread(self) -> int:
        """Decoded messages delivered to the loop and not yet taken (at most ``max_unread``)."""
        return self._delivered - self._taken

    def deaf_s(self, now: float | None = None) -> float:
        """Seconds, since the link opened, that were not listening time: its thread did not read
        the socket (backpressure), or read all the time and still left frames in it (behind)."""
        total, since = self._deaf
        return total if since is None else total + ((self.now() if now is None else now) - since)

    def send(self, identity: bytes, msg: Message) -> None:
        """Queue ``msg`` for ``identity``; a peer that is gone is noticed by its silence."""
        self._queue([identity, encode(msg)])

    def watch(self, identity: bytes) -> None:
        now = self.now()
        self._arrivals.setdefault(identity, now - self.deaf_s(now))
        self._watched.add(identity)

    def applied(self, identity: bytes, run_id: str, next_seq: int) -> None:
        """Every report of ``run_id`` below ``next_seq`` from this peer is applied: the thread
        acknowledges resends of them itself, without decoding them (nor queueing them for the
        loop). A coordinator that falls behind gets resends of what it has not acked yet, and
        decoding each again would only put it further behind."""
        self._applied[identity] = (run_id, next_seq)

    def forget(self, identity: bytes) -> None:
        self._gone.append(identity)
        self._watched.discard(identity)
        self._applied.pop(identity, None)
        self._arrivals.pop(identity, None)
        self._health.pop(identity, None)
        self._clocks.pop(identity, None)
        self._pinged.pop(identity, None)

    def last_arrival(self, identity: bytes) -> float | None:
        """When the last valid frame from a watched peer arrived (``now()`` clock), moved later by
        the time the thread has not read since then (backpressure): ``now() - last_arrival`` is
        how long the link listened without hearing from the peer."""
        stamp = self._arrivals.get(identity)
        if stamp is None:
            return None
        return stamp + self.deaf_s()

    def health(self, identity: bytes) -> Heartbeat | None:
        """The last heartbeat a watched peer sent."""
        return self._health.get(identity)

    def probe(self, identity: bytes) -> None:
        """Measure a watched peer's clock once more: its thread sends the Ping, stamped as it goes."""
        self._probes.append(identity)
        self._queue_wake()

    def clock(self, identity: bytes) -> ClockSample | None:
        """The best clock estimate for a watched peer so far (None before its first Pong)."""
        return self._clocks.get(identity)

    def close(self) -> None:
        self._close_thread()
        self._log.flush("refused frame")
        if self._thread is None or not self._thread.is_alive():
            self._shutdown_sockets()

    def _shutdown_sockets(self) -> None:
        # In this order: the socket, then the gate, then the context (term() before the
        # gate's stop() would hang on its ZAP socket).
        self._sock.close(linger=_LINGER_MS)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        self._ctx.term()

    # -------------------------------------------------------------- the I/O thread

    def _beat_now(self, now: float) -> None:
        # Only to peers this thread sent nothing else since the last beat: a worker takes any
        # frame as word from the coordinator, and in a run each gets a Grant and an Ack a
        # second, so a beat to it as well was a third of the frames (and of their CPU).
        spoke, self._spoke = self._spoke, set()
        if now - self.loop_alive < LOOP_STALE_S:  # a hung coordinator must look gone
            beat = self._beat_frame
            for identity in list(self._watched):
                if identity not in spoke:
                    self._out.append([identity, beat])

    def _reading(self) -> bool:
        if not self._paused:
            if self._delivered - self._taken < self._max_unread:
                return True
            self._paused = True  # first, then look at _taken again (see _took)
            self.pauses += 1
            self._deafness(True)
        if self._delivered - self._taken > self._max_unread // 2:
            return False
        self._paused = False
        self._deafness(self._behind)
        return True

    def _deafness(self, deaf: bool) -> None:
        """Begin or end a stretch of time that is not listening time (see :meth:`last_arrival`)."""
        total, since = self._deaf
        if deaf and since is None:
            self._deaf = (total, self.now())
        elif not deaf and since is not None:
            self._deaf = (total + (self.now() - since), None)

    def _deliver_one(self, item: Arrival | Refused) -> None:
        self._delivered += 1
        self._batch.append(item)
        if len(self._batch) >= _HANDOVER_BATCH:
            self._hand_over()

    def _hand_over(self) -> None:
        """Give the loop what this turn has read so far, in one call: one wake-up of the loop
        per batch instead of one per message (a report's hand-over cost as much as its Ack)."""
        if self._batch:
            batch, self._batch = self._batch, []
            self._deliver(batch, self._put_batch)  # type: ignore[arg-type]

    def _put_batch(self, batch: list[Arrival | Refused]) -> None:
        for item in batch:
            self._inbox.put_nowait(item)

    def _read_all(self) -> None:
        drained = False
        try:
            drained = self._read_some()
        finally:
            self._hand_over()  # nothing read waits for the next turn
            # Frames left waiting in the socket arrived at times nobody knows yet, and a
            # peer's heartbeat waits behind its own reports: a coordinator that reads all
            # the time but falls behind must not judge its peers by when it got to them.
            # Until a turn empties the socket again, that time is not listening time either.
            self._behind = not drained
            self._deafness(self._behind or self._paused)

    def _read_some(self) -> bool:
        """Read, decode and deliver what the socket holds; True if it was emptied."""
        for _ in range(self._read_per_turn):  # then look at the outgoing queue and the clock again
            if self._delivered - self._taken >= self._max_unread:
                return False  # full: the next turn stops reading (_reading)
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return True
            now = self.now()
            identity = frames[0].bytes
            peer = str(frames[-1].get("Peer-Address") or "")
            if len(frames) != 2:
                self._refuse(identity, peer, now, f"expected [identity, frame], got {len(frames)} frames", None)
                continue
            raw = frames[1].bytes
            done = self._applied.get(identity) if len(raw) > _PEEK_OVER else None
            if done is not None and identity in self._watched:
                head = peek_seq(raw)
                if head is not None and head[0] == done[0] and head[1] < done[1]:
                    self._arrivals[identity] = now - self.deaf_s(now)
                    self.duplicates += 1
                    self.grants.arrived(identity, head[0], head[1])
                    self._out.append([identity, encode(Ack(head[0], head[1]))])
                    continue
            try:
                msg = decode(raw)
            except ProtocolError as exc:
                claimed = peek_report(raw)
                if claimed is not None and identity in self._watched:
                    self.grants.arrived(identity, claimed[0], claimed[1], self._delivered + 1)
                self._refuse(identity, peer, now, str(exc), claimed)
                continue
            watched = identity in self._watched
            if watched:
                self._arrivals[identity] = now - self.deaf_s(now)  # on the listening clock
                if isinstance(msg, Heartbeat):
                    self._health[identity] = msg
                    continue
                if isinstance(msg, Pong):
                    waiting = self._pinged.get(identity)
                    if waiting is not None and msg.t in waiting:  # the answer to one of this link's own Pings
                        waiting.remove(msg.t)
                        sample = clock_sample(msg.t, msg.worker_t, now, self._clocks.get(identity))
                        if sample is not None:
                            self._clocks[identity] = sample
                    continue
                if isinstance(msg, Offer):
                    self._offered(identity, msg)
                    continue
            elif isinstance(msg, (Heartbeat, Pong, Offer)):
                continue
            else:
                last = self._strangers.get(identity)
                if (last is not None and now - last < _STRANGER_EVERY_S) or self._inbox.qsize() > MAX_INBOX:
                    self.dropped_frames += 1
                    continue
                if len(self._strangers) >= _MAX_STRANGERS:
                    self._strangers.clear()
                self._strangers[identity] = now
            size = 0
            if watched and isinstance(msg, Report):
                size = len(raw)
                if not self.grants.arrived(identity, msg.run_id, msg.seq, self._delivered + 1):
                    self.ungranted += 1
                self._delivered_bytes += size
            self._deliver_one(Arrival(identity, peer, now, msg, size))
        return False  # a turn's worth read: more may wait

    def _offered(self, identity: bytes, offer: Offer) -> None:
        """A watched peer has a report ready: acknowledge it if it is applied already (the Ack
        was lost), else queue it for a grant (:meth:`_grant_due`)."""
        done = self._applied.get(identity)
        if done is not None and done[0] == offer.run_id and offer.seq < done[1]:
            self._out.append([identity, encode(Ack(offer.run_id, offer.seq))])
            return
        self.grants.offer(identity, offer.run_id, offer.seq, offer.size, self._taken)

    def _grant_due(self) -> None:
        """Grant what the budget has room for, on the listening clock (a coordinator that is not
        reading does not expire the grants whose reports wait for it)."""
        while self._gone:
            self.grants.forget(self._gone.popleft())
        if not self.grants.waiting:
            return
        now = self.now()
        unread_bytes = self._delivered_bytes - self._taken_bytes
        for identity, run_id, seq in self.grants.grant(now - self.deaf_s(now), unread_bytes):
            self._out.append([identity, encode(Grant(run_id, seq))])

    def _refuse(self, identity: bytes, peer: str, now: float, reason: str, report: tuple[str, int, bool] | None) -> None:
        self.bad_frames += 1
        who = f"{peer or 'unknown address'} (identity {identity.hex()[:10]})"
        self._log(peer or "an unknown address", f"refused a frame from {who}: {reason}")
        if identity in self._watched:
            self._deliver_one(Refused(identity, peer, now, reason, report))

    def _write_all(self) -> None:
        self._grant_due()
        while self._probes:
            identity = self._probes.popleft()
            if identity in self._watched:
                at = self.now()
                self._pinged.setdefault(identity, collections.deque(maxlen=_MAX_PINGS)).append(at)
                self._out.append([identity, encode(Ping(at))])
        beat, spoke = self._beat_frame, self._spoke
        while self._out:
            frames = self._out.popleft()
            try:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
                if frames[1] is not beat:
                    spoke.add(frames[0])
            except zmq.ZMQError as exc:
                if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                    self._log("send", f"could not send to a worker: {exc.strerror}")
                # gone or not reading: noticed by its silence

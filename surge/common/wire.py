"""ZeroMQ links between coordinator and workers: the ZeroMQ edge of surge, with :mod:`curve`.

This module holds what both ends share (the I/O thread, its wake-up pipe and queue, the
endpoint check) and the coordinator's end, :class:`RouterLink`; the worker's end,
``DealerLink``, is :mod:`surge.common.dealer`.

The coordinator binds a ROUTER socket; every worker connects a DEALER. ROUTER prefixes each
incoming frame with the sender's identity, which is how the coordinator tells workers apart
and answers one of them. Frames are :mod:`surge.common.protocol` messages.

Each end's socket lives in an **I/O thread** of its own, not on the event loop that runs the
VUs or merges reports. That is what makes the safety rules hold whatever the code on the loop
does:

* **Heartbeats in every phase.** The thread sends a ``Heartbeat`` every ``heartbeat_s`` while
  the run gathers, while a worker imports a scenario that takes seconds to load, during the
  load and while the summary is written. The coordinator's thread stops beating when its own
  loop has not run for :data:`LOOP_STALE_S` (a hung coordinator must look gone, so that its
  workers stop).
* **Silence is measured by arrival.** The coordinator's thread stamps each frame when it
  arrives (:meth:`RouterLink.last_arrival`), so a coordinator busy merging for a few seconds
  reads a queue of fresh frames, not a fleet of silent workers.
* **Backpressure, not a growing inbox.** The coordinator's thread keeps at most ``max_unread``
  decoded messages waiting for the loop. When the loop falls that far behind, the thread stops
  reading the socket (it still sends, and still beats) until the loop has taken half of them:
  frames wait undecoded in ZeroMQ's per-peer queues, then in TCP, then in the workers' own
  queues (a worker keeps every report until it is acknowledged), so the coordinator's memory
  does not grow with a backlog it cannot serve, and the decoding it defers leaves the CPU to
  the loop that is behind. Heartbeats then wait too, so silence is counted in *listening*
  time: the time the thread was not reading is left out of every peer's silence
  (:meth:`RouterLink.last_arrival`), and so is the time it read without pause but ended its
  turns with frames still waiting (a coordinator short of CPU: a peer's heartbeat waits in
  ZeroMQ behind its own reports). A worker is silent when the link listened, caught up, and
  heard nothing from it, never because the coordinator was too busy to listen. (The price:
  while the socket is never emptied, by a flood for instance, no peer is judged silent.)
* **The coordinator-loss guard does not depend on the VUs' loop.** A worker's thread notices
  the coordinator's silence by itself and asks the loop to stop the load. If scenario code
  holds the loop so that the request is never served, the thread calls ``on_wedged`` (the CLI
  ends the process), because surge must never leave load running with nobody watching.
* **Clocks are compared on the threads.** The coordinator's thread stamps a ``Ping`` as it
  sends it and a ``Pong`` as it arrives; the worker's thread answers at once with its own
  clock. Neither loop's latency enters the round trip, so the offset estimate
  (:class:`ClockSample`, the sample with the shortest round trip wins) is off by at most half
  of that round trip's asymmetry.
* **A blocked loop is named.** The worker's heartbeat says how long its loop has not run and
  which scenario line holds it (``stall_site``), so ``time.sleep(10)`` in a scenario is
  reported as the cause instead of passing for a lost worker.

Every frame is suspect: ``MAXMSGSIZE`` makes libzmq drop a peer that announces a frame larger
than the largest legitimate message (before it is read into memory), a frame that does not
decode is refused with a rate-limited log line that tells peers apart by address, and no
stranger gets a reply. Outgoing frames wait in a bounded queue. ``ROUTER_MANDATORY`` makes a
send to a vanished worker fail at once instead of queueing, and ``LINGER`` is bounded so that
closing never hangs on a peer that will not read. CURVE keys (:mod:`surge.common.curve`)
encrypt and authenticate both ends.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import zmq

from surge.common import curve, endpoints
from surge.common.clock import ClockSample, clock_sample
from surge.common.errors import ExitCode, ProtocolError, SurgeError
from surge.common.protocol import Ack, Heartbeat, Message, Ping, Pong, decode, encode, peek_report, peek_seq
from surge.common.ratelimit import LogLimiter

HEARTBEAT_S = 1.0
LOOP_STALE_S = 10.0  # the coordinator stops beating when its own loop has not run for this long
STALL_NOTICE_S = 0.5  # a worker's loop this late is reported in its heartbeats
STALL_LOG_S = 2.0  # ... and said in words on its stderr
WEDGE_GRACE_S = 3.0  # after the loop was asked to stop the load, how long it has to do so
MAX_FRAME_TO_COORDINATOR = 16 * 2**20  # a report: ~20 kB per trend series
MAX_FRAME_TO_WORKER = 40 * 2**20  # a Run: the bundle (scenario.MAX_BUNDLE_BYTES) and the plan
MAX_QUEUED_FRAMES = 4096  # outgoing frames waiting for the I/O thread; the oldest go first
MAX_INBOX = 10_000  # messages from strangers waiting for the coordinator's loop; more are dropped
# Decoded messages waiting for the coordinator's loop before its thread stops reading: a
# report decodes to ~0.1 MB of sketches, and 1,000 workers send 1,000 reports a second.
MAX_UNREAD = 128
_LINGER_MS = 2000
_POLL_MS = 100
_BEAT_S = 0.1  # how often a worker's loop proves to its thread that it runs (its stall report's resolution)
# The coordinator's loop beat only has to beat LOOP_STALE_S, and its thread has nothing timed
# but its heartbeats: both wake once a second, not ten times (an idle coordinator's CPU).
_ROUTER_BEAT_S = 1.0
# Frames libzmq holds per peer, read from TCP and not yet read by the thread. Its default
# (1,000) bounds messages, not bytes: a coordinator that fell behind held every resend of
# every worker's 50 kB reports (3 GB at 1,000 workers). Beyond this many, libzmq stops
# reading that peer's connection and the frames wait in TCP and in the worker, which keeps
# them until acknowledged anyway. A worker that keeps up has one report and one heartbeat
# in flight.
_RCVHWM_PER_PEER = 4
# Messages read in one turn of the thread are handed to the loop together, this many at most.
_HANDOVER_BATCH = 32
_PEEK_OVER = 4096  # frames larger than this (reports) are peeked at for a resend before decoding
_STRANGER_EVERY_S = 1.0  # at most one message a second from an identity that is not a peer
_MAX_STRANGERS = 4096
_MAX_PINGS = 16  # unanswered clock probes remembered per peer


class LinkError(SurgeError):
    """A link could not be set up: an endpoint that cannot be bound or connected."""

    exit_code = ExitCode.INVALID_CONFIG


def check_endpoint(endpoint: str, *, to_connect: bool = False) -> str:
    """``endpoint`` if surge can use it, else a one-line LinkError (:mod:`surge.common.endpoints`).

    ``to_connect``: an address to dial, where ``*`` (any interface, any port) means nothing.
    """
    try:
        endpoints.check_endpoint(endpoint)
        if to_connect and endpoint.startswith("tcp://"):
            host, port = endpoints.parse_tcp_endpoint(endpoint)
            if host == "*" or port is None:
                raise ValueError(f"{endpoint!r}: connect to a host and port, e.g. tcp://jumpbox:5557 (* is for --bind)")
        return endpoint
    except ValueError as exc:
        raise LinkError(str(exc)) from None


def _quietly(log: Callable[[str], None]) -> Callable[[str], None]:
    def emit(text: str) -> None:
        try:
            log(text)
        except (OSError, ValueError):
            pass  # stderr is gone (a closed pipe): the line is lost, the thread is not

    return emit


def _log(text: str) -> None:
    print(f"surge: {text}", file=sys.stderr, flush=True)


class _Thread:
    """What both links share: the thread and its poll loop, the wake-up pipe, the outgoing
    queue, the loop's pulse, the rate-limited log and the ZeroMQ context.

    The thread's loop: wait for the socket, the wake-up pipe or a timeout; read what arrived;
    write what is queued; every ``heartbeat_s`` call :meth:`_beat_now`; then :meth:`_after`
    (the worker's guard). A subclass owns one socket (``_sock``) and says how to read it.
    """

    _beat_s = _BEAT_S  # the loop's pulse
    _poll_s: float | None = _POLL_MS / 1000  # the thread's longest wait; None: until the next heartbeat

    def __init__(self, name: str, endpoint: str, heartbeat_s: float, log: Callable[[str], None]) -> None:
        self._heartbeat_s = heartbeat_s
        self._emit = _quietly(log)  # a closed or broken stderr must never stop the thread
        self._log = LogLimiter(self._emit)
        self.faults = 0
        self._ctx = zmq.Context()
        self._sock: zmq.Socket[bytes]
        self._extra: zmq.Socket[bytes] | None = None  # a second socket to watch (a monitor)
        self._loop = asyncio.get_running_loop()
        self._out: collections.deque[list[bytes]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False  # a byte is in the pipe, or about to be (see _queue_wake)
        self._closing = threading.Event()
        self.loop_alive = time.monotonic()
        self._pulse = self._loop.create_task(self._beat())
        self._name = name
        self._thread: threading.Thread | None = None
        self.dropped_frames = 0

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()

    async def _beat(self) -> None:
        while True:
            self.loop_alive = time.monotonic()
            await asyncio.sleep(self._beat_s)

    @staticmethod
    def now() -> float:
        """The clock every arrival time and silence is measured on."""
        return time.monotonic()

    def _queue(self, frames: list[bytes]) -> None:
        # Only appends here: the thread alone pops (see _trim), so a frame it is sending
        # cannot be taken from under it.
        self._out.append(frames)
        self._queue_wake()

    def _queue_wake(self) -> None:
        # One byte per turn of the thread, not one per frame queued: a coordinator acking
        # hundreds of reports a second would otherwise pay a send and a wake-up for each.
        # The thread clears the flag once it has drained the pipe, and reads what it was
        # woken for after that (see _drain_wake), so nothing queued is left waiting for a
        # wake-up that never comes.
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the thread is awake already

    def _deliver(self, item: object, put: Callable[[object], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(put, item)
        except RuntimeError:
            pass  # the loop is closed: we are shutting down

    def _main(self) -> None:
        sock = self._sock
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        if self._extra is not None:
            poller.register(self._extra, zmq.POLLIN)
        next_beat = self.now()
        reading = True
        try:
            while True:
                try:
                    if reading != self._reading():  # backpressure (RouterLink): stop or resume reading
                        reading = not reading
                        poller.modify(sock, zmq.POLLIN if reading else 0)
                    wait_s = max(0.0, next_beat - self.now()) if self._poll_s is None else self._poll_s
                    events = dict(poller.poll(max(1, int(wait_s * 1000 + 1))))
                    self._woke(self.now())
                    if sock in events and reading:
                        self._read_all()
                    if self._wake_r.fileno() in events:
                        self._drain_wake()
                    self._trim()
                    if self._extra is not None and self._extra in events:
                        self._read_extra()
                    self._write_all()
                    now = self.now()
                    if now >= next_beat:
                        next_beat = now + self._heartbeat_s
                        self._beat_now(now)
                        self._write_all()
                    self._after(now)
                except Exception as exc:  # noqa: BLE001 - the thread is the safety net: it must go on
                    self.faults += 1
                    self._log(f"fault {type(exc).__name__}", f"the link's thread met {type(exc).__name__}: {exc}; going on")
                    time.sleep(_POLL_MS / 1000)  # never a hot loop of one fault
                if self._closing.is_set():
                    self._write_all()
                    break
        finally:
            self._thread_ends()

    # the subclass's part of the thread
    def _read_all(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write_all(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _beat_now(self, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read_extra(self) -> None:
        pass

    def _reading(self) -> bool:
        """Whether the thread reads its socket this turn (False: the far end waits)."""
        return True

    def _woke(self, now: float) -> None:
        """Called as each turn of the thread begins, before anything is read."""

    def _after(self, now: float) -> None:
        pass

    def _thread_ends(self) -> None:
        pass

    def _trim(self) -> None:
        """Bound the outgoing queue: the oldest go first (what matters is resent or repeated)."""
        while len(self._out) > MAX_QUEUED_FRAMES:
            self._out.popleft()
            self.dropped_frames += 1

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        # Only now: a wake-up that _queue_wake skipped because a byte was pending was for
        # state this turn still reads after this line (the outgoing queue, the probes, the
        # unread count at the top of the next turn). Cleared before the drain instead, a
        # byte sent meanwhile could be drained with the flag left set and the pipe empty,
        # and no wake-up would ever be sent again.
        self._wake_pending = False

    def _close_thread(self) -> None:
        self._closing.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=_LINGER_MS / 1000 + 3)
        self._pulse.cancel()
        self._wake_r.close()
        self._wake_w.close()


# --------------------------------------------------------------------------- coordinator


@dataclass(frozen=True)
class Arrival:
    """A message that decoded, with who sent it and when it arrived (``link.now()`` clock)."""

    identity: bytes
    peer: str  # the sender's address, as libzmq saw it ("" if unknown)
    at: float
    msg: Message


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
        self._start()

    # -------------------------------------------------------------- the session's side

    async def recv(self) -> Arrival | Refused:
        got = await self._inbox.get()
        self._took()
        return got

    def recv_nowait(self) -> Arrival | Refused | None:
        """The next message if one is waiting, else None (no task, no timer: the report hot path)."""
        try:
            got = self._inbox.get_nowait()
        except asyncio.QueueEmpty:
            return None
        self._took()
        return got

    def _took(self) -> None:
        self._taken += 1
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
        if now - self.loop_alive < LOOP_STALE_S:  # a hung coordinator must look gone
            beat = encode(Heartbeat())
            for identity in list(self._watched):
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
                    self._out.append([identity, encode(Ack(head[0], head[1]))])
                    continue
            try:
                msg = decode(raw)
            except ProtocolError as exc:
                self._refuse(identity, peer, now, str(exc), peek_report(raw))
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
            elif isinstance(msg, (Heartbeat, Pong)):
                continue
            else:
                last = self._strangers.get(identity)
                if (last is not None and now - last < _STRANGER_EVERY_S) or self._inbox.qsize() > MAX_INBOX:
                    self.dropped_frames += 1
                    continue
                if len(self._strangers) >= _MAX_STRANGERS:
                    self._strangers.clear()
                self._strangers[identity] = now
            self._deliver_one(Arrival(identity, peer, now, msg))
        return False  # a turn's worth read: more may wait

    def _refuse(self, identity: bytes, peer: str, now: float, reason: str, report: tuple[str, int, bool] | None) -> None:
        self.bad_frames += 1
        who = f"{peer or 'unknown address'} (identity {identity.hex()[:10]})"
        self._log(peer or "an unknown address", f"refused a frame from {who}: {reason}")
        if identity in self._watched:
            self._deliver_one(Refused(identity, peer, now, reason, report))

    def _write_all(self) -> None:
        while self._probes:
            identity = self._probes.popleft()
            if identity in self._watched:
                at = self.now()
                self._pinged.setdefault(identity, collections.deque(maxlen=_MAX_PINGS)).append(at)
                self._out.append([identity, encode(Ping(at))])
        while self._out:
            frames = self._out.popleft()
            try:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                    self._log("send", f"could not send to a worker: {exc.strerror}")
                # gone or not reading: noticed by its silence

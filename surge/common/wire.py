"""ZeroMQ links between coordinator and workers: the ZeroMQ edge of surge, with :mod:`curve`.

This module holds what both ends share (the I/O thread, its wake-up pipe and queue, the
endpoint check); the coordinator's end, ``RouterLink``, is :mod:`surge.common.router`, the
worker's end, ``DealerLink``, is :mod:`surge.common.dealer`.

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
  workers stop). Each end takes any frame as word from the other, so a beat is skipped for a
  peer that was sent another frame since the last beat (in a run every worker gets a Grant
  and an Ack a second and sends an Offer and a Report: beats on top were a third of the
  frames); a worker still beats when its loop's health changed, so a stall and its end are told.
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

import zmq

from surge.common import endpoints
from surge.common.errors import ExitCode, SurgeError
from surge.common.ratelimit import LogLimiter

HEARTBEAT_S = 1.0
LOOP_STALE_S = 10.0  # the coordinator stops beating when its own loop has not run for this long
STALL_NOTICE_S = 0.5  # a worker's loop this late is reported in its heartbeats
STALL_LOG_S = 2.0  # ... and said in words on its stderr
WEDGE_GRACE_S = 3.0  # after the loop was asked to stop the load, how long it has to do so
MAX_FRAME_TO_COORDINATOR = 16 * 2**20  # a report: ~20 kB per trend series
MAX_FRAME_TO_WORKER = 40 * 2**20  # a Run: the bundle (scenario.MAX_BUNDLE_BYTES) and the plan
MAX_QUEUED_FRAMES = 4096  # outgoing frames waiting for the I/O thread; the oldest go first
_LINGER_MS = 2000
_POLL_MS = 100
_BEAT_S = 0.1  # how often a worker's loop proves to its thread that it runs (its stall report's resolution)


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

"""The worker's end of a ZeroMQ link: one coordinator, watched from an I/O thread.

The big picture (threads, heartbeats, silence by arrival, the coordinator-loss guard, clock
probes) is in :mod:`surge.common.wire`, which holds what both ends share and the
coordinator's end; this module is the worker's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import zmq

from surge.common import curve
from surge.common.errors import ProtocolError
from surge.common.protocol import Heartbeat, Hello, Message, Ping, Pong, decode, encode
from surge.common.wire import (
    _LINGER_MS,
    HEARTBEAT_S,
    MAX_FRAME_TO_WORKER,
    STALL_LOG_S,
    STALL_NOTICE_S,
    WEDGE_GRACE_S,
    LinkError,
    _log,
    _Thread,
    check_endpoint,
)



class DealerLink(_Thread):
    """A worker's end: one coordinator.

    Until :meth:`welcomed`, the thread says ``hello`` every ``heartbeat_s``; after, it sends
    heartbeats and watches the coordinator's silence: past ``silence_s`` it calls
    ``on_silence`` on the loop once, and if the loop has not run ``WEDGE_GRACE_S`` later it
    calls ``on_wedged(reason)`` from the thread (see the module docstring).
    """

    def __init__(
        self,
        connect: str,
        *,
        hello: Hello,
        silence_s: float,
        on_silence: Callable[[], None],
        on_wedged: Callable[[str], None] | None = None,
        stall_site: Callable[[], str] | None = None,
        keys: curve.WorkerKeys | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        max_frame: int = MAX_FRAME_TO_WORKER,
        log: Callable[[str], None] = _log,
    ) -> None:
        check_endpoint(connect, to_connect=True)
        super().__init__("surge-worker-link", connect, heartbeat_s, log)
        self.endpoint = connect
        self._hello: Hello | None = hello
        self._silence_s = silence_s
        self._on_silence = on_silence
        self._on_wedged = on_wedged
        self._stall_site = stall_site
        sock = self._sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, _LINGER_MS)
        sock.setsockopt(zmq.MAXMSGSIZE, max_frame)
        sock.setsockopt(zmq.IMMEDIATE, 1)  # nothing queues for a coordinator that is not there
        try:
            if keys is not None:
                curve.make_client(sock, keys)
                self._extra = sock.get_monitor_socket()  # to say so when the handshake is refused
            sock.connect(connect)
        except zmq.ZMQError as exc:
            if self._extra is not None:  # else term() waits for the monitor socket forever
                sock.disable_monitor()
                self._extra.close(linger=0)
            sock.close(linger=0)
            self._ctx.term()
            self._close_thread()
            raise LinkError(f"cannot connect to {connect}: {exc.strerror}") from None
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.last_rx = self.now()
        self._armed = False
        self._silence_at: float | None = None
        self._silence_seen = False
        self._wedged = False
        self._stall_logged = False
        self._turn = self.now()  # when this thread last began a turn
        self._frozen = False  # this whole process did not run for longer than silence_s
        self._spoke = False  # a frame went out since the last beat (the thread's)
        self._well_told = False  # the last Heartbeat sent said the loop was well (see _next_beat)
        self._plain_beat = encode(Heartbeat())
        self._start()

    # -------------------------------------------------------------- the agent's side

    async def recv(self) -> Message:
        return await self._inbox.get()

    def send(self, msg: Message) -> None:
        self._queue([encode(msg)])

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame already encoded (the outbox encodes each report once)."""
        self._queue([frame])

    def welcomed(self) -> None:
        """The coordinator took this worker: heartbeats from now on, and the silence guard armed."""
        self.last_rx = self.now()
        self._hello = None
        self._silence_at = None
        self._wedged = False
        self._frozen = False
        self._armed = True

    def gone_quiet(self) -> bool:
        """Past the silence limit with no frame from the coordinator, or frozen past it (any thread may ask).

        Asked by the VUs before every request (:class:`surge.worker.http.LoadHalted`). A worker
        that was frozen (SIGSTOP, a paused VM) wakes with its VUs' timers due at once: if the
        loop runs first, ``last_rx`` is still old; if this thread runs first, it sees that it
        did not run for that long (:meth:`_woke`) before it reads the frames that waited in
        the socket, which would make ``last_rx`` look fresh. Either way no request goes out.
        """
        return self._armed and (self._frozen or time.monotonic() - self.last_rx > self._silence_s)

    def unwelcomed(self, hello: Hello) -> None:
        """Back to saying hello (the coordinator was lost, or a one-run worker leaves)."""
        self._armed = False
        self._hello = hello

    def close(self) -> None:
        self._armed = False
        self._close_thread()

    # -------------------------------------------------------------- the I/O thread

    def _thread_ends(self) -> None:
        if not self._closing.is_set() and self._armed and self._on_wedged is not None:
            # Not asked to close, yet ending: without this thread nobody would notice a lost
            # coordinator, so the load must not go on.
            self._on_wedged("the worker's link thread stopped")
        if self._extra is not None:
            self._sock.disable_monitor()
            self._extra.close(linger=0)
        self._sock.close(linger=_LINGER_MS)
        self._ctx.term()

    def _read_all(self) -> None:
        for _ in range(1000):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = decode(frames[-1])
            except ProtocolError as exc:
                self._log("bad-frame", f"refused a frame from the coordinator at {self.endpoint}: {exc}")
                continue
            self.last_rx = now = self.now()
            if isinstance(msg, Ping):
                self._out.append([encode(Pong(msg.t, now))])  # at once, on this thread: the loop's latency stays out
            elif not isinstance(msg, Heartbeat):
                self._deliver(msg, self._inbox.put_nowait)  # type: ignore[arg-type]

    def _read_extra(self) -> None:
        assert self._extra is not None
        for event in curve.handshake_events(self._extra):
            if "succeeded" not in event:  # a refused key retries every 100 ms: one line per window
                self._log(f"handshake {event}", event)

    def _write_all(self) -> None:
        while self._out:
            try:
                self._sock.send_multipart(self._out[0], zmq.NOBLOCK)
            except zmq.Again:
                return  # not connected yet (IMMEDIATE): kept, and tried again next turn
            except zmq.ZMQError as exc:
                self._log("send", f"could not send to the coordinator: {exc.strerror}")
            else:
                self._spoke = True
            self._out.popleft()

    def _beat_now(self, now: float) -> None:
        frame = self._next_beat(now)
        if frame is None:
            return
        try:
            self._sock.send(frame, zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # not connected: the next beacon will try again

    def _next_beat(self, now: float) -> bytes | None:
        """This turn's beat: a Hello until welcomed, else a Heartbeat saying how the loop is, or
        None when the frames sent since the last beat said all it would (the coordinator takes
        any frame as word from the worker, and in a run it gets an Offer and a Report a second):
        only while the loop is well, and was at the last beat, so that a stall and its end are
        both told."""
        spoke, self._spoke = self._spoke, False
        if self._hello is not None:
            return encode(self._hello)
        stall = now - self.loop_alive
        if stall < STALL_NOTICE_S:
            self._stall_logged = False
            if spoke and self._well_told:
                return None
            self._well_told = True
            return self._plain_beat
        self._well_told = False
        where = self._stall_site() if self._stall_site is not None else ""
        if stall >= STALL_LOG_S and not self._stall_logged:
            self._stall_logged = True
            at = f" at {where}" if where else ""
            self._emit(
                f"the event loop has not run for {stall:.1f}s: scenario code{at} is blocking it. "
                "A VU must await (vu.sleep, vu.http...), never block (time.sleep, a busy loop); "
                "until it lets go, no request, report or Stop moves on this worker"
            )
        return encode(Heartbeat(round(stall, 3), where))

    def _woke(self, now: float) -> None:
        if self._armed and now - self._turn > self._silence_s:
            # Nothing of this process ran for that long: what waits in the socket is old news,
            # and the coordinator has had time to give this worker's share to others.
            self._frozen = True
            self._log("frozen", f"this worker did not run for {now - self._turn:.1f}s (stopped or frozen): "
                                "treating the coordinator as lost")
        self._turn = now

    def _after(self, now: float) -> None:
        """The coordinator-loss guard (see the class docstring)."""
        if not self._armed or (not self._frozen and now - self.last_rx <= self._silence_s):
            self._silence_at = None
            return
        if self._silence_at is None:
            self._silence_at = now
            self._silence_seen = False
            self._deliver(None, self._silence_on_loop)
        elif (
            not self._silence_seen
            and not self._wedged
            and now - self._silence_at > WEDGE_GRACE_S
            and self.loop_alive < self._silence_at
        ):
            self._wedged = True
            where = self._stall_site() if self._stall_site is not None else ""
            reason = (
                f"no word from the coordinator for {self._silence_s:g}s, and the event loop has not run for "
                f"{now - self.loop_alive:.0f}s{' (scenario code at ' + where + ')' if where else ''}, "
                "so the load cannot be stopped in order"
            )
            if self._on_wedged is not None:
                self._on_wedged(reason)
            else:
                self._emit(reason)

    def _silence_on_loop(self, _item: object) -> None:
        self._silence_seen = True
        if self._armed:
            self._on_silence()

"""HTTP/2 for the fast transport: one connection per VU per origin, each request a stream on it.

k6 speaks HTTP/2 wherever TLS's ALPN lets it (Go's transport offers ``h2`` and ``http/1.1``
and takes what the server picks), so a test of an endpoint behind a CDN or an edge function
is an HTTP/2 test in k6. ``FastTransport`` (:mod:`.pool`) offers the same two protocols
(:data:`ALPN`); when the server picks ``h2``, the dial hands the TLS connection to an
:class:`H2Connection` (built on the ``h2`` protocol library: framing, HPACK, stream states
and flow-control windows are its; the I/O, timing and k6's error codes are this package's),
which serves the VU's requests to that origin as streams (:mod:`.h2stream`). There is no
HTTP/2 over cleartext (h2c), as in k6.

Streams
-------
Several streams share one connection up to the server's ``SETTINGS_MAX_CONCURRENT_STREAMS``;
past it the connection is not ``usable`` and the transport dials another, which serves that
one request and closes when its streams are done (``spare``), as Go's transport does (its
``StrictMaxConcurrentStreams`` is off by default). Two requests that dial at once end up on
one connection: the second dial, if the first's connection can take a stream, is closed
unused (Go's ``addConnIfNeeded``). ``busy`` is "a stream is open", for ``close_idle``.
unused (Go's ``addConnIfNeeded``).

Flow control
------------
Receiving: every DATA frame is handed back to ``h2`` (``acknowledge_received_data``) as soon
as it is read, and ``h2`` sends WINDOW_UPDATE as the windows drain. The windows start where
Go's transport puts them: 4 MiB per stream, 1 GiB for the connection, so a fast server is
not held back by the client. Sending: a body goes out in DATA frames no larger than the
peer's frame size and window; the rest waits for the peer's WINDOW_UPDATE (or a SETTINGS
that widens the initial window) and is sent from that event, with no task per request.

Failures
--------
RST_STREAM, GOAWAY, protocol violations and a lost connection become the exceptions of
``.h2errors``, which says how each maps to k6's codes and which are retried.

``h2`` refuses frames after a GOAWAY (its connection state machine closes), which would
lose the responses a graceful GOAWAY promises to finish; :class:`_ClientH2` keeps the
machine open after it, and this module opens no stream on a connection that got one.

Each stream's timings and bytes: :mod:`.h2stream`.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import Frame, GoAwayFrame

from surge.worker.http.transport import DEFAULT_MAX_BODY_BYTES
from surge.worker.http.transports.fast.h2errors import (
    ConnectionLostError,
    FirstStreamGoAwayError,
    GoAwayError,
    ProtocolViolationError,
    RefusedStreamError,
    StreamResetError,
    UnprocessedGoAwayError,
)
from surge.worker.http.transports.fast.h2stream import Stream

__all__ = ["ALPN", "ALPN_HTTP1", "H2Connection"]

ALPN = ("h2", "http/1.1")
"""What the fast transport offers over TLS, Go's order: the server picks."""

ALPN_HTTP1 = ("http/1.1",)
"""What it offers with HTTP/2 turned off."""

# Go's transport: transportDefaultStreamFlow, transportDefaultConnFlow, and the header list
# size it announces (10 MiB); push is refused, as Go refuses it.
_STREAM_WINDOW = 4 << 20
_CONNECTION_WINDOW = 1 << 30
_MAX_HEADER_LIST = 10 << 20
_H2_DEFAULT_WINDOW = 65535
_FRAME_HEADER = 9

# ---------------------------------------------------------------------------- one connection


class _ClientH2(h2.connection.H2Connection):
    """``h2``'s connection, but one that still reads the frames a server sends after GOAWAY.

    ``h2`` closes its connection state machine on GOAWAY and then refuses every frame, so the
    responses of streams at or below ``last_stream_id``, which the server promised to finish,
    would be lost (and a frame after GOAWAY in the same read would drop the GOAWAY's event
    too). Go reads them; so does this, by leaving the machine open (no stream is opened
    after a GOAWAY: :meth:`H2Connection.usable`).
    """

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[h2.events.Event]]:
        state = self.state_machine.state
        frames, events = super()._receive_goaway_frame(frame)
        self.state_machine.state = state
        return frames, events


class H2Connection(asyncio.Protocol):
    """One TLS connection speaking HTTP/2 and its open streams (see the module docstring).

    Built by the fast transport's dial once ALPN has chosen ``h2``: it takes over the TLS
    transport (``set_protocol``) and the dial's timing stamps, and sends the connection
    preface at once.
    """

    __slots__ = (
        "closed",
        "conn_start",
        "connected",
        "draining",
        "fresh",
        "going_away",
        "goaway_code",
        "h2",
        "key",
        "max_body",
        "spare",
        "streams",
        "tls_done",
        "transport",
    )

    def __init__(
        self,
        key: tuple[str, str, int],
        transport: asyncio.Transport,
        stamps: tuple[float, float, float],
        *,
        max_body: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.key = key
        self.transport = transport
        self.conn_start, self.connected, self.tls_done = stamps
        self.max_body = max_body
        self.closed = False
        self.fresh = True  # no stream opened on it yet: the first pays for the dial
        self.draining = False
        self.going_away = False
        self.goaway_code = 0
        self.spare = False  # dialled past the pooled connection's stream limit: closed when idle
        self.streams: dict[int, Stream] = {}
        # Outbound checks off: request_fields builds the list itself (lower-case names, the
        # pseudo-headers first, no connection-specific fields) after the client refused CR/LF,
        # and h2's checks cost about a fifth of a request's CPU. The server's headers are checked.
        config = h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False
        )
        conn = self.h2 = _ClientH2(config)
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: _MAX_HEADER_LIST,
            },
        )
        conn.initiate_connection()
        conn.increment_flow_control_window(_CONNECTION_WINDOW - _H2_DEFAULT_WINDOW)
        transport.set_protocol(self)
        self._flush()

    # -------------------------------------------------------------- driven by the transport

    def usable(self) -> bool:
        """Open, not told to go away, and with room for one more stream under the server's limit."""
        return (
            not (self.closed or self.going_away or self.transport.is_closing())
            and self.h2.open_outbound_streams < self.h2.remote_settings.max_concurrent_streams
        )

    @property
    def busy(self) -> bool:
        """A stream is open on it (``close_idle`` leaves it alone, as a busy HTTP/1.1 connection)."""
        return bool(self.streams)

    def open(
        self,
        fields: list[tuple[bytes, bytes]],
        body: bytes | None,
        t_start: float,
        deadline: float,
        loop: asyncio.AbstractEventLoop,
        keep_body: bool = True,
    ) -> Stream:
        """Start one request: HEADERS, and as much of ``body`` as the peer's windows take now.

        ``keep_body=False``: the response's body is counted, not kept (k6's ``responseType: "none"``).
        """
        conn = self.h2
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, fields, end_stream=not body)  # h2 may refuse a field: nothing is open yet
        stream = Stream(self, stream_id, t_start, loop.create_future(), keep_body)
        self.fresh = False
        self.streams[stream_id] = stream
        stream.timer = loop.call_at(deadline, stream.on_timeout)
        head = conn.data_to_send()
        stream.n_out = len(head)
        if body:
            frame = conn.max_outbound_frame_size
            stream.n_out += len(body) + _FRAME_HEADER * -(-len(body) // frame)
            stream.pending = memoryview(body)
            self._send_body(stream)
        # ``draining`` is left as it is: if another stream's bytes still fill the socket
        # buffer, this one is sent only when it drains (resume_writing stamps it).
        self.transport.write(head + conn.data_to_send())
        if stream.pending is None and not self.draining:
            stream.t_sent = perf_counter()
        return stream

    def forget(self, stream: Stream, *, reset: bool) -> None:
        """The stream is finished with; ``reset``: tell the server, if it is still open there."""
        if self.streams.pop(stream.id, None) is None:
            return
        if reset and not self.closed:
            self._reset(stream.id, ErrorCodes.CANCEL)
            self._flush()
        if not self.streams and (self.spare or self.going_away):
            self.shut(abort=False)

    def shut(self, *, abort: bool) -> None:
        """Close the connection; any stream still open is forgotten (its waiter is not resolved)."""
        del abort  # TLS: a close would wait for close_notify, and nothing is owed (as in HTTP/1.1)
        self.closed = True
        for stream in list(self.streams.values()):
            stream.waiter = None
            if stream.timer is not None:
                stream.timer.cancel()
        self.streams.clear()
        self.transport.abort()

    def _reset(self, stream_id: int, code: ErrorCodes) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass  # h2 holds it closed already (both sides ended, or reset): nothing to tell

    # -------------------------------------------------------------- sending

    def _send_body(self, stream: Stream) -> None:
        """DATA frames for ``stream`` while the windows allow; the rest waits for WINDOW_UPDATE."""
        view = stream.pending
        if view is None:
            return
        conn = self.h2
        while view:
            room = min(conn.local_flow_control_window(stream.id), conn.max_outbound_frame_size)
            if room <= 0:
                stream.pending = view
                return
            chunk, view = view[:room], view[room:]
            conn.send_data(stream.id, bytes(chunk), end_stream=not view)
        stream.pending = None

    def _pump(self) -> None:
        """The windows opened: send what waited, and stamp the streams whose body is now all out."""
        waiting = [s for s in self.streams.values() if s.pending is not None and not s.closed]
        for stream in waiting:
            self._send_body(stream)
        self._flush()
        now = perf_counter()
        for stream in waiting:
            if stream.pending is None and not self.draining and not stream.t_sent:
                stream.t_sent = now

    def _flush(self) -> None:
        out = self.h2.data_to_send()
        if out and not self.closed:
            self.transport.write(out)

    # -------------------------------------------------------------- asyncio's events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # set_protocol does not call it

    def pause_writing(self) -> None:
        self.draining = True

    def resume_writing(self) -> None:
        self.draining = False
        now = perf_counter()
        for stream in self.streams.values():
            if stream.pending is None and not stream.t_sent:
                stream.t_sent = now

    def data_received(self, data: bytes) -> None:
        now = perf_counter()
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._flush()  # the GOAWAY h2 has queued for the peer
            self._fail_all(ProtocolViolationError(int(exc.error_code)))
            self.shut(abort=True)
            return
        touched: list[Stream] = []
        opened = False
        for event in events:
            stream_id = getattr(event, "stream_id", 0)
            stream = self.streams.get(stream_id) if stream_id else None
            if stream is not None and stream not in touched:
                touched.append(stream)
            if isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if stream is not None and stream.waiter is not None:
                    stream.on_data(event.data)
            elif isinstance(event, h2.events.ResponseReceived):
                if stream is not None and not stream.on_head(event.headers, now):
                    # Go: a stream error, PROTOCOL_ERROR, the stream reset and the connection kept
                    stream.closed = True
                    stream.resolve(StreamResetError(ErrorCodes.PROTOCOL_ERROR))
                    self._reset(stream.id, ErrorCodes.PROTOCOL_ERROR)
            elif isinstance(event, h2.events.InformationalResponseReceived):
                if stream is not None and not stream.t_first:  # 1xx: the first byte, as in HTTP/1.1
                    stream.t_first = now
                    stream.t_sent = stream.t_sent or now
            elif isinstance(event, h2.events.StreamEnded):
                if stream is not None:
                    stream.t_done = now
                    stream.closed = True
                    stream.resolve(None)
            elif isinstance(event, h2.events.StreamReset):
                if stream is not None:
                    code = int(event.error_code or 0)
                    stream.closed = True
                    stream.resolve(
                        RefusedStreamError(code) if code == ErrorCodes.REFUSED_STREAM else StreamResetError(code)
                    )
            elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                opened = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._go_away(int(event.error_code or 0), int(event.last_stream_id or 0))
        if touched:
            share, rest = divmod(len(data), len(touched))
            for i, stream in enumerate(touched):
                stream.n_in += share + (rest if i == 0 else 0)
                if stream.closed:  # ended or reset; one that still had body to send is reset by us too
                    self.forget(stream, reset=stream.pending is not None)
        if opened:
            self._pump()
        else:
            self._flush()

    def _go_away(self, code: int, last_stream_id: int) -> None:
        self.going_away = True
        self.goaway_code = code
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last_stream_id:
                stream.closed = True
                if stream_id == 1 and code != ErrorCodes.NO_ERROR:
                    stream.resolve(FirstStreamGoAwayError(code))
                else:
                    stream.resolve(UnprocessedGoAwayError(code))
                self.streams.pop(stream_id, None)
        if not self.streams:
            self.shut(abort=False)

    def _fail_all(self, exc: BaseException) -> None:
        for stream in list(self.streams.values()):
            stream.closed = True
            stream.resolve(exc)

    def eof_received(self) -> bool:
        self.closed = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.going_away:
            self._fail_all(GoAwayError(self.goaway_code))
        elif exc is not None:
            self._fail_all(exc)
        else:
            self._fail_all(ConnectionLostError("unexpected EOF"))
        self.streams.clear()

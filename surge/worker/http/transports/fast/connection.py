"""One HTTP/1.1 connection of the fast transport: an asyncio protocol driven by httptools.

(Over TLS, a server that picks ``h2`` by ALPN gets an :class:`~.h2conn.H2Connection` instead.)

The life of one :class:`Connection`::

    dial (DNS, TCP, TLS) ──► idle ◄──────────────── response complete, keep-alive
                              │ exchange(): one write          ▲
                              ▼                                │
                           sending ──► waiting ──► receiving ──┘
                              │           │            │
                              └───────────┴────────────┴──► closed: EOF, reset, timeout, malformed
                                                                   response, Connection: close,
                                                                   the VU cancelled, close()

What the parser is told, and what it is not: llhttp ends 1xx, 204 and 304 responses at
their head by itself (an interim 1xx is skipped, the final response awaited); a response
to HEAD carries a ``Content-Length`` but no body, which llhttp cannot know, so the response
is completed at its head and the connection gets a fresh parser. A response framed by
neither ``Content-Length`` nor chunked encoding (typical of HTTP/1.0) ends when the server
closes the connection. Trailer fields after a chunked body are not headers (Go keeps them
in ``resp.Trailer``, which k6 does not show).

Bytes nobody asked for: llhttp parses on past the end of a response when the same read
holds more (a pipelined extra response, garbage, a body sent to HEAD). Every parser
callback first checks that an exchange is waiting; if none is, the bytes change nothing
of the response already resolved, and the connection is closed, since its framing can no
longer be trusted (Go: "Unsolicited response received on idle HTTP channel"). Bytes that
arrive later, while the connection is idle, close it the same way. Only bare CR and LF
bytes between messages, which llhttp skips, are tolerated, in the same read or a later one.
``bytes_received`` still counts every byte read while the exchange was in flight: they
crossed the wire.

Bodies: at most ``max_body_bytes`` of one body are kept (64 MiB by default, after
decompression: ``surge.worker.http.transport.DEFAULT_MAX_BODY_BYTES``); past it the request fails
with k6's content-error code 1700 and the connection is aborted at once, so that memory
stays bounded. With ``keep_body=False`` (an exchange's, for k6's ``discardResponseBodies``
and ``responseType: "none"``) no byte of a body is kept, only counted, and no cap applies.

Timings
-------
Every stamp is ``time.perf_counter()`` taken in the protocol's own events (the breakdown
and its meaning are in ``surge.worker.http.response``)::

    t_start (send, or the hop) ─► conn_start ─► connected ─► tls_done ─► t_got (connection in hand)
    t_got ─► t_sent (write returned, or, for a body too big for the socket, resume_writing
             once the buffer drained) ─► t_first (first data_received) ─► t_done (message complete)

``blocked = t_got - t_start`` (it contains DNS, ``connecting = connected - conn_start``
and ``tls_handshaking = tls_done - connected``, both only on the exchange that dialled),
``sending = t_sent - t_got``, ``waiting = t_first - t_sent``, ``receiving = t_done -
t_first``. TCP and TLS are separate steps (``create_connection`` then ``start_tls``) so
that the handshake has its own figure. ``bytes_sent``/``bytes_received`` are the exact
bytes written and read for the request (every hop and a retry included).
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import cast

import httptools

from surge.worker.http.errors import BodyTooLargeError
from surge.worker.http.response import Timings, settle
from surge.worker.http.transport import DEFAULT_MAX_BODY_BYTES
from surge.worker.http.transports.fast.errors import ServerClosedError, TruncatedResponseError

__all__ = ["Connection"]

_WATCHED = frozenset({b"set-cookie", b"content-encoding", b"location", b"content-length", b"transfer-encoding"})


class Connection(asyncio.Protocol):
    """One keep-alive connection and the exchange in flight on it (see the module docstring).

    Everything one exchange needs lives in these slots, reset by :meth:`exchange`; the
    parser calls ``on_header``/``on_headers_complete``/``on_body``/``on_message_complete``
    on this object, and the VU's coroutine awaits ``waiter``, which is resolved (or failed)
    exactly once. ``waiter is None`` means no exchange is waiting for bytes.
    """

    __slots__ = (
        # the connection
        "busy",
        "closed",
        "conn_start",
        "deadline",
        "connected",
        "draining",
        "fresh",
        "key",
        "parser",
        "tls",
        "tls_done",
        "transport",
        # the exchange
        "body",
        "encoding",
        "head_only",
        "head_seen",
        "headers_done",
        "interim",
        "keep_alive",
        "keep_bodies",
        "budget",
        "max_body",
        "n_heads",
        "orphaned",
        "length_known",
        "location",
        "n_in",
        "raw",
        "set_cookies",
        "sink",
        "status",
        "t_done",
        "t_first",
        "t_got",
        "t_sent",
        "t_start",
        "timer",
        "timer_at",
        "waiter",
    )

    def __init__(
        self, key: tuple[str, str, int], tls: bool, keep_bodies: bool = True, max_body: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.key = key
        self.tls = tls
        self.keep_bodies = keep_bodies
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.busy = False
        self.closed = False
        self.fresh = True  # no exchange finished on it yet: the next one pays for the dial
        self.draining = False
        self.conn_start = self.connected = self.tls_done = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None  # armed at timer_at (see _arm)
        self.timer_at = self.deadline = 0.0
        self.t_start = self.t_got = self.t_sent = self.t_first = self.t_done = 0.0
        self.head_only = self.headers_done = self.interim = self.keep_alive = self.length_known = False
        self.status = self.n_in = self.n_heads = 0
        self.budget = max_body if keep_bodies else -1  # bytes of body still allowed; -1: keep none
        self.orphaned = False
        self.head_seen = b""
        self.raw: list[tuple[bytes, bytes]] = []
        self.sink = self.raw  # where on_header puts a field: the head's, then a trailer's
        self.body: list[bytes] = []
        self.encoding: bytes | None = None
        self.location: bytes | None = None
        self.set_cookies: list[bytes] | None = None

    # -------------------------------------------------------------- driven by the transport

    def itself(self) -> Connection:
        """The protocol factory for ``create_connection``: this object (no closure per dial)."""
        return self

    def usable(self) -> bool:
        """Idle and open: the pool may hand it out."""
        return not (self.busy or self.closed) and not cast(asyncio.Transport, self.transport).is_closing()

    def exchange(
        self,
        data: bytes,
        head_only: bool,
        t_start: float,
        deadline: float,
        loop: asyncio.AbstractEventLoop,
        keep_body: bool = True,
    ) -> asyncio.Future[None]:
        """Write one request and return the future of its response (the fields below fill in).

        ``keep_body=False``: the body is counted, not kept (k6's ``responseType: "none"``).
        """
        self.busy = True
        self.keep_bodies = keep_body
        self.t_start = t_start
        self.t_got = perf_counter()
        self.t_sent = self.t_first = self.t_done = 0.0
        self.head_only = head_only
        self.headers_done = self.interim = self.keep_alive = self.length_known = False
        self.status = self.n_in = self.n_heads = 0
        self.budget = self.max_body if self.keep_bodies else -1
        self.orphaned = False
        if head_only:
            self.head_seen = b""
        self.raw = self.sink = []
        self.body = []
        self.encoding = self.location = self.set_cookies = None
        self.waiter = waiter = loop.create_future()
        self.deadline = deadline
        if self.timer is None or self.timer_at > deadline:
            self._arm(loop)
        self.draining = False
        cast(asyncio.Transport, self.transport).write(data)
        if not self.draining:  # all of it went to the kernel at once (pause_writing not called)
            self.t_sent = perf_counter()
        return waiter

    def timings(self, done: float) -> Timings:
        """The exchange's breakdown, charged up to ``done`` if it did not finish."""
        fresh = self.fresh
        return Timings.from_stamps(
            self.t_start,
            self.t_got,
            self.t_sent,
            self.t_first,
            done,
            self.connected - self.conn_start if fresh else 0.0,
            self.tls_done - self.connected if fresh and self.tls else 0.0,
        )

    @property
    def proto(self) -> str:
        """The response's protocol as k6 names it (the parser knows it once the head is read)."""
        return "HTTP/1.0" if self.parser.get_http_version() == "1.0" else "HTTP/1.1"

    def body_bytes(self) -> bytes:
        parts = self.body
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def forget(self) -> None:
        """Drop what the finished exchange read (its header fields, body, cookies) once the
        transport has made its Response of them: an idle connection keeps none of it. 10,000
        VUs that think for a second are idle most of the time, and each last response was
        ~1 KB of small objects held until the next request."""
        self.raw = self.sink = []
        self.body = []
        self.head_seen = b""
        self.encoding = self.location = self.set_cookies = None

    def shut(self, *, abort: bool) -> None:
        """Close it (``abort``: now, dropping what is buffered); any waiting exchange is forgotten."""
        self.closed = True
        self.waiter = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            if abort or self.tls:  # a TLS close would wait for close_notify; nothing is owed
                self.transport.abort()
            else:
                self.transport.close()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """(Re)arm the one timer at this exchange's deadline.

        Why one timer per connection and not one per exchange: on uvloop ``call_at`` plus
        ``cancel`` costs ~2 µs (a TimerHandle and a libuv timer each time), about 5 % of a
        keep-alive request. So a timer outlives its exchange: the next exchange, whose deadline
        is usually later, keeps it, and when it fires early :meth:`_on_timer` moves it on to the
        deadline in force. A deadline earlier than the armed one (a shorter timeout) re-arms.
        """
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = self.deadline
        self.timer = loop.call_at(self.deadline, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        if self.waiter is None or self.closed:
            return  # idle: the next exchange arms a new one
        if self.timer_at == self.deadline:  # armed for this very deadline: it has passed
            self._resolve(TimeoutError())
        else:  # armed for an earlier exchange's deadline: move on to this one's
            self._arm(loop)

    def _resolve(self, exc: BaseException | None) -> None:
        # The timer is left armed on purpose (see _arm); shut() cancels it.
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            settle(waiter, None, exc)  # the timer stays armed for the next exchange (see _arm)

    def _rest_after_head(self) -> bytes:
        """What this exchange's reads held after the head of a response to HEAD (all, if unsure)."""
        buf, pos = self.head_seen, 0
        for _ in range(self.n_heads):  # the interim heads, then the final one
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                return buf or b"?"  # framed in a way this search does not follow: distrust it
            pos = end + 4
        return buf[pos:]

    def _unsolicited(self) -> None:
        """Bytes that no request asked for: after the response in the same read, or a body sent
        to HEAD. They must not touch the response just read, and the connection's framing can no
        longer be trusted (Go: "Unsolicited response received on idle HTTP channel"): close it."""
        if not self.closed:
            self.shut(abort=True)

    # -------------------------------------------------------------- asyncio's events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if not self.tls:  # for TLS the limits are set on the TLS transport, after the handshake
            self.transport.set_write_buffer_limits(high=0)

    def pause_writing(self) -> None:
        self.draining = True

    def resume_writing(self) -> None:
        self.draining = False
        if self.waiter is not None and not self.t_sent:
            self.t_sent = perf_counter()

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            # Bytes nobody asked for: the framing of this connection is lost. Bare CR/LF
            # between messages excepted, which llhttp skips too when they share a read.
            if data.strip(b"\r\n"):
                self.shut(abort=True)
            return
        if not self.t_first:
            self.t_first = perf_counter()
            if not self.t_sent:  # the server answered before the body drained
                self.t_sent = self.t_first
        self.n_in += len(data)
        if self.head_only:
            self.head_seen += data  # HEAD only, a few hundred bytes: to find where its head ends
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._resolve(exc)
            self.shut(abort=True)

    def eof_received(self) -> bool:
        self.closed = True  # not to be handed out again, even before connection_lost runs
        return False  # close; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:  # nothing more to time out: let the connection go now
            self.timer.cancel()
            self.timer = None
        if self.waiter is None:
            return
        if exc is not None:
            self._resolve(exc)
        elif self.headers_done and not self.length_known:
            self.t_done = perf_counter()  # a body framed by the end of the connection
            self.keep_alive = False
            self._resolve(None)
        elif self.n_in:
            self._resolve(TruncatedResponseError())
        else:
            self._resolve(ServerClosedError())

    # -------------------------------------------------------------- httptools' callbacks
    #
    # llhttp goes on parsing whatever else the read held once a response is complete, so
    # every callback first asks whether a request is still waiting (``waiter``): if not,
    # the bytes are unsolicited and change nothing of the response already resolved.

    def on_message_begin(self) -> None:
        if self.waiter is None and not self.orphaned:
            self._unsolicited()

    def on_header(self, name: bytes, value: bytes) -> None:
        # After the head, ``sink`` is a throwaway list: a chunked body's trailer fields, which
        # Go keeps apart (``resp.Trailer``) and k6 does not show, and the fields of anything
        # unsolicited (which on_message_begin has already seen) do not reach the headers.
        self.sink.append((name, value))

    def on_headers_complete(self) -> None:
        if self.waiter is None:
            return  # unsolicited (on_message_begin closed the connection)
        parser = self.parser
        self.n_heads += 1
        status = parser.get_status_code()
        if status < 200:
            # An interim response (100 Continue, 103 Early Hints): llhttp completes it at
            # once; forget its headers and wait for the final one.
            self.interim = True
            self.raw = self.sink = []
            return
        self.status = status
        self.headers_done = True
        self.sink = []
        for name, value in self.raw:
            lower = name.lower()
            if lower in _WATCHED:
                if lower == b"set-cookie":
                    if self.set_cookies is None:
                        self.set_cookies = []
                    self.set_cookies.append(value)
                elif lower == b"content-encoding":
                    self.encoding = value
                elif lower == b"location":
                    self.location = value
                else:
                    self.length_known = True
        if self.head_only:
            # The response to HEAD has no body, whatever its Content-Length says, and
            # llhttp cannot know: complete it here, and give the connection a new parser.
            # The old one goes on through the rest of this read (its callbacks now mean
            # nothing: ``orphaned``), so what follows the head is judged here instead.
            self.t_done = perf_counter()
            self.keep_alive = parser.should_keep_alive()
            self.parser = httptools.HttpResponseParser(self)
            self._resolve(None)
            self.orphaned = True
            if self._rest_after_head().strip(b"\r\n"):
                self._unsolicited()

    def on_body(self, body: bytes) -> None:
        if self.waiter is None:
            if not self.orphaned:
                self._unsolicited()
            return
        self.budget -= len(body)
        if self.budget < 0:
            if not self.keep_bodies:
                self.budget = -1
                return  # discarded: n_in has counted it, nothing is held
            self._resolve(BodyTooLargeError(self.max_body))
            self.shut(abort=True)  # stop reading now: memory stays bounded
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        if self.waiter is not None:
            self.t_done = perf_counter()
            self.keep_alive = self.parser.should_keep_alive()
            self._resolve(None)

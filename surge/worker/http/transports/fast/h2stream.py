"""One HTTP/2 request of the fast transport: its header list and its :class:`Stream`.

``FastTransport.send`` (:mod:`.pool`) asks the pooled :class:`~.h2conn.H2Connection` for a
:class:`Stream` and then treats it as it treats an HTTP/1.1 exchange: it awaits ``waiter``,
reads the same fields (status, raw headers, body, cookies, ``Content-Encoding``,
``Location``), and releases or drops it. A stream's life::

    open: HEADERS (+ DATA as far as the peer's window allows) ──► sent (END_STREAM written)
      ──► first response frame ──► END_STREAM received: done
      └──► failed: RST_STREAM from the server, GOAWAY, the connection lost, the request's
           deadline (RST_STREAM CANCEL from us; the connection lives on), the VU cancelled

The connection drives it (``on_head``, ``on_data``, ``resolve``); a stream knows its
connection only as a :class:`Link`, so that this module does not import the connection's.

Timings and bytes
-----------------
Per stream, with the stamps of ``surge.worker.http.response``: ``got`` when the stream is
opened on a connection in hand (the dial, for the stream that waited for it, is in
``blocked``, and only that stream carries ``connecting`` and ``tls_handshaking``), ``sent``
when its END_STREAM was written (or, if the socket buffer was full, when it drained),
``first`` at the first frame of its response, ``done`` at its END_STREAM. ``bytes_sent`` is
the stream's HEADERS frame as written plus its DATA frames (a 9-byte header per frame of
the peer's maximum size: exact unless a narrow window split the body finer).
``bytes_received`` is what the reads that carried the stream's frames held, a read carrying
frames of several streams split evenly between them; reads with only connection frames
(SETTINGS, PING, WINDOW_UPDATE) are charged to no request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from time import perf_counter
from typing import Protocol

from surge.worker.http.errors import BodyTooLargeError
from surge.worker.http.response import Timings, settle

__all__ = ["Link", "Stream", "request_fields"]

# ---------------------------------------------------------------------------- request headers

# Connection-specific fields have no place in HTTP/2 (RFC 9113 8.2.2); Host becomes
# :authority, and the framing (content-length) is this transport's, as in HTTP/1.1.
_DROPPED = frozenset(
    {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length"}
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def request_fields(
    method: str,
    authority: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    cookie: str | None,
    auth: str | None,
) -> list[tuple[bytes, bytes]]:
    """The request's HTTP/2 header list: the pseudo-headers, then the caller's fields, lower-case.

    ``cookie`` (the jar's) is appended to the caller's ``Cookie``; ``auth`` (from the URL's
    userinfo) is used when the caller gave no ``Authorization``. A caller's ``Host``
    replaces the authority, as Go's ``Request.Host`` does.
    """
    fields: list[tuple[bytes, bytes]] = []
    mine_cookie: str | None = None
    has_auth = False
    for name, value in headers.items():
        lower = name.lower()
        if lower in _DROPPED:
            if lower == "host":
                authority = value
            continue
        if lower == "te" and value.lower() != "trailers":
            continue  # the only TE HTTP/2 allows
        if lower == "cookie":
            mine_cookie = value if mine_cookie is None else f"{mine_cookie}; {value}"
            continue
        has_auth = has_auth or lower == "authorization"
        fields.append((lower.encode("utf-8"), value.encode("utf-8")))
    if cookie:
        mine_cookie = f"{mine_cookie}; {cookie}" if mine_cookie else cookie
    if mine_cookie is not None:
        fields.append((b"cookie", mine_cookie.encode("utf-8")))
    if auth and not has_auth:
        fields.append((b"authorization", auth.encode("utf-8")))
    if body is not None:
        fields.append((b"content-length", str(len(body)).encode("ascii")))
    elif method in _BODY_METHODS:
        fields.append((b"content-length", b"0"))
    pseudo = [
        (b":method", method.encode("ascii")),
        (b":scheme", b"https"),
        (b":authority", authority.encode("utf-8")),
        (b":path", path.encode("utf-8")),
    ]
    return pseudo + fields



class Link(Protocol):
    """What a stream reads of its connection (an :class:`~.h2conn.H2Connection`)."""

    key: tuple[str, str, int]
    fresh: bool
    conn_start: float
    connected: float
    tls_done: float
    max_body: int

    def forget(self, stream: Stream, *, reset: bool) -> None: ...


# ---------------------------------------------------------------------------- one stream


class Stream:
    """One request on an :class:`H2Connection` and what came back for it.

    It has the fields ``FastTransport.send`` reads from an HTTP/1.1 exchange, with the same
    meanings; ``keep_alive`` is always True (HTTP/2 has no ``Connection: close``): the
    connection stays unless the client asked to close it (``noConnectionReuse``).
    """

    __slots__ = (
        "body",
        "budget",
        "busy",
        "closed",
        "dial_s",
        "encoding",
        "fresh",
        "id",
        "keep_alive",
        "keep_body",
        "key",
        "link",
        "location",
        "n_in",
        "n_out",
        "pending",
        "raw",
        "set_cookies",
        "status",
        "t_done",
        "t_first",
        "t_got",
        "t_sent",
        "t_start",
        "timer",
        "waiter",
    )

    proto = "HTTP/2.0"

    def __init__(
        self, link: Link, stream_id: int, t_start: float, waiter: asyncio.Future[None], keep_body: bool = True
    ) -> None:
        self.link = link
        self.keep_body = keep_body
        self.key = link.key
        self.id = stream_id
        self.fresh = link.fresh  # the stream that waited for the dial carries its timings
        dialled = (link.connected - link.conn_start, link.tls_done - link.connected)
        self.dial_s = dialled if self.fresh else (0.0, 0.0)  # (connecting, TLS handshake)
        self.busy = True  # written: the server may have it
        self.closed = False
        self.keep_alive = True
        self.t_start = t_start
        self.t_got = perf_counter()
        self.t_sent = self.t_first = self.t_done = 0.0
        self.status = self.n_in = self.n_out = 0
        self.budget = link.max_body if keep_body else -1
        self.raw: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.encoding: bytes | None = None
        self.location: bytes | None = None
        self.set_cookies: list[bytes] | None = None
        self.pending: memoryview | None = None  # body bytes still to send (the peer's window was full)
        self.waiter: asyncio.Future[None] | None = waiter
        self.timer: asyncio.TimerHandle | None = None

    def timings(self, done: float) -> Timings:
        """The stream's breakdown, charged up to ``done`` if it did not finish."""
        return Timings.from_stamps(self.t_start, self.t_got, self.t_sent, self.t_first, done, *self.dial_s)

    def body_bytes(self) -> bytes:
        parts = self.body
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def shut(self, *, abort: bool) -> None:
        """Done with it: a stream still open is reset (CANCEL) and the connection lives on.

        ``abort`` is the transport's word for "its state is unknown"; for a stream either way
        means the same: nothing more is read for it.
        """
        del abort
        self.waiter = None
        if self.timer is not None:
            self.timer.cancel()
        if not self.closed:
            self.closed = True
            self.link.forget(self, reset=True)

    def resolve(self, exc: BaseException | None) -> None:
        """End the wait for it, once: with the response (``None``) or a failure."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            settle(waiter, self.timer, exc)

    def on_timeout(self) -> None:
        self.resolve(TimeoutError())

    def on_head(self, headers: list[tuple[bytes, bytes]], now: float) -> bool:
        """Take the response's head; False if its ``:status`` is not a number (a malformed response)."""
        if not self.t_first:
            self.t_first = now
            if not self.t_sent:  # the server answered before the body was all sent
                self.t_sent = now
        raw = self.raw
        for name, value in headers:
            if name.startswith(b":"):
                if name == b":status":
                    if not (value.isdigit() and len(value) == 3):
                        return False
                    self.status = int(value)
                continue
            raw.append((name, value))
            if name == b"set-cookie":
                if self.set_cookies is None:
                    self.set_cookies = []
                self.set_cookies.append(value)
            elif name == b"content-encoding":
                self.encoding = value
            elif name == b"location":
                self.location = value
        return True

    def on_data(self, data: bytes) -> None:
        self.budget -= len(data)
        if self.budget < 0:
            if not self.keep_body:
                self.budget = -1
                return  # discarded: counted in n_in, never held
            self.resolve(BodyTooLargeError(self.link.max_body))
            self.shut(abort=True)  # RST_STREAM: the server stops sending it, memory stays bounded
            return
        self.body.append(data)

"""The fast transport: HTTP/1.1 on a raw asyncio/uvloop protocol, parsed by httptools.

A worker's CPU is the ceiling of what it can measure, and aiohttp's client spends about ten
times what the wire needs per request. :class:`FastTransport` does only what k6's model
asks for, with the fewest Python calls: the request is serialised by hand into one
``bytes`` and written once, the response is parsed by httptools (llhttp, in C) calling
back into one :class:`_Connection` object, and the VU's coroutine awaits one future per
request. It is the default transport; ``transport_aiohttp`` is the reference it is tested
against, with the same tests.

Connections
-----------
One transport per VU, and at most one keep-alive connection per origin
``(scheme, host, port)`` in it, as k6 keeps per-VU connections. (A VU that sends
concurrently gets an extra connection for the overlap, kept only if the pooled one died.)
The life of one :class:`_Connection`::

    dial (DNS, TCP, TLS) ──► idle ◄──────────────── response complete, keep-alive
                              │ exchange(): one write          ▲
                              ▼                                │
                           sending ──► waiting ──► receiving ──┘
                              │           │            │
                              └───────────┴────────────┴──► closed: EOF, reset, timeout, malformed
                                                                   response, Connection: close,
                                                                   the VU cancelled, close()

A connection the server closed while idle is seen closed (``connection_lost`` ran) and
replaced by a new dial. If the server closes it in the instant the request is written, the
request fails before any response byte; on a *reused* connection a replayable request
(GET, HEAD, OPTIONS, TRACE, or one with an ``Idempotency-Key``) is then sent once more on a
fresh connection, as Go's transport (k6's) does.

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
bytes between messages, which llhttp skips, are tolerated, in the same read or a later one. ``bytes_received`` still counts
every byte read while the exchange was in flight: they crossed the wire.

Bodies: at most ``max_body_bytes`` of one body are kept (64 MiB by default, after
decompression: ``surge.worker.http.DEFAULT_MAX_BODY_BYTES``); past it the request fails
with k6's content-error code 1700 and the connection is aborted at once, so that memory
stays bounded. With ``keep_bodies = False`` (set by the client for k6's
``discardResponseBodies``) no byte of a body is kept, only counted, and no cap applies.

What is written: the request line, ``Host``, the caller's headers, and the framing, which
is this transport's alone: ``Content-Length`` for a body (and for a bodiless POST, PUT or
PATCH), never a ``Transfer-Encoding``; one given by the caller is dropped, as Go drops it.

Timings
-------
Every stamp is ``time.perf_counter()`` taken in the protocol's own events (the breakdown
and its meaning are in ``surge.worker.http``)::

    t_start (send, or the hop) ─► conn_start ─► connected ─► tls_done ─► t_got (connection in hand)
    t_got ─► t_sent (write returned, or, for a body too big for the socket, resume_writing
             once the buffer drained) ─► t_first (first data_received) ─► t_done (message complete)

``blocked = t_got - t_start`` (it contains DNS, ``connecting = connected - conn_start``
and ``tls_handshaking = tls_done - connected``, both only on the exchange that dialled),
``sending = t_sent - t_got``, ``waiting = t_first - t_sent``, ``receiving = t_done -
t_first``. TCP and TLS are separate steps (``create_connection`` then ``start_tls``) so
that the handshake has its own figure. ``bytes_sent``/``bytes_received`` are the exact
bytes written and read for the request (every hop and a retry included).

Errors
------
:data:`ERROR_RULES` is the shared table of ``surge.worker.http`` plus a rule for each of
this module's exceptions, httptools' and ``zlib.error``; a test walks them to prove none
is missing. Go reports a server that closes without answering as "EOF", a response cut
short as "unexpected EOF", and k6 leaves both at 1000, as it does a malformed response.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, Morsel, SimpleCookie
from time import perf_counter
from types import MappingProxyType
from typing import cast
from urllib.parse import quote, unquote, urljoin, urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy, istr

from surge.worker import http
from surge.worker.http import (
    DEFAULT_MAX_BODY_BYTES,
    REDIRECT_STATUSES,
    SENSITIVE_HEADERS,
    BodyTooLargeError,
    ErrorCode,
    InvalidURLError,
    Response,
    Rule,
    Timings,
    classify_with,
    dial_error,
    fixed,
    same_site,
)

__all__ = [
    "ERROR_RULES",
    "TRANSPORT_ERRORS",
    "DialError",
    "DialTimeoutError",
    "FastTransport",
    "ServerClosedError",
    "TruncatedResponseError",
    "classify_error",
]

# ---------------------------------------------------------------------------- errors


class DialError(Exception):
    """A connection could not be made; ``os_error`` is why (k6's 1210-1213)."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class DialTimeoutError(TimeoutError):
    """The request's time ran out while dialling (k6's 1211)."""


class ServerClosedError(Exception):
    """The server closed the connection before any byte of the response (Go's "EOF")."""


class TruncatedResponseError(Exception):
    """The server closed the connection in the middle of the response (Go's "unexpected EOF")."""


def _dial(exc: BaseException) -> tuple[int, str]:
    return dial_error(exc.os_error if isinstance(exc, DialError) else exc)


_MALFORMED = fixed(ErrorCode.GENERIC, "malformed HTTP response")

_FAST_RULES: dict[type[BaseException], Rule] = {
    DialError: _dial,
    DialTimeoutError: fixed(ErrorCode.TCP_DIAL_TIMEOUT, "dial: i/o timeout"),
    ServerClosedError: fixed(ErrorCode.GENERIC, "EOF (server closed the connection)"),
    TruncatedResponseError: fixed(ErrorCode.GENERIC, "unexpected EOF"),
    httptools.HttpParserError: _MALFORMED,
    httptools.HttpParserCallbackError: _MALFORMED,  # only if a callback below had a bug
    httptools.HttpParserInvalidStatusError: _MALFORMED,
    httptools.HttpParserInvalidMethodError: _MALFORMED,
    httptools.HttpParserInvalidURLError: _MALFORMED,
    httptools.HttpParserUpgrade: fixed(ErrorCode.GENERIC, "malformed HTTP response: unexpected protocol switch"),
    zlib.error: fixed(ErrorCode.RESPONSE_DECOMPRESSION, "error decompressing response body"),
}

ERROR_RULES: Mapping[type[BaseException], Rule] = MappingProxyType({**http.ERROR_RULES, **_FAST_RULES})
"""The shared rules plus one for each exception this transport can meet."""

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(ERROR_RULES)
"""What this transport turns into a failed Response. Anything else is a bug and propagates."""


def classify_error(exc: BaseException) -> tuple[int, str]:
    """k6's ``(error_code, error)`` for an exception met by this transport."""
    return classify_with(ERROR_RULES, exc)


# ---------------------------------------------------------------------------- URLs

_UNSAFE = re.compile(r"[^\x21-\x7e]")  # anything but visible ASCII must be percent-encoded
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?[]"


class _Target:
    """One URL made ready to request: parsed once, cached per transport."""

    __slots__ = ("auth", "cookie_path", "host", "host_header", "ip", "key", "path", "port", "tls", "url")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # a bad port, an unclosed IPv6 bracket...
            raise InvalidURLError(url) from exc
        if parts.scheme not in ("http", "https"):
            raise InvalidURLError(url)
        host = parts.hostname
        if not host:
            raise InvalidURLError(url)
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise InvalidURLError(url) from exc
        self.url = url
        self.tls = parts.scheme == "https"
        default_port = 443 if self.tls else 80
        self.port = default_port if port is None else port
        self.host = host
        self.key = (parts.scheme, host, self.port)
        try:
            ipaddress.ip_address(host)
            self.ip = True
        except ValueError:
            self.ip = False
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if self.port == default_port else f"{shown}:{self.port}"
        path = parts.path or "/"
        if _UNSAFE.search(path):
            path = quote(path, safe=_PATH_SAFE)
        query = parts.query
        if query and _UNSAFE.search(query):
            query = quote(query, safe=_QUERY_SAFE)
        self.path = f"{path}?{query}" if query else path
        self.cookie_path = path
        self.auth: str | None = None
        if parts.username is not None:  # http://user:pass@host/ means Basic auth, as in k6
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(userinfo.encode("utf-8")).decode("ascii")


# ---------------------------------------------------------------------------- cookies


class _Cookie:
    __slots__ = ("domain", "expires", "host_only", "name", "path", "secure", "value")

    def __init__(
        self, name: str, value: str, domain: str, host_only: bool, path: str, secure: bool, expires: float | None
    ) -> None:
        self.name = name
        self.value = value
        self.domain = domain
        self.host_only = host_only
        self.path = path
        self.secure = secure
        self.expires = expires


def _domain_match(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _path_match(path: str, cookie_path: str) -> bool:
    if path == cookie_path:
        return True
    return path.startswith(cookie_path) and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")


def _default_path(path: str) -> str:
    """RFC 6265 5.1.4: the request path up to its last slash."""
    cut = path.rfind("/")
    return "/" if cut <= 0 else path[:cut]


class _Jar:
    """A VU's cookies, by RFC 6265's rules for domain, path, expiry and ``Secure``.

    Enough for real hosts and for IP addresses (which, as in k6 and aiohttp's unsafe jar,
    keep host-only cookies). No public-suffix list: a load test talks to its own systems.
    """

    __slots__ = ("_cookies",)

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], _Cookie] = {}

    def __len__(self) -> int:
        return len(self._cookies)

    def store(self, target: _Target, set_cookies: list[bytes]) -> None:
        for raw in set_cookies:
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(raw.decode("latin-1"))
            except CookieError:
                continue  # browsers ignore a Set-Cookie they cannot parse; so does Go
            for name, morsel in parsed.items():
                self._store(target, name, morsel)

    def _store(self, target: _Target, name: str, morsel: Morsel[str]) -> None:
        domain_attr = morsel["domain"].lstrip(".").lower()
        if domain_attr and not _domain_match(target.host, domain_attr):
            return  # a cookie for someone else
        domain = domain_attr or target.host
        path = morsel["path"] if morsel["path"].startswith("/") else _default_path(target.cookie_path)
        key = (domain, path, name)
        expires: float | None = None
        try:
            if morsel["max-age"] != "":
                expires = time.time() + int(morsel["max-age"])
            elif morsel["expires"]:
                expires = parsedate_to_datetime(morsel["expires"]).timestamp()
        except (ValueError, TypeError, OverflowError):
            expires = None  # an unreadable date: keep it for the session
        if expires is not None and expires <= time.time():
            self._cookies.pop(key, None)  # the server deletes it
            return
        self._cookies[key] = _Cookie(
            name, morsel.coded_value, domain, not domain_attr, path, bool(morsel["secure"]), expires
        )

    def header(self, target: _Target) -> str | None:
        """The ``Cookie`` header for a request to ``target`` (``None``: no cookie applies)."""
        now = time.time()
        matched: list[_Cookie] = []
        for key, c in list(self._cookies.items()):
            if c.expires is not None and c.expires <= now:
                del self._cookies[key]
            elif (
                (target.host == c.domain if c.host_only else _domain_match(target.host, c.domain))
                and _path_match(target.cookie_path, c.path)
                and (target.tls or not c.secure)
            ):
                matched.append(c)
        if not matched:
            return None
        matched.sort(key=_longest_path_first)
        return "; ".join([f"{c.name}={c.value}" for c in matched])


def _longest_path_first(c: _Cookie) -> int:
    return -len(c.path)


# ---------------------------------------------------------------------------- response headers


class _Headers(Mapping[str, str]):
    """A response's headers, decoded into a case-insensitive multidict only when first read.

    Most load-test scripts never look at headers, so the raw ``(name, value)`` pairs from
    the parser are all a response costs until then.
    """

    __slots__ = ("_multi", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._multi: CIMultiDictProxy[str] | None = None

    def _decoded(self) -> CIMultiDictProxy[str]:
        multi = self._multi
        if multi is None:
            md: CIMultiDict[str] = CIMultiDict()
            for name, value in self._raw:
                md.add(name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
            multi = self._multi = CIMultiDictProxy(md)
        return multi

    def __getitem__(self, key: str) -> str:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._decoded()

    def getall(self, key: str) -> list[str]:
        """Every value of a repeated header (``Set-Cookie``), like multidict's."""
        return self._decoded().getall(key, [])

    def __repr__(self) -> str:
        return f"<Headers {list(self._decoded().items())!r}>"


def _decompress(encoding: bytes, body: bytes, limit: int) -> bytes:
    """The decoded body; ``BodyTooLargeError`` past ``limit`` bytes (a small gzip can inflate a lot)."""
    coding = encoding.strip().lower()
    if coding in (b"gzip", b"x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, limit)
    if coding == b"deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, limit)
        except zlib.error:  # servers that send raw deflate without the zlib wrapper
            return _inflate(body, -zlib.MAX_WBITS, limit)
    return body  # identity, or a coding this client does not request (br, zstd): as received


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise BodyTooLargeError(limit)
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")  # as zlib.decompress says it
    return out


# ---------------------------------------------------------------------------- one connection

_WATCHED = frozenset({b"set-cookie", b"content-encoding", b"location", b"content-length", b"transfer-encoding"})


class _Connection(asyncio.Protocol):
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
        self.timer: asyncio.TimerHandle | None = None
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

    def itself(self) -> _Connection:
        """The protocol factory for ``create_connection``: this object (no closure per dial)."""
        return self

    def usable(self) -> bool:
        """Idle and open: the pool may hand it out."""
        return not (self.busy or self.closed) and not cast(asyncio.Transport, self.transport).is_closing()

    def exchange(
        self, data: bytes, head_only: bool, t_start: float, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[None]:
        """Write one request and return the future of its response (the fields below fill in)."""
        self.busy = True
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
        self.timer = loop.call_at(deadline, self._on_timeout)
        self.draining = False
        cast(asyncio.Transport, self.transport).write(data)
        if not self.draining:  # all of it went to the kernel at once (pause_writing not called)
            self.t_sent = perf_counter()
        return waiter

    def timings(self, done: float) -> Timings:
        """The exchange's breakdown, charged up to ``done`` if it did not finish."""
        got = self.t_got
        if not got:
            return Timings()
        sent = self.t_sent or done
        first = self.t_first
        sending = sent - got
        if first:
            waiting = first - sent
            receiving = done - first
        else:
            waiting = done - sent
            receiving = 0.0
        sending_ms, waiting_ms, receiving_ms = sending * 1e3, max(0.0, waiting) * 1e3, receiving * 1e3
        return Timings(
            blocked=(got - self.t_start) * 1e3,
            connecting=(self.connected - self.conn_start) * 1e3 if self.fresh else 0.0,
            tls_handshaking=(self.tls_done - self.connected) * 1e3 if self.fresh and self.tls else 0.0,
            sending=sending_ms,
            waiting=waiting_ms,
            receiving=receiving_ms,
            duration=sending_ms + waiting_ms + receiving_ms,
        )

    def body_bytes(self) -> bytes:
        parts = self.body
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def shut(self, *, abort: bool) -> None:
        """Close it (``abort``: now, dropping what is buffered); any waiting exchange is forgotten."""
        self.closed = True
        self.waiter = None
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            if abort or self.tls:  # a TLS close would wait for close_notify; nothing is owed
                self.transport.abort()
            else:
                self.transport.close()

    def _resolve(self, exc: BaseException | None) -> None:
        waiter = self.waiter
        if waiter is None:
            return
        self.waiter = None
        if self.timer is not None:
            self.timer.cancel()
        if not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    def _on_timeout(self) -> None:
        self._resolve(TimeoutError())

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


# ---------------------------------------------------------------------------- the transport

# Go's Request.isReplayable: what may be sent again after a reused connection failed.
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # a bodiless one still says Content-Length: 0
_MAX_TARGETS = 1024
# istr keys: multidict folds a plain str key's case on every lookup, an istr's once.
_HOST, _CONTENT_LENGTH, _CONNECTION, _TRANSFER_ENCODING = map(
    istr, ("Host", "Content-Length", "Connection", "Transfer-Encoding")
)
_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def _default_context(verify: bool) -> ssl.SSLContext:
    """One context per process and mode: loading the CA store costs milliseconds."""
    ctx = _CONTEXTS.get(verify)
    if ctx is None:
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _CONTEXTS[verify] = ctx
    return ctx


def _replayable(method: str, headers: Mapping[str, str]) -> bool:
    return method in _REPLAYABLE or "Idempotency-Key" in headers or "X-Idempotency-Key" in headers


class FastTransport:
    """One VU's connections (one per origin), cookie jar and redirects, on raw protocols.

    ``verify_tls=False`` is k6's ``insecureSkipTLSVerify``; ``ssl_context`` replaces the
    default one (e.g. to trust a private CA).
    """

    def __init__(
        self,
        *,
        verify_tls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be >= 0, got {max_body_bytes!r}")
        self._verify_tls = verify_tls
        self._ssl_context = ssl_context
        self._conns: dict[tuple[str, str, int], _Connection] = {}
        self._targets: dict[str, _Target] = {}
        self._jar = _Jar()
        self._interrupted: Response | None = None
        self.max_body_bytes = max_body_bytes
        # False: bodies are read and counted but not kept (k6's discardResponseBodies; the client sets it).
        self.keep_bodies = True
        # Asked right before every write of a request (after its dial, and for retries and
        # redirect hops too): False means this worker must load no one now (http.LoadHalted).
        self.fence: Callable[[], bool] | None = None

    def take_interrupted(self) -> Response | None:
        resp, self._interrupted = self._interrupted, None
        return resp

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            target = _Target(url)
            if len(self._targets) >= _MAX_TARGETS:  # URLs with ids in them: do not grow forever
                self._targets.clear()
            self._targets[url] = target
        return target

    def _encode(
        self, method: str, target: _Target, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[bytes, bool]:
        """The request's bytes, and whether the client asked to close the connection after it."""
        if not isinstance(headers, (CIMultiDict, CIMultiDictProxy)):
            headers = CIMultiDict(headers)
        cookie = self._jar.header(target) if self._jar else None
        close = False
        host = target.host_header
        if (
            _HOST in headers
            or _CONTENT_LENGTH in headers
            or _CONNECTION in headers
            or _TRANSFER_ENCODING in headers
            or cookie
            or target.auth
        ):
            # The uncommon path: headers this transport writes itself, or merges. The framing
            # is this transport's alone: a body of known length goes with Content-Length, and
            # a Transfer-Encoding it was given is dropped, as Go's net/http drops it (sending
            # both is the shape of request smuggling).
            fields = CIMultiDict(headers)
            host = fields.pop("Host", host)
            fields.popall("Content-Length", None)
            fields.popall("Transfer-Encoding", None)
            close = fields.get("Connection", "").lower() == "close"
            if cookie:
                mine = fields.get("Cookie")
                fields["Cookie"] = f"{mine}; {cookie}" if mine else cookie
            if target.auth and "Authorization" not in fields:
                fields["Authorization"] = target.auth
            headers = fields
        lines = "\r\n".join(map(": ".join, headers.items()))  # no Python frame per header
        if lines:
            lines += "\r\n"
        if body is not None:
            head = f"{method} {target.path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
            n_lines = len(headers) + 4
        elif method in _BODY_METHODS:
            head = f"{method} {target.path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: 0\r\n\r\n"
            n_lines = len(headers) + 4
        else:
            head = f"{method} {target.path} HTTP/1.1\r\nHost: {host}\r\n{lines}\r\n"
            n_lines = len(headers) + 3
        if head.count("\n") != n_lines or head.count("\r") != n_lines:
            raise ValueError("Newline or carriage return character detected in HTTP header")
        data = head.encode("utf-8")
        return (data + body if body else data), close

    async def _dial(self, target: _Target, deadline: float, loop: asyncio.AbstractEventLoop) -> _Connection:
        """A new connection to ``target``, within the request's deadline."""
        conn = _Connection(target.key, target.tls, self.keep_bodies, self.max_body_bytes)
        try:
            async with asyncio.timeout_at(deadline):
                hosts: list[str] = [target.host]
                if not target.ip:
                    infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
                    hosts = list(dict.fromkeys(str(info[4][0]) for info in infos))
                conn.conn_start = perf_counter()
                failure: OSError | None = None
                for host in hosts:
                    try:
                        await loop.create_connection(conn.itself, host, target.port)
                        break
                    except OSError as exc:
                        failure = failure or exc
                else:
                    raise DialError(failure or OSError("no address to dial"))
                conn.connected = perf_counter()
                if target.tls:
                    context = self._ssl_context or _default_context(self._verify_tls)
                    raw = cast(asyncio.Transport, conn.transport)
                    tls = await loop.start_tls(raw, conn, context, server_hostname=target.host)
                    if tls is None:  # the peer closed during the handshake
                        raise ServerClosedError()
                    conn.transport = tls
                    tls.set_write_buffer_limits(high=0)
                    conn.tls_done = perf_counter()
        except TimeoutError as exc:  # the deadline, or the TLS handshake's own timeout
            if conn.transport is not None:
                conn.transport.abort()
            raise DialTimeoutError("dial: i/o timeout") from exc
        except BaseException:
            if conn.transport is not None:
                conn.transport.abort()
            raise
        return conn

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_redirects: int,
    ) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        hop_url = url
        redirects = bytes_sent = bytes_received = 0
        conn: _Connection | None = None
        data = b""
        try:
            while True:  # one hop per turn
                conn = None
                target = self._target(hop_url)
                data, close = self._encode(method, target, headers, body)
                t_start = perf_counter()  # k6's GetConn: the request is built, a connection is wanted
                retried = False
                while True:  # one attempt per turn: at most one retry on a fresh connection
                    conn = self._conns.get(target.key)
                    if conn is None or not conn.usable():
                        conn = None  # a failed dial holds no connection (zero timings)
                        conn = await self._dial(target, deadline, loop)
                        pooled = self._conns.get(target.key)
                        if pooled is None or pooled.closed:
                            self._conns[target.key] = conn
                    if self.fence is not None and not self.fence():
                        # here, at the write: a dial that began before the worker froze ends after
                        await asyncio.sleep(0)  # as in HttpClient.request: let the VU's cancel land
                        raise http.LoadHalted("not sent: this worker's coordinator has gone silent, so its load stops")
                    waiter = conn.exchange(data, method == "HEAD", t_start, deadline, loop)
                    bytes_sent += len(data)
                    try:
                        await waiter
                        break
                    except (OSError, ServerClosedError) as exc:
                        if (
                            retried
                            or conn.fresh
                            or conn.n_in
                            or isinstance(exc, TimeoutError)
                            or not _replayable(method, headers)
                        ):
                            raise
                        retried = True  # the server closed a keep-alive connection as we wrote
                        self._drop(conn)
                bytes_received += conn.n_in
                status = conn.status
                if conn.set_cookies is not None:
                    self._jar.store(target, conn.set_cookies)
                content = conn.body_bytes()
                if conn.encoding is not None and content:
                    content = _decompress(conn.encoding, content, self.max_body_bytes)
                timings = conn.timings(conn.t_done)
                raw = conn.raw
                location = conn.location if status in REDIRECT_STATUSES else None
                self._release(conn, conn.keep_alive and not close)
                conn = None
                if location is None or redirects >= max_redirects:
                    return Response(
                        method,
                        url if redirects == 0 else hop_url,
                        status,
                        body=content,
                        headers=_Headers(raw),
                        timings=timings,
                        bytes_sent=bytes_sent,
                        bytes_received=bytes_received,
                    )
                redirects += 1
                method, hop_url, headers, body = _redirect(status, target, location, method, headers, body)
        except asyncio.CancelledError:
            # The VU was stopped mid-request. If the request was written, the server has it:
            # keep it as a failed request so surge's count matches what the server saw.
            if conn is not None and conn.busy:  # exchange() wrote the request
                done = perf_counter()
                self._interrupted = Response(
                    method,
                    hop_url,
                    0,
                    error="request interrupted",
                    error_code=int(ErrorCode.GENERIC),
                    timings=conn.timings(done),
                    bytes_sent=bytes_sent,
                    bytes_received=bytes_received + conn.n_in,
                )
            if conn is not None:
                self._drop(conn)
            raise
        except TRANSPORT_ERRORS as exc:
            done = perf_counter()
            timings = Timings()
            if conn is not None:
                timings = conn.timings(done)
                bytes_received += conn.n_in
                self._drop(conn)
            return Response.failed(
                method,
                hop_url,
                exc,
                classify=classify_error,
                timings=timings,
                bytes_sent=bytes_sent,
                bytes_received=bytes_received,
            )

    def _release(self, conn: _Connection, keep: bool) -> None:
        """Back to the pool after a complete exchange, or closed."""
        conn.busy = False
        conn.fresh = False
        key = conn.key
        pooled = self._conns.get(key)
        if keep and not conn.closed:
            if pooled is conn:
                return
            if pooled is None or pooled.closed:
                self._conns[key] = conn
                return
        if pooled is conn:
            del self._conns[key]
        conn.shut(abort=False)

    def _drop(self, conn: _Connection) -> None:
        """Abort a connection whose state is unknown (failed, timed out, cancelled mid-exchange)."""
        if self._conns.get(conn.key) is conn:
            del self._conns[conn.key]
        conn.shut(abort=True)

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.shut(abort=False)
        if conns:
            await asyncio.sleep(0)  # let the closed sockets' transports finish on this loop


def _redirect(
    status: int, target: _Target, location: bytes, method: str, headers: Mapping[str, str], body: bytes | None
) -> tuple[str, str, Mapping[str, str], bytes | None]:
    """The next hop, by Go's ``net/http`` rules (which are k6's)."""
    next_url = urljoin(target.url, location.decode("latin-1").strip())
    try:
        next_host = urlsplit(next_url).hostname
    except ValueError:
        next_host = None  # the next hop fails as an invalid URL
    out: CIMultiDict[str] = CIMultiDict(headers)
    if status in (301, 302, 303):
        if method not in ("GET", "HEAD"):
            method = "GET"
        body = None
        out.popall("Content-Type", None)
        out.popall("Content-Length", None)
    if not same_site(target.host, next_host):
        for name in SENSITIVE_HEADERS:
            out.popall(name, None)
    return method, next_url, out, body

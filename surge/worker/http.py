"""The VU's HTTP client: k6's ``http`` API, its Response, its error codes and its timings.

This module knows no HTTP library: it does not import aiohttp or httptools. The bytes move
in a :class:`Transport`, of which there are two:

- ``transport_fast.FastTransport`` (the default, ``"fast"``): one keep-alive connection per
  origin on a raw asyncio/uvloop protocol, parsed by httptools; built to cost as little CPU
  per request as possible, so that a worker measures the server and not itself;
- ``transport_aiohttp.AiohttpTransport`` (``"aiohttp"``): aiohttp's client session, the
  full-featured reference the fast one is tested against.

:func:`make_transport` builds either by name.

The transport seam
------------------
Each VU owns one :class:`HttpClient`, and each client owns one :class:`Transport`: a single
``send`` method that takes a fully prepared request (method, URL, headers, body bytes,
timeout, redirect budget) and returns a :class:`Response`. :class:`HttpClient` does what is
the same for every transport (k6's argument handling: ``json=``, ``data=``, ``params=``,
``timeout="30s"``, base headers, reporting); a transport does what is specific to its
library (connections, cookie jar, redirects, timing). The VU, the recorder and the unit
tests (which use a fake transport) cannot tell them apart.

Failures are data
-----------------
A request never raises into user code for a network or HTTP failure. It returns a
Response with ``status == 0``, an ``error`` text and an ``error_code`` from k6's table
(:class:`ErrorCode`). Each transport turns its exceptions into that pair with one table of
rules, keyed by exception class and matched by the nearest listed ancestor; this module
holds the rules for what every transport meets (``OSError`` and its errno, DNS, TLS,
timeouts, invalid URLs, :data:`ERROR_RULES`), and each transport extends them with its
library's exceptions. A test walks each library's exception classes to prove that every
one has a rule. As in k6, an HTTP status >= 400 is not a failure of the request: ``status``
is set, ``error`` is empty and ``error_code`` is ``1000 + status`` (k6's 1400-1599 ranges);
``expected`` is k6's ``expected_response`` (status in 200..399). A body longer than the
transport's ``max_body_bytes`` (:data:`DEFAULT_MAX_BODY_BYTES`, 64 MiB, counted after
decompression) fails the request with 1700 (k6's content-error code) and reading stops
there; with ``discard_response_bodies`` (k6's ``discardResponseBodies``) the transport keeps
no byte of any body, only counts them, so no cap applies. Only programmer errors
(wrong argument types, ``json=`` with ``data=``) raise, as ``TypeError``/``ValueError``.
Every request, failed or not, is reported exactly once to ``on_response`` with its tags;
the worker's recorder turns that into metrics, this module records nothing itself.

The timing breakdown
--------------------
k6's trail (``lib/netext/httpext/tracer.go``), in milliseconds, per hop::

    start ─ blocked ───────────────────────────────────► got_conn ─ sending ─► sent ─ waiting ─► first byte ─ receiving ─► done
            └ (DNS) ─ connecting ─► tls_handshaking ─┘

- ``blocked``: from the call to holding a connection (pool wait, DNS, dial; as in k6 it
  contains ``connecting`` and ``tls_handshaking``). A reused keep-alive connection has
  ``connecting == 0``.
- ``connecting``: dialling TCP; ``tls_handshaking``: the TLS handshake after it.
- ``sending``: writing the request; ``waiting``: until the response starts;
  ``receiving``: reading the whole body (always read, as k6 does by default).
- ``duration = sending + waiting + receiving`` (``http_req_duration``).

Each transport's docstring says which events it takes these from. A request that fails
part-way is charged up to the failure: a timeout while waiting has ``waiting`` of about the
time spent. A request that never got a connection has zero timings, as in k6. The timeout
covers the whole request, redirects and body included; if it expires while dialling, the
code is k6's dial timeout (1211), otherwise 1050.

Redirects follow Go's rules, as k6 does: 301/302/303 turn into GET without a body (HEAD
stays HEAD), 307/308 keep method and body, credentials are dropped when the host changes,
cookies set along the way land in the VU's jar. After ``max_redirects`` hops k6 stops and
*returns the last redirect response* (status 3xx, no error), so the transports do too. The
returned Response carries the last hop's timings (as k6's does) and the bytes of all hops.
"""

from __future__ import annotations

import asyncio
import errno
import json as _json
import os
import socket
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Protocol, Self, TypedDict, Unpack
from urllib.parse import urlencode

from multidict import CIMultiDict, CIMultiDictProxy

from surge import __version__
from surge.common import api
from surge.common.durations import parse_duration

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ERROR_RULES",
    "REDIRECT_STATUSES",
    "SENSITIVE_HEADERS",
    "TRANSPORTS",
    "TRANSPORT_ERRORS",
    "BodyTooLargeError",
    "ErrorCode",
    "HttpClient",
    "InvalidURLError",
    "RequestOptions",
    "Response",
    "Rule",
    "Timings",
    "Transport",
    "cert_error",
    "classify_error",
    "classify_with",
    "dial_error",
    "dns_error",
    "fixed",
    "generic",
    "make_transport",
    "same_site",
    "status_error_code",
    "tcp_error",
    "tls_error",
]

# ---------------------------------------------------------------------------- error codes


class ErrorCode(IntEnum):
    """k6's error codes that this client can produce.

    From k6's ``lib/netext/httpext/error_codes.go`` and the "Error codes" page of its docs.
    Ranges: 1000-1099 general, 1100 DNS, 1200 TCP, 1300 TLS, 1400-1499 and 1500-1599 are
    ``1000 + status`` for 4xx/5xx responses (:func:`status_error_code`), 1600-1699 HTTP/2
    (not spoken here), 1700 content. k6's 1110/1111 (blocked IPs and hostnames) belong to
    options surge does not have yet.
    """

    GENERIC = 1000
    NET_NON_TCP = 1010
    INVALID_URL = 1020
    REQUEST_TIMEOUT = 1050
    DNS_GENERIC = 1100
    DNS_NO_IP = 1101
    TCP_GENERIC = 1200
    TCP_BROKEN_PIPE = 1201
    TCP_UNKNOWN_ERRNO = 1202
    TCP_DIAL = 1210
    TCP_DIAL_TIMEOUT = 1211
    TCP_CONNECTION_REFUSED = 1212
    TCP_DIAL_UNKNOWN = 1213
    TCP_RESET = 1220
    TLS_GENERIC = 1300
    TLS_HEADER = 1301
    TLS_UNKNOWN_AUTHORITY = 1310
    TLS_HOSTNAME_MISMATCH = 1311
    CONTENT_GENERIC = 1700
    RESPONSE_DECOMPRESSION = 1701


def status_error_code(status: int) -> int:
    """k6's ``error_code`` for a response that arrived: ``1000 + status`` from 400 up, else 0."""
    return 1000 + status if status >= 400 else 0


class InvalidURLError(ValueError):
    """A URL a transport cannot request: not http(s), no host, a bad port (k6's 1020)."""


DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""The most of one response body a transport keeps in memory (after decompression), 64 MiB.

k6 has no cap (Go reads the body into memory), nor has Locust; but one VU of thousands that
meets an endless or huge body must not take the worker's memory with it, and a load test
that downloads more than this per request measures bandwidth, for which
``discardResponseBodies`` is the tool: with it no body is kept, so none is capped."""


class BodyTooLargeError(Exception):
    """A response body grew past the transport's ``max_body_bytes``: the request fails with 1700."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body over the limit of {limit} bytes")
        self.limit = limit


Rule = Callable[[BaseException], tuple[int, str]]
"""Turns one exception into k6's ``(error_code, error)``."""


def fixed(code: ErrorCode, message: str) -> Rule:
    """A rule that always answers ``(code, message)``."""
    return lambda _exc: (code, message)


def generic(exc: BaseException) -> tuple[int, str]:
    """1000 with the exception's text: for errors k6 has no code for."""
    return ErrorCode.GENERIC, str(exc) or type(exc).__name__


_EAI_NO_SUCH_HOST = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})


def dns_error(exc: BaseException) -> tuple[int, str]:
    """A failed name lookup (``socket.gaierror``/``herror``)."""
    if getattr(exc, "errno", None) in _EAI_NO_SUCH_HOST:
        return ErrorCode.DNS_NO_IP, "lookup: no such host"
    return ErrorCode.DNS_GENERIC, f"lookup: {getattr(exc, 'strerror', None) or exc}"


# OpenSSL's reasons for "the peer does not speak TLS" (Go: tls.RecordHeaderError).
_TLS_RECORD_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
)
_X509_HOSTNAME_MISMATCH = 62
_X509_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})  # no issuer / self-signed / unverifiable leaf


def tls_error(exc: BaseException) -> tuple[int, str]:
    """A TLS failure (an ``ssl.SSLError``, or whatever a library raised for one)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return cert_error(exc)
    reason = getattr(exc, "reason", None)
    if reason in _TLS_RECORD_REASONS:
        return ErrorCode.TLS_HEADER, "tls: first record does not look like a TLS handshake"
    return ErrorCode.TLS_GENERIC, f"tls: {reason or type(exc).__name__}"


def cert_error(exc: BaseException) -> tuple[int, str]:
    """A certificate that did not verify (``ssl.SSLCertVerificationError``)."""
    code = getattr(exc, "verify_code", None)
    if code == _X509_HOSTNAME_MISMATCH:
        return ErrorCode.TLS_HOSTNAME_MISMATCH, "x509: certificate doesn't match hostname"
    if code in _X509_UNKNOWN_ISSUER:
        return ErrorCode.TLS_UNKNOWN_AUTHORITY, "x509: unknown authority"
    return ErrorCode.TLS_GENERIC, f"x509: {getattr(exc, 'verify_message', None) or exc}"


def dial_error(exc: BaseException) -> tuple[int, str]:
    """A connection could not be made: ``exc`` is what connecting raised (k6's 1210-1213)."""
    if isinstance(exc, socket.gaierror):
        return dns_error(exc)
    if isinstance(exc, ssl.SSLError):
        return tls_error(exc)
    num = getattr(exc, "errno", None)
    if num == errno.ECONNREFUSED:
        return ErrorCode.TCP_CONNECTION_REFUSED, "dial: connection refused"
    if num == errno.ETIMEDOUT or (num is None and isinstance(exc, TimeoutError)):
        return ErrorCode.TCP_DIAL_TIMEOUT, "dial: i/o timeout"
    if num is not None:
        return ErrorCode.TCP_DIAL_UNKNOWN, f"dial: unknown errno {num} error with msg `{os.strerror(num)}`"
    return ErrorCode.TCP_DIAL, f"dial: {exc}"


def tcp_error(exc: BaseException) -> tuple[int, str]:
    """An established connection failed (reading or writing)."""
    num = getattr(exc, "errno", None)
    if num == errno.ECONNRESET:
        return ErrorCode.TCP_RESET, "connection reset by peer"
    if num == errno.EPIPE:
        return ErrorCode.TCP_BROKEN_PIPE, "write: broken pipe"
    if num == errno.ECONNREFUSED:
        return ErrorCode.TCP_CONNECTION_REFUSED, "dial: connection refused"
    if num is not None:
        return ErrorCode.TCP_UNKNOWN_ERRNO, f"unknown errno `{num}` on {sys.platform} with message `{os.strerror(num)}`"
    return ErrorCode.TCP_GENERIC, str(exc) or type(exc).__name__


_TLS: Rule = tls_error

ERROR_RULES: Mapping[type[BaseException], Rule] = MappingProxyType(
    {
        # Timeouts. TimeoutError is an OSError, so it must be matched before OSError (MRO order).
        TimeoutError: fixed(ErrorCode.REQUEST_TIMEOUT, "request timeout"),
        # URLs.
        InvalidURLError: fixed(ErrorCode.INVALID_URL, "invalid URL"),
        # DNS.
        socket.gaierror: dns_error,
        socket.herror: dns_error,
        # Refused is always a dial failure, wherever it surfaces.
        ConnectionRefusedError: fixed(ErrorCode.TCP_CONNECTION_REFUSED, "dial: connection refused"),
        # An established connection.
        OSError: tcp_error,
        ConnectionError: tcp_error,
        ConnectionAbortedError: tcp_error,
        ConnectionResetError: fixed(ErrorCode.TCP_RESET, "connection reset by peer"),
        BrokenPipeError: fixed(ErrorCode.TCP_BROKEN_PIPE, "write: broken pipe"),
        # TLS.
        ssl.SSLError: _TLS,
        ssl.SSLZeroReturnError: _TLS,
        ssl.SSLWantReadError: _TLS,
        ssl.SSLWantWriteError: _TLS,
        ssl.SSLSyscallError: _TLS,
        ssl.SSLEOFError: _TLS,
        ssl.SSLCertVerificationError: cert_error,
        # Deliberately generic: e.g. a header value with a newline.
        ValueError: generic,
        # The body. k6 reserves 1700 for content errors; a body over the cap is one.
        BodyTooLargeError: lambda exc: (ErrorCode.CONTENT_GENERIC, str(exc)),
    }
)
"""The rules every transport shares: the standard library's network errors. A transport's
own table is ``{**ERROR_RULES, **its_rules}``; a class is matched by its nearest listed
ancestor."""

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(ERROR_RULES)
"""What :class:`HttpClient` turns into a failed Response if a transport raises it.
Anything else is a bug and propagates."""


def classify_with(rules: Mapping[type[BaseException], Rule], exc: BaseException) -> tuple[int, str]:
    """k6's ``(error_code, error)`` for ``exc`` by the nearest ancestor of it in ``rules``.

    The message is short and stable (it becomes the ``error`` tag, so it must not carry
    URLs or ports where k6's does not). An exception without a rule is 1000 with its text.
    """
    for cls in type(exc).__mro__:
        rule = rules.get(cls)
        if rule is not None:
            code, message = rule(exc)
            return int(code), message  # a plain int on the wire and in tags
    return ErrorCode.GENERIC, f"{type(exc).__name__}: {exc}"


def classify_error(exc: BaseException) -> tuple[int, str]:
    """:func:`classify_with` the shared :data:`ERROR_RULES`."""
    return classify_with(ERROR_RULES, exc)


# ---------------------------------------------------------------------------- response


@dataclass(slots=True)
class Timings:
    """k6's per-request timing breakdown, in milliseconds (see the module docstring)."""

    blocked: float = 0.0
    connecting: float = 0.0
    tls_handshaking: float = 0.0
    sending: float = 0.0
    waiting: float = 0.0
    receiving: float = 0.0
    duration: float = 0.0


_NO_HEADERS: Mapping[str, str] = CIMultiDictProxy(CIMultiDict())


class Response:
    """What a request produced: k6's ``http.Response``.

    ``status == 0`` with ``error``/``error_code`` set means no response arrived. For a
    response that did arrive, ``error_code`` is ``1000 + status`` from 400 up (k6), and
    ``expected`` is whether the status is in 200..399 (k6's default ``expected_response``).
    ``headers`` is a case-insensitive mapping. ``bytes_sent``/``bytes_received`` are the
    wire bytes (request line, headers and body; status line, headers and body; of every
    hop), for ``data_sent``/``data_received``: exact for the fast transport, estimated from
    the parsed message by the aiohttp one.
    """

    __slots__ = (
        "body",
        "bytes_received",
        "bytes_sent",
        "error",
        "error_code",
        "expected",
        "headers",
        "method",
        "status",
        "timings",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        status: int,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] = _NO_HEADERS,
        error: str = "",
        error_code: int | None = None,
        timings: Timings | None = None,
        bytes_sent: int = 0,
        bytes_received: int = 0,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        self.headers = headers
        self.error = error
        self.error_code = status_error_code(status) if error_code is None else error_code
        self.timings = timings if timings is not None else Timings()
        self.bytes_sent = bytes_sent
        self.bytes_received = bytes_received
        self.expected = 200 <= status <= 399

    @classmethod
    def failed(
        cls,
        method: str,
        url: str,
        exc: BaseException,
        *,
        classify: Callable[[BaseException], tuple[int, str]] = classify_error,
        timings: Timings | None = None,
        bytes_sent: int = 0,
        bytes_received: int = 0,
    ) -> Response:
        """The Response for a request that got no response: status 0 and k6's code for ``exc``.

        ``classify`` is the transport's classifier (the shared rules by default).
        """
        code, message = classify(exc)
        return cls(
            method,
            url,
            0,
            error=message,
            error_code=code,
            timings=timings,
            bytes_sent=bytes_sent,
            bytes_received=bytes_received,
        )

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced); ``""`` without a body."""
        return "" if self.body is None else self.body.decode("utf-8", errors="replace")

    def json(self, selector: str | None = None) -> Any:
        """The body parsed as JSON; ``ValueError`` if there is none or it is not JSON (k6 throws)."""
        if selector is not None:
            raise NotImplementedError("Response.json(selector) is not supported; index the result instead")
        if not self.body:
            raise ValueError(f"no body to parse as JSON ({self.method} {self.url}, status {self.status})")
        return _json.loads(self.body)

    def __repr__(self) -> str:
        if self.status == 0:
            return f"<Response {self.method} {self.url} error_code={self.error_code} {self.error!r}>"
        return f"<Response {self.method} {self.url} [{self.status}] {self.timings.duration:.1f}ms>"


# ---------------------------------------------------------------------------- transports


class Transport(Protocol):
    """Sends one prepared request and returns its Response; never raises for a network failure.

    ``timeout_s`` bounds the whole request (redirects and body included); after
    ``max_redirects`` hops the last redirect response is returned (k6). A transport may
    still raise one of :data:`TRANSPORT_ERRORS`; the client turns it into a failed Response.
    """

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_redirects: int,
    ) -> Response: ...

    async def close(self) -> None: ...

    def take_interrupted(self) -> Response | None:
        """The request a cancellation just cut short, if it had reached the wire (else None).

        When ``send`` is cancelled after the request was written, the server has it: the
        transport keeps it as a failed Response (``"request interrupted"``, 1000) for the
        client to report, so that surge's count matches what the server saw.
        """
        ...


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SENSITIVE_HEADERS = ("Authorization", "Www-Authenticate", "Cookie", "Cookie2")
"""Dropped from a redirect to another host (Go's ``shouldCopyHeaderOnRedirect``)."""


def same_site(host: str | None, target: str | None) -> bool:
    """Go's rule for keeping credentials on redirect: the same host or a subdomain of it."""
    if not host or not target:
        return False
    return target == host or target.endswith("." + host)


TRANSPORTS = ("fast", "aiohttp")
"""The names :func:`make_transport` knows, the default first."""


def make_transport(name: str) -> Transport:
    """A new transport by name: ``"fast"`` (the default) or ``"aiohttp"``."""
    if name == "fast":
        from surge.worker.transport_fast import FastTransport

        return FastTransport()
    if name == "aiohttp":
        from surge.worker.transport_aiohttp import AiohttpTransport

        return AiohttpTransport()
    raise ValueError(f"unknown HTTP transport {name!r}; expected one of: {', '.join(TRANSPORTS)}")


# ---------------------------------------------------------------------------- client


class RequestOptions(TypedDict, total=False):
    """The keywords every request method takes (k6's ``params``, Python-style)."""

    json: Any
    data: str | bytes | Mapping[str, str] | None
    headers: Mapping[str, str] | None
    params: Mapping[str, str] | None
    timeout: float | str | None
    tags: Mapping[str, str] | None


_USER_AGENT = f"surge/{__version__}"


class LoadHalted(Exception):
    """A request refused before it was sent, because this worker may no longer load its target.

    The fence behind the coordinator-loss guard (:mod:`surge.common.wire`): a worker frozen
    (SIGSTOP, a stalled VM) past its silence limit wakes with every VU's timer due at once,
    and its VUs would run before its link's thread could say that the coordinator has gone.
    Checked on the VUs' own thread, before each request, so none goes out.
    """


class HttpClient:
    """A VU's ``http``: k6's request API over a :class:`Transport`, reporting every request once.

    ``on_response(response, tags)`` is called after each request, failed or not, with the
    ``tags=`` given to it (or ``None``). A request cancelled from outside (the VU being
    stopped) raises ``CancelledError``; if it had already been written to the connection it
    is reported first, as failed with ``error == "request interrupted"``, because the server
    received it and the counts on both sides must agree. Without ``transport=`` the client
    uses a new ``make_transport("fast")``.

    ``may_send()``, if given, is asked before every request: False means this worker must not
    load anyone now (its coordinator has gone silent: see :class:`LoadHalted`), and the request
    is not sent.
    """

    def __init__(
        self,
        *,
        on_response: Callable[[Response, Mapping[str, str] | None], None],
        transport: Transport | None = None,
        default_timeout_s: float = 60.0,
        max_redirects: int = 10,
        base_headers: Mapping[str, str] | None = None,
        discard_response_bodies: bool = False,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        if not default_timeout_s > 0:
            raise ValueError(f"default_timeout_s must be > 0, got {default_timeout_s!r}")
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {max_redirects!r}")
        self._on_response = on_response
        self._transport: Transport = transport if transport is not None else make_transport("fast")
        self._default_timeout_s = float(default_timeout_s)
        self._max_redirects = max_redirects
        self._discard = discard_response_bodies  # k6's discardResponseBodies: body is None
        self._may_send = may_send
        if may_send is not None and hasattr(self._transport, "fence"):
            self._transport.fence = may_send  # a transport that writes again (retry, redirect) asks too
        if discard_response_bodies and hasattr(self._transport, "keep_bodies"):
            self._transport.keep_bodies = False  # read and counted, never held, so never capped
        self._base_headers: CIMultiDict[str] = CIMultiDict({"User-Agent": _USER_AGENT})
        if base_headers:
            self._base_headers.update(base_headers)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: str | bytes | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and return its Response; network and HTTP failures come back as data."""
        if not isinstance(method, str) or not isinstance(url, str):
            raise TypeError(f"method and url must be str, got {type(method).__name__} and {type(url).__name__}")
        if isinstance(url, api.URL) and not (tags and "name" in tags):  # surge.url's name, unless a tag says otherwise
            tags = {**(tags or {}), "name": url.name}
        method = method.upper()
        timeout_s = self._timeout_s(timeout)
        body, content_type = _encode_body(json, data)
        if params:
            url = _with_query(url, params)
        all_headers = self._base_headers.copy()
        if headers:
            if not isinstance(headers, Mapping):
                raise TypeError(f"headers must be a mapping, got {type(headers).__name__}")
            for name, value in headers.items():
                all_headers[name] = value
        if content_type is not None and "Content-Type" not in all_headers:
            all_headers["Content-Type"] = content_type
        if self._may_send is not None and not self._may_send():
            # One turn of the loop first: the VU was just cancelled with the rest, and a scenario
            # that retries in a loop must not spin here without ever letting that cancel land.
            await asyncio.sleep(0)
            raise LoadHalted("not sent: this worker's coordinator has gone silent, so its load stops")
        try:
            resp = await self._transport.send(method, url, all_headers, body, timeout_s, self._max_redirects)
        except asyncio.CancelledError:
            cut = self._transport.take_interrupted()
            if cut is not None:
                self._on_response(cut, tags)
            raise
        except TRANSPORT_ERRORS as exc:  # a transport that raised instead of answering
            resp = Response.failed(method, url, exc)
        if self._discard:
            resp.body = None  # read and counted (data_received), then dropped, as in k6
        self._on_response(resp, tags)
        return resp

    def _timeout_s(self, timeout: float | str | None) -> float:
        if timeout is None:
            return self._default_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float, str)):
            raise TypeError(f"timeout must be seconds or a duration string such as '30s', got {timeout!r}")
        seconds = parse_duration(timeout) if isinstance(timeout, str) else float(timeout)
        if not seconds > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        return seconds

    url = staticmethod(api.url)  # k6's http.url: vu.http.url("http://h/items/{}", id)

    async def get(self, url: str, **options: Unpack[RequestOptions]) -> Response:
        return await self.request("GET", url, **options)

    async def post(self, url: str, **options: Unpack[RequestOptions]) -> Response:
        return await self.request("POST", url, **options)

    async def put(self, url: str, **options: Unpack[RequestOptions]) -> Response:
        return await self.request("PUT", url, **options)

    async def patch(self, url: str, **options: Unpack[RequestOptions]) -> Response:
        return await self.request("PATCH", url, **options)

    async def delete(self, url: str, **options: Unpack[RequestOptions]) -> Response:
        return await self.request("DELETE", url, **options)

    async def head(self, url: str, **options: Unpack[RequestOptions]) -> Response:
        return await self.request("HEAD", url, **options)

    async def options(self, url: str, **options: Unpack[RequestOptions]) -> Response:
        return await self.request("OPTIONS", url, **options)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def _encode_body(json: Any, data: str | bytes | Mapping[str, str] | None) -> tuple[bytes | None, str | None]:
    """The body bytes and the Content-Type they imply (``None``: leave it to the caller)."""
    if json is not None:
        if data is not None:
            raise TypeError("pass json= or data=, not both")
        text = _json.dumps(json, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8"), "application/json"
    if data is None:
        return None, None
    if isinstance(data, str):
        return data.encode("utf-8"), None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), None
    if isinstance(data, Mapping):
        return urlencode(data).encode("ascii"), "application/x-www-form-urlencoded"
    raise TypeError(f"data must be str, bytes or a mapping, got {type(data).__name__}")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    base, hash_, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{urlencode(params)}{hash_}{fragment}"

"""The VU's HTTP client: k6's ``http`` API, its Response, its error codes and its timings.

The only surge module that imports aiohttp's client.

The transport seam
------------------
Each VU owns one :class:`HttpClient`, and each client owns one :class:`Transport`: a single
``send`` method that takes a fully prepared request (method, URL, headers, body bytes,
timeout, redirect budget) and returns a :class:`Response`. :class:`HttpClient` does what is
the same for every transport (k6's argument handling: ``json=``, ``data=``, ``params=``,
``timeout="30s"``, base headers, reporting); :class:`AiohttpTransport` does what is specific to
aiohttp (connection pool, cookie jar, redirects, tracing). A faster transport (a raw uvloop
protocol and httptools) can replace it without the VU, the recorder or any test noticing,
and unit tests use a fake one.

Failures are data
-----------------
A request never raises into user code for a network or HTTP failure. It returns a
Response with ``status == 0``, an ``error`` text and an ``error_code`` from k6's table
(:class:`ErrorCode`); :func:`classify_error` is the one place that turns an exception into
that pair, and a test walks aiohttp's exception classes to prove each one has a rule.
As in k6, an HTTP status >= 400 is not a failure of the request: ``status`` is set,
``error`` is empty and ``error_code`` is ``1000 + status`` (k6's 1400-1599 ranges);
``expected`` is k6's ``expected_response`` (status in 200..399). Only programmer errors
(wrong argument types, ``json=`` with ``data=``) raise, as ``TypeError``/``ValueError``.
Every request, failed or not, is reported exactly once to ``on_response`` with its tags;
the worker's recorder turns that into metrics, this module records nothing itself.

The timing breakdown
--------------------
k6's trail (``lib/netext/httpext/tracer.go``), measured with ``time.perf_counter`` from
aiohttp's trace signals into one small :class:`_Trace` per hop::

    start ─ blocked ───────────────────────────► got_conn ─ sending ─► sent ─ waiting ─► head ─ receiving ─► done
            └ create_start ─ connecting ───────┘
              (after DNS, if it was resolved)

- ``blocked``: from the call to holding a connection (pool wait, DNS, dial; as in k6 it
  contains ``connecting``). A reused keep-alive connection has ``connecting == 0``.
- ``connecting``: dialling a new connection. aiohttp dials TCP and TLS in one step, so for
  https the handshake is folded in here and ``tls_handshaking`` stays 0.
- ``sending``: from holding the connection to the request being handed to the kernel: the
  headers for a bodiless request, else the body once its write has drained (the body is
  wrapped in :class:`_Body`, which notes that moment; aiohttp has no signal for it).
- ``waiting``: until the response head has been parsed (k6: first byte).
- ``receiving``: reading the whole body (always read, as k6 does by default).
- ``duration = sending + waiting + receiving`` (``http_req_duration``).

A request that fails part-way is charged up to the failure: a timeout while waiting has
``waiting`` of about the time spent. A request that never got a connection has zero
timings, as in k6. The timeout covers the whole request, redirects and body included; if
it expires while dialling, the code is k6's dial timeout (1211), otherwise 1050.

Redirects follow Go's rules, as k6 does: 301/302/303 turn into GET without a body (HEAD
stays HEAD), 307/308 keep method and body, credentials are dropped when the host changes,
cookies set along the way land in the VU's jar. After ``max_redirects`` hops k6 stops and
*returns the last redirect response* (status 3xx, no error), so this client does too. The
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
from time import perf_counter
from types import MappingProxyType, SimpleNamespace
from typing import Any, Protocol, Self, TypedDict, Unpack
from urllib.parse import urlencode

import aiohttp
from aiohttp import client_exceptions, http_exceptions
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from surge import __version__
from surge.common.durations import parse_duration

__all__ = [
    "ERROR_RULES",
    "TRANSPORT_ERRORS",
    "AiohttpTransport",
    "ErrorCode",
    "HttpClient",
    "RequestOptions",
    "Response",
    "Timings",
    "Transport",
    "classify_error",
    "status_error_code",
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
    RESPONSE_DECOMPRESSION = 1701


def status_error_code(status: int) -> int:
    """k6's ``error_code`` for a response that arrived: ``1000 + status`` from 400 up, else 0."""
    return 1000 + status if status >= 400 else 0


_Rule = Callable[[BaseException], tuple[int, str]]


def _fixed(code: ErrorCode, message: str) -> _Rule:
    return lambda _exc: (code, message)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from, outermost first (aiohttp chains the real cause)."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__
    return chain


def _generic(exc: BaseException) -> tuple[int, str]:
    return ErrorCode.GENERIC, str(exc) or type(exc).__name__


def _response_error(exc: BaseException) -> tuple[int, str]:
    # aiohttp's text for these carries the URL; keep the error tag low-cardinality.
    return (
        ErrorCode.GENERIC,
        f"{type(exc).__name__}: {getattr(exc, 'status', '')} {getattr(exc, 'message', '')}".strip(),
    )


_EAI_NO_SUCH_HOST = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})


def _dns(exc: BaseException) -> tuple[int, str]:
    os_error = getattr(exc, "os_error", exc)
    if getattr(os_error, "errno", None) in _EAI_NO_SUCH_HOST:
        return ErrorCode.DNS_NO_IP, "lookup: no such host"
    return ErrorCode.DNS_GENERIC, f"lookup: {getattr(os_error, 'strerror', None) or os_error}"


# OpenSSL's reasons for "the peer does not speak TLS" (Go: tls.RecordHeaderError).
_TLS_RECORD_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
)
_X509_HOSTNAME_MISMATCH = 62
_X509_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})  # no issuer / self-signed / unverifiable leaf


def _tls(exc: BaseException) -> tuple[int, str]:
    err = getattr(exc, "os_error", exc) if isinstance(exc, aiohttp.ClientSSLError) else exc
    if isinstance(err, ssl.SSLCertVerificationError):
        return _cert(err)
    reason = getattr(err, "reason", None)
    if reason in _TLS_RECORD_REASONS:
        return ErrorCode.TLS_HEADER, "tls: first record does not look like a TLS handshake"
    return ErrorCode.TLS_GENERIC, f"tls: {reason or type(err).__name__}"


def _cert(exc: BaseException) -> tuple[int, str]:
    err = getattr(exc, "certificate_error", exc)
    code = getattr(err, "verify_code", None)
    if code == _X509_HOSTNAME_MISMATCH:
        return ErrorCode.TLS_HOSTNAME_MISMATCH, "x509: certificate doesn't match hostname"
    if code in _X509_UNKNOWN_ISSUER:
        return ErrorCode.TLS_UNKNOWN_AUTHORITY, "x509: unknown authority"
    return ErrorCode.TLS_GENERIC, f"x509: {getattr(err, 'verify_message', None) or err}"


def _dial(exc: BaseException) -> tuple[int, str]:
    """A connection could not be made (aiohttp's ClientConnectorError wraps the OSError)."""
    os_error = getattr(exc, "os_error", exc)
    if isinstance(os_error, socket.gaierror):
        return _dns(os_error)
    if isinstance(os_error, ssl.SSLError):
        return _tls(os_error)
    num = getattr(os_error, "errno", None)
    if num == errno.ECONNREFUSED:
        return ErrorCode.TCP_CONNECTION_REFUSED, "dial: connection refused"
    if num == errno.ETIMEDOUT or (num is None and isinstance(os_error, TimeoutError)):
        return ErrorCode.TCP_DIAL_TIMEOUT, "dial: i/o timeout"
    if num is not None:
        return ErrorCode.TCP_DIAL_UNKNOWN, f"dial: unknown errno {num} error with msg `{os.strerror(num)}`"
    return ErrorCode.TCP_DIAL, f"dial: {os_error}"


def _tcp(exc: BaseException) -> tuple[int, str]:
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


def _unwrap(code: ErrorCode, message: str) -> _Rule:
    """Use the cause's code when aiohttp wrapped a more specific error (k6 unwraps too), else ``code``."""

    def rule(exc: BaseException) -> tuple[int, str]:
        for cause in _causes(exc)[1:]:
            if isinstance(cause, (http_exceptions.ContentEncodingError, http_exceptions.DecompressSizeError)):
                return ErrorCode.RESPONSE_DECOMPRESSION, "error decompressing response body"
            if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
                return classify_error(cause)
        return code, message or str(exc) or type(exc).__name__

    return rule


_TIMEOUT = _fixed(ErrorCode.REQUEST_TIMEOUT, "request timeout")
_INVALID_URL = _fixed(ErrorCode.INVALID_URL, "invalid URL")
_DECOMPRESSION = _fixed(ErrorCode.RESPONSE_DECOMPRESSION, "error decompressing response body")
_MALFORMED = _unwrap(ErrorCode.GENERIC, "malformed HTTP response")

_RULES: dict[type[BaseException], _Rule] = {
    # Timeouts. TimeoutError is an OSError, so it must be matched before OSError (MRO order).
    TimeoutError: _TIMEOUT,
    aiohttp.ServerTimeoutError: _TIMEOUT,
    aiohttp.SocketTimeoutError: _TIMEOUT,
    aiohttp.ConnectionTimeoutError: _fixed(ErrorCode.TCP_DIAL_TIMEOUT, "dial: i/o timeout"),
    # URLs.
    aiohttp.InvalidURL: _INVALID_URL,
    aiohttp.InvalidUrlClientError: _INVALID_URL,
    aiohttp.InvalidUrlRedirectClientError: _INVALID_URL,
    aiohttp.NonHttpUrlClientError: _INVALID_URL,
    aiohttp.NonHttpUrlRedirectClientError: _INVALID_URL,
    aiohttp.RedirectClientError: _INVALID_URL,
    # DNS.
    socket.gaierror: _dns,
    socket.herror: _dns,
    aiohttp.ClientConnectorDNSError: _dns,
    # Dialling.
    aiohttp.ClientConnectorError: _dial,
    aiohttp.ClientProxyConnectionError: _dial,
    client_exceptions.UnixClientConnectorError: lambda e: (ErrorCode.NET_NON_TCP, str(e)),
    ConnectionRefusedError: _fixed(ErrorCode.TCP_CONNECTION_REFUSED, "dial: connection refused"),
    # An established connection.
    OSError: _tcp,
    ConnectionError: _tcp,
    ConnectionAbortedError: _tcp,
    ConnectionResetError: _fixed(ErrorCode.TCP_RESET, "connection reset by peer"),
    BrokenPipeError: _fixed(ErrorCode.TCP_BROKEN_PIPE, "write: broken pipe"),
    aiohttp.ClientOSError: _tcp,
    aiohttp.ClientConnectionResetError: _fixed(ErrorCode.TCP_RESET, "connection reset by peer"),
    aiohttp.ClientConnectionError: _unwrap(ErrorCode.TCP_GENERIC, ""),
    aiohttp.ServerConnectionError: _unwrap(ErrorCode.TCP_GENERIC, ""),
    # Go reports a server that closes without answering as "EOF", which k6 leaves at 1000.
    aiohttp.ServerDisconnectedError: _fixed(ErrorCode.GENERIC, "EOF (server closed the connection)"),
    # TLS.
    ssl.SSLError: _tls,
    ssl.SSLZeroReturnError: _tls,
    ssl.SSLWantReadError: _tls,
    ssl.SSLWantWriteError: _tls,
    ssl.SSLSyscallError: _tls,
    ssl.SSLEOFError: _tls,
    ssl.SSLCertVerificationError: _cert,
    aiohttp.ClientSSLError: _tls,
    aiohttp.ClientConnectorSSLError: _tls,
    aiohttp.ClientConnectorCertificateError: _cert,
    aiohttp.ServerFingerprintMismatch: _fixed(ErrorCode.TLS_GENERIC, "tls: certificate fingerprint mismatch"),
    # The response. k6 has no codes for a truncated or malformed response: Go's "unexpected
    # EOF" and "malformed HTTP response" fall to 1000.
    aiohttp.ClientPayloadError: _unwrap(ErrorCode.GENERIC, "unexpected EOF"),
    http_exceptions.HttpProcessingError: _MALFORMED,
    http_exceptions.BadHttpMessage: _MALFORMED,
    http_exceptions.HttpBadRequest: _MALFORMED,
    http_exceptions.PayloadEncodingError: _MALFORMED,
    http_exceptions.TransferEncodingError: _MALFORMED,
    http_exceptions.ContentLengthError: _MALFORMED,
    http_exceptions.LineTooLong: _MALFORMED,
    http_exceptions.InvalidHeader: _MALFORMED,
    http_exceptions.BadStatusLine: _MALFORMED,
    http_exceptions.BadHttpMethod: _MALFORMED,
    http_exceptions.InvalidURLError: _MALFORMED,
    http_exceptions.ContentEncodingError: _DECOMPRESSION,
    http_exceptions.DecompressSizeError: _DECOMPRESSION,
    # Deliberately generic: errors k6 has no code for, or that this client never triggers
    # (it reads no JSON through aiohttp, follows redirects itself, uses no proxy or websocket).
    ValueError: _generic,  # e.g. a header value with a newline; aiohttp's URL errors are matched above
    aiohttp.ClientError: _generic,
    aiohttp.ClientResponseError: _response_error,
    aiohttp.ContentTypeError: _response_error,
    aiohttp.WSServerHandshakeError: _response_error,
    aiohttp.ClientHttpProxyError: _response_error,
    aiohttp.TooManyRedirects: _fixed(ErrorCode.GENERIC, "too many redirects"),
    aiohttp.UploadAbortedError: _generic,
}

ERROR_RULES: Mapping[type[BaseException], _Rule] = MappingProxyType(_RULES)
"""Each exception class with an explicit rule; a class is matched by its nearest listed ancestor."""

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(_RULES)
"""What a transport turns into a failed Response. Anything else is a bug and propagates."""


def classify_error(exc: BaseException) -> tuple[int, str]:
    """k6's ``(error_code, error)`` for an exception raised while making a request.

    The message is short and stable (it becomes the ``error`` tag, so it must not carry
    URLs or ports where k6's does not). An exception without a rule is 1000 with its text.
    """
    for cls in type(exc).__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            code, message = rule(exc)
            return int(code), message  # a plain int on the wire and in tags
    return ErrorCode.GENERIC, f"{type(exc).__name__}: {exc}"


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
    ``bytes_sent``/``bytes_received`` approximate the wire bytes (request line, headers and
    body; status line, headers and body), for ``data_sent``/``data_received``.
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
        timings: Timings | None = None,
        bytes_sent: int = 0,
        bytes_received: int = 0,
    ) -> Response:
        """The Response for a request that got no response: status 0 and k6's code for ``exc``."""
        code, message = classify_error(exc)
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
        """The request a cancellation just cut short, if it had reached the wire (else None)."""
        ...


class _Trace:
    """One hop's timestamps (``perf_counter`` seconds; 0.0 = not reached), filled by the signals below."""

    __slots__ = ("conn_start", "got_conn", "head", "new_conn", "sent", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.conn_start = 0.0
        self.got_conn = 0.0
        self.new_conn = False
        self.sent = 0.0
        self.head = 0.0

    def dialling(self) -> bool:
        return self.conn_start > self.got_conn

    def timings(self, done: float) -> Timings:
        got = self.got_conn
        if not got:
            return Timings()
        sent = self.sent if self.sent >= got else done
        sending = sent - got
        if self.head:
            waiting = max(0.0, self.head - sent)
            receiving = done - self.head
        else:
            waiting = max(0.0, done - sent)
            receiving = 0.0
        sending_ms, waiting_ms, receiving_ms = sending * 1e3, waiting * 1e3, receiving * 1e3
        return Timings(
            blocked=(got - self.start) * 1e3,
            connecting=(got - self.conn_start) * 1e3 if self.new_conn else 0.0,
            sending=sending_ms,
            waiting=waiting_ms,
            receiving=receiving_ms,
            duration=sending_ms + waiting_ms + receiving_ms,
        )


# aiohttp calls these with (session, SimpleNamespace(trace_request_ctx=<our _Trace>), params).
async def _on_create_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    ctx.trace_request_ctx.conn_start = perf_counter()


async def _on_dns_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    ctx.trace_request_ctx.conn_start = perf_counter()  # k6's connecting starts after the lookup


async def _on_create_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    trace = ctx.trace_request_ctx
    trace.got_conn = perf_counter()
    trace.new_conn = True


async def _on_reuse(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    trace = ctx.trace_request_ctx
    trace.got_conn = perf_counter()
    trace.new_conn = False


async def _on_sent(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    ctx.trace_request_ctx.sent = perf_counter()


def _trace_config() -> aiohttp.TraceConfig:
    tc = aiohttp.TraceConfig()
    tc.on_connection_create_start.append(_on_create_start)
    tc.on_dns_resolvehost_end.append(_on_dns_end)
    tc.on_connection_create_end.append(_on_create_end)
    tc.on_connection_reuseconn.append(_on_reuse)
    tc.on_request_headers_sent.append(_on_sent)
    return tc


class _Body(Payload):
    """A request body that stamps the end of sending once aiohttp has written (and drained) it.

    It stands in for the ``BytesPayload`` aiohttp would make from the bytes (so it costs no
    extra object), without that class's warning about bodies over 1 MiB.
    """

    _autoclose = True
    _value: bytes

    def __init__(self, value: bytes, trace: _Trace) -> None:
        super().__init__(value)
        self._size = len(value)
        self._trace = trace

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._value.decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self._value

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        await writer.write(self._value if content_length is None else self._value[:content_length])
        self._trace.sent = perf_counter()


_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SENSITIVE_HEADERS = ("Authorization", "Www-Authenticate", "Cookie", "Cookie2")


def _request_bytes(resp: aiohttp.ClientResponse, body: bytes | None) -> int:
    info = resp.request_info
    n = len(info.method) + len(info.url.raw_path_qs) + 14  # "M /p HTTP/1.1\r\n" ... "\r\n"
    for k, v in info.headers.items():
        n += len(k) + len(v) + 4
    return n + (len(body) if body else 0)


def _estimate_request_bytes(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> int:
    n = len(method) + len(url) + 14
    for k, v in headers.items():
        n += len(k) + len(v) + 4
    return n + (len(body) if body else 0)


def _response_bytes(resp: aiohttp.ClientResponse, content: bytes) -> int:
    n = 17 + len(resp.reason or "")  # "HTTP/1.1 200 OK\r\n" ... "\r\n"
    for k, v in resp.raw_headers:
        n += len(k) + len(v) + 4
    body = len(content)
    if body and resp.content_length is not None and "Content-Encoding" in resp.headers:
        body = resp.content_length  # aiohttp decompressed it; count what crossed the wire
    return n + body


def _same_site(host: str | None, target: str | None) -> bool:
    """Go's rule for keeping credentials on redirect: the same host or a subdomain of it."""
    if not host or not target:
        return False
    return target == host or target.endswith("." + host)


class AiohttpTransport:
    """One VU's aiohttp session: its own keep-alive pool and cookie jar, as in k6.

    The session is created on the first request, inside the running loop. ``limit_per_host``
    matches k6's ``batchPerHost`` default. ``keepalive_timeout_s`` is aiohttp's default: an
    idle connection is dropped before most servers drop it, so a pooled one is rarely stale.
    ``verify_tls=False`` is k6's ``insecureSkipTLSVerify``.
    """

    def __init__(self, *, limit_per_host: int = 6, keepalive_timeout_s: float = 15.0, verify_tls: bool = True) -> None:
        self._limit_per_host = limit_per_host
        self._keepalive_timeout_s = keepalive_timeout_s
        self._verify_tls = verify_tls
        self._session: aiohttp.ClientSession | None = None
        self._interrupted: Response | None = None

    def take_interrupted(self) -> Response | None:
        resp, self._interrupted = self._interrupted, None
        return resp

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._limit_per_host,
            keepalive_timeout=self._keepalive_timeout_s,
            ssl=self._verify_tls,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # so that cookies from 127.0.0.1 are kept
            trace_configs=[_trace_config()],
            timeout=aiohttp.ClientTimeout(),  # no aiohttp timeouts: send() bounds the whole request
            skip_auto_headers=("Content-Type",),  # Go sends no Content-Type unless told
            raise_for_status=False,
            trust_env=False,
        )
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_redirects: int,
    ) -> Response:
        session = self._session if self._session is not None else self._open()
        target: str | URL = url
        trace = _Trace(perf_counter())
        redirects = bytes_sent = bytes_received = 0
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    resp = await session.request(
                        method,
                        target,
                        headers=headers,
                        data=None if body is None else _Body(body, trace),
                        allow_redirects=False,
                        trace_request_ctx=trace,
                    )
                    trace.head = perf_counter()
                    content = await resp.read()
                    done = perf_counter()
                    bytes_sent += _request_bytes(resp, body)
                    bytes_received += _response_bytes(resp, content)
                    location = resp.headers.get("Location") if resp.status in _REDIRECT_STATUSES else None
                    if not location or redirects >= max_redirects:
                        return Response(
                            method,
                            url if redirects == 0 else str(resp.url),
                            resp.status,
                            body=content,
                            headers=resp.headers,
                            timings=trace.timings(done),
                            bytes_sent=bytes_sent,
                            bytes_received=bytes_received,
                        )
                    redirects += 1
                    method, target, headers, body = _redirect(resp, location, method, headers, body)
                    trace = _Trace(perf_counter())
        except asyncio.CancelledError:
            # The VU was stopped mid-request. If the request was written, the server has it:
            # keep it as a failed request so surge's count matches what the server saw.
            if trace.sent:
                self._interrupted = Response(
                    method,
                    str(target),
                    0,
                    error="request interrupted",
                    error_code=int(ErrorCode.GENERIC),
                    timings=trace.timings(perf_counter()),
                    bytes_sent=bytes_sent + _estimate_request_bytes(method, str(target), headers, body),
                    bytes_received=bytes_received,
                )
            raise
        except TRANSPORT_ERRORS as exc:
            done = perf_counter()
            failure: BaseException = exc
            if isinstance(exc, TimeoutError) and trace.dialling():
                failure = aiohttp.ConnectionTimeoutError(f"dial timeout to {target}")
            if trace.sent:
                bytes_sent += _estimate_request_bytes(method, str(target), headers, body)
            return Response.failed(
                method,
                str(target),
                failure,
                timings=trace.timings(done),
                bytes_sent=bytes_sent,
                bytes_received=bytes_received,
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            await asyncio.sleep(0)  # let the closed sockets' transports finish on this loop


def _redirect(
    resp: aiohttp.ClientResponse, location: str, method: str, headers: Mapping[str, str], body: bytes | None
) -> tuple[str, URL, Mapping[str, str], bytes | None]:
    """The next hop, by Go's ``net/http`` rules (which are k6's)."""
    try:
        target = resp.url.join(URL(location))
    except ValueError as exc:
        raise aiohttp.InvalidUrlRedirectClientError(location, "redirect to an invalid URL") from exc
    out: CIMultiDict[str] = CIMultiDict(headers)
    if resp.status in (301, 302, 303):
        if method not in ("GET", "HEAD"):
            method = "GET"
        body = None
        out.popall("Content-Type", None)
        out.popall("Content-Length", None)
    if not _same_site(resp.url.host, target.host):
        for name in _SENSITIVE_HEADERS:
            out.popall(name, None)
    return method, target, out, body


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


class HttpClient:
    """A VU's ``http``: k6's request API over a :class:`Transport`, reporting every request once.

    ``on_response(response, tags)`` is called after each request, failed or not, with the
    ``tags=`` given to it (or ``None``). A request cancelled from outside (the VU being
    stopped) raises ``CancelledError``; if it had already been written to the connection it
    is reported first, as failed with ``error == "request interrupted"``, because the server
    received it and the counts on both sides must agree.
    """

    def __init__(
        self,
        *,
        on_response: Callable[[Response, Mapping[str, str] | None], None],
        transport: Transport | None = None,
        default_timeout_s: float = 60.0,
        max_redirects: int = 10,
        base_headers: Mapping[str, str] | None = None,
    ) -> None:
        if not default_timeout_s > 0:
            raise ValueError(f"default_timeout_s must be > 0, got {default_timeout_s!r}")
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {max_redirects!r}")
        self._on_response = on_response
        self._transport: Transport = transport if transport is not None else AiohttpTransport()
        self._default_timeout_s = float(default_timeout_s)
        self._max_redirects = max_redirects
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
        try:
            resp = await self._transport.send(method, url, all_headers, body, timeout_s, self._max_redirects)
        except asyncio.CancelledError:
            cut = self._transport.take_interrupted()
            if cut is not None:
                self._on_response(cut, tags)
            raise
        except TRANSPORT_ERRORS as exc:  # a transport that raised instead of answering
            resp = Response.failed(method, url, exc)
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

"""The aiohttp transport: one aiohttp session per VU, with aiohttp's exceptions mapped to k6's codes.

The only surge module that imports aiohttp's client. It is the reference
transport (``make_transport("aiohttp")``); ``transports.fast`` is the cheap default, and both
are held to the same contract by the same tests. It offers no more than the fast one: the
same request options, and ``trust_env=False``, so no proxy or netrc from the environment.

Timings
-------
Measured with ``time.perf_counter`` from aiohttp's trace signals into one small
:class:`_Trace` per hop (the breakdown itself is described in ``surge.worker.http.response``)::

    start ─ blocked ───────────────────────────► got_conn ─ sending ─► sent ─ waiting ─► head ─ receiving ─► done
            └ create_start ─ connecting ───────┘
              (after DNS, if it was resolved)

- aiohttp dials TCP and TLS in one step, so for https the handshake is folded into
  ``connecting`` and ``tls_handshaking`` stays 0.
- ``sending`` ends when the headers were handed over for a bodiless request, else when the
  body's write has drained (the body is wrapped in :class:`_Body`, which notes that moment;
  aiohttp has no signal for it).
- ``waiting`` ends when the response head has been parsed (k6: first byte).

``bytes_sent``/``bytes_received`` are estimated from the request and the parsed response
(aiohttp does not count wire bytes).

Bodies and framing
------------------
A body is read in the chunks aiohttp hands over, kept up to ``max_body_bytes`` (64 MiB by
default, counted after aiohttp's decompression; past it the request fails with 1700 and
the connection is closed), or not kept at all when the client discards bodies. A
``Transfer-Encoding`` header from the user is dropped, as in the fast transport and Go.
Where aiohttp and the fast transport differ: aiohttp parses every byte of a read as a
pipeline, so garbage arriving in the same read after a response fails that response, and
half a status line after it stays in aiohttp's parser for the next request on that
connection (the fast transport returns the response as sent and closes the connection;
tests/worker/http/test_framing.py keeps both behaviours pinned).

Errors
------
:data:`ERROR_RULES` is the shared table of ``surge.worker.http.errors`` plus a rule for every
exception class aiohttp defines; a test walks aiohttp to prove none is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from time import perf_counter
from types import MappingProxyType, SimpleNamespace

import aiohttp
from aiohttp import client_exceptions, http_exceptions
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload
from multidict import CIMultiDict

from surge.worker.http import errors
from surge.worker.http.errors import (
    BodyTooLargeError,
    ErrorCode,
    Rule,
    cert_error,
    classify_with,
    dial_error,
    dns_error,
    fixed,
    generic,
    tls_error,
)
from surge.worker.http.redirects import REDIRECT_STATUSES, next_hop
from surge.worker.http.response import Response, Timings
from surge.worker.http.transport import DEFAULT_MAX_BODY_BYTES, BaseTransport

__all__ = ["ERROR_RULES", "TRANSPORT_ERRORS", "AiohttpTransport", "classify_error"]

# ---------------------------------------------------------------------------- errors


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from, outermost first (aiohttp chains the real cause)."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__
    return chain


def _response_error(exc: BaseException) -> tuple[int, str]:
    # aiohttp's text for these carries the URL; keep the error tag low-cardinality.
    return (
        ErrorCode.GENERIC,
        f"{type(exc).__name__}: {getattr(exc, 'status', '')} {getattr(exc, 'message', '')}".strip(),
    )


def _os_error(exc: BaseException) -> BaseException:
    """What aiohttp's connector errors wrap (``os_error``), else the exception itself."""
    inner = getattr(exc, "os_error", exc)
    return inner if isinstance(inner, BaseException) else exc


def _dns(exc: BaseException) -> tuple[int, str]:
    return dns_error(_os_error(exc))


def _dial(exc: BaseException) -> tuple[int, str]:
    return dial_error(_os_error(exc))


def _tls(exc: BaseException) -> tuple[int, str]:
    return tls_error(_os_error(exc) if isinstance(exc, aiohttp.ClientSSLError) else exc)


def _cert(exc: BaseException) -> tuple[int, str]:
    inner = getattr(exc, "certificate_error", exc)
    return cert_error(inner if isinstance(inner, BaseException) else exc)


def _unwrap(code: ErrorCode, message: str) -> Rule:
    """Use the cause's code when aiohttp wrapped a more specific error (k6 unwraps too), else ``code``."""

    def rule(exc: BaseException) -> tuple[int, str]:
        for cause in _causes(exc)[1:]:
            if isinstance(cause, (http_exceptions.ContentEncodingError, http_exceptions.DecompressSizeError)):
                return ErrorCode.RESPONSE_DECOMPRESSION, "error decompressing response body"
            if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
                return classify_error(cause)
        return code, message or str(exc) or type(exc).__name__

    return rule


_TIMEOUT = fixed(ErrorCode.REQUEST_TIMEOUT, "request timeout")
_INVALID_URL = fixed(ErrorCode.INVALID_URL, "invalid URL")
_DECOMPRESSION = fixed(ErrorCode.RESPONSE_DECOMPRESSION, "error decompressing response body")
_MALFORMED = _unwrap(ErrorCode.GENERIC, "malformed HTTP response")

_AIOHTTP_RULES: dict[type[BaseException], Rule] = {
    # Timeouts.
    aiohttp.ServerTimeoutError: _TIMEOUT,
    aiohttp.SocketTimeoutError: _TIMEOUT,
    aiohttp.ConnectionTimeoutError: fixed(ErrorCode.TCP_DIAL_TIMEOUT, "dial: i/o timeout"),
    # URLs.
    aiohttp.InvalidURL: _INVALID_URL,
    aiohttp.InvalidUrlClientError: _INVALID_URL,
    aiohttp.InvalidUrlRedirectClientError: _INVALID_URL,
    aiohttp.NonHttpUrlClientError: _INVALID_URL,
    aiohttp.NonHttpUrlRedirectClientError: _INVALID_URL,
    aiohttp.RedirectClientError: _INVALID_URL,
    # DNS.
    aiohttp.ClientConnectorDNSError: _dns,
    # Dialling.
    aiohttp.ClientConnectorError: _dial,
    aiohttp.ClientProxyConnectionError: _dial,
    client_exceptions.UnixClientConnectorError: lambda e: (ErrorCode.NET_NON_TCP, str(e)),
    # An established connection.
    aiohttp.ClientOSError: errors.tcp_error,
    aiohttp.ClientConnectionResetError: fixed(ErrorCode.TCP_RESET, "connection reset by peer"),
    aiohttp.ClientConnectionError: _unwrap(ErrorCode.TCP_GENERIC, ""),
    aiohttp.ServerConnectionError: _unwrap(ErrorCode.TCP_GENERIC, ""),
    # Go reports a server that closes without answering as "EOF", which k6 leaves at 1000.
    aiohttp.ServerDisconnectedError: fixed(ErrorCode.GENERIC, "EOF (server closed the connection)"),
    # TLS.
    aiohttp.ClientSSLError: _tls,
    aiohttp.ClientConnectorSSLError: _tls,
    aiohttp.ClientConnectorCertificateError: _cert,
    aiohttp.ServerFingerprintMismatch: fixed(ErrorCode.TLS_GENERIC, "tls: certificate fingerprint mismatch"),
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
    aiohttp.ClientError: generic,
    aiohttp.ClientResponseError: _response_error,
    aiohttp.ContentTypeError: _response_error,
    aiohttp.WSServerHandshakeError: _response_error,
    aiohttp.ClientHttpProxyError: _response_error,
    aiohttp.TooManyRedirects: fixed(ErrorCode.GENERIC, "too many redirects"),
    aiohttp.UploadAbortedError: generic,
}

ERROR_RULES: Mapping[type[BaseException], Rule] = MappingProxyType({**errors.ERROR_RULES, **_AIOHTTP_RULES})
"""The shared rules plus one for each exception class aiohttp defines."""

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(ERROR_RULES)
"""What this transport turns into a failed Response. Anything else is a bug and propagates."""


def classify_error(exc: BaseException) -> tuple[int, str]:
    """k6's ``(error_code, error)`` for an exception raised by aiohttp (or the stdlib under it)."""
    return classify_with(ERROR_RULES, exc)


# ---------------------------------------------------------------------------- timings


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


def _response_bytes(resp: aiohttp.ClientResponse, body: int) -> int:
    """``body``: the length of the body as read (decompressed)."""
    n = 17 + len(resp.reason or "")  # "HTTP/1.1 200 OK\r\n" ... "\r\n"
    for k, v in resp.raw_headers:
        n += len(k) + len(v) + 4
    if body and resp.content_length is not None and "Content-Encoding" in resp.headers:
        body = resp.content_length  # aiohttp decompressed it; count what crossed the wire
    return n + body


# ---------------------------------------------------------------------------- the transport


class AiohttpTransport(BaseTransport):
    """One VU's aiohttp session: its own keep-alive pool and cookie jar, as in k6.

    The session is created on the first request, inside the running loop. ``limit_per_host``
    matches k6's ``batchPerHost`` default. ``keepalive_timeout_s`` is aiohttp's default: an
    idle connection is dropped before most servers drop it, so a pooled one is rarely stale.
    ``verify_tls=False`` is k6's ``insecureSkipTLSVerify``.
    """

    def __init__(
        self,
        *,
        limit_per_host: int = 6,
        keepalive_timeout_s: float = 15.0,
        verify_tls: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(max_body_bytes=max_body_bytes)
        self._limit_per_host = limit_per_host
        self._keepalive_timeout_s = keepalive_timeout_s
        self._verify_tls = verify_tls
        self._session: aiohttp.ClientSession | None = None

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
        if "Transfer-Encoding" in headers:  # the framing is aiohttp's to write, as it is Go's
            headers = CIMultiDict(headers)
            headers.popall("Transfer-Encoding", None)
        target = url
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
                    content, n_body = await self._read(resp)
                    done = perf_counter()
                    bytes_sent += _request_bytes(resp, body)
                    bytes_received += _response_bytes(resp, n_body)
                    location = resp.headers.get("Location") if resp.status in REDIRECT_STATUSES else None
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
                    method, target, headers, body = next_hop(
                        resp.status, str(resp.url), resp.url.host, location, method, headers, body
                    )
                    trace = _Trace(perf_counter())
        except asyncio.CancelledError:
            # The VU was stopped mid-request. If the request was written, the server has it:
            # keep it as a failed request so surge's count matches what the server saw.
            if trace.sent:
                sent = bytes_sent + _estimate_request_bytes(method, str(target), headers, body)
                self._interrupt(method, str(target), trace.timings(perf_counter()), sent, bytes_received)
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
                classify=classify_error,
                timings=trace.timings(done),
                bytes_sent=bytes_sent,
                bytes_received=bytes_received,
            )

    async def _read(self, resp: aiohttp.ClientResponse) -> tuple[bytes, int]:
        """The body (``b""`` if bodies are not kept) and its length; at most ``max_body_bytes`` kept."""
        parts: list[bytes] = []
        n = 0
        keep, limit = self.keep_bodies, self.max_body_bytes
        try:
            while chunk := await resp.content.readany():
                n += len(chunk)
                if keep:
                    if n > limit:
                        raise BodyTooLargeError(limit)  # stop reading now: memory stays bounded
                    parts.append(chunk)
        except BaseException:
            resp.close()  # as ClientResponse.read does: a connection cut mid-body is not pooled
            raise
        resp.release()
        return (parts[0] if len(parts) == 1 else b"".join(parts)), n

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            await asyncio.sleep(0)  # let the closed sockets' transports finish on this loop


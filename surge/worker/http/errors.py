"""k6's error codes, and the one way every transport turns an exception into one.

Failures are data
-----------------
A request never raises into user code for a network or HTTP failure. It returns a
Response with ``status == 0``, an ``error`` text and an ``error_code`` from k6's table
(:class:`ErrorCode`). Each transport turns its exceptions into that pair with one table of
rules, keyed by exception class and matched by the nearest listed ancestor
(:func:`classify_with`); this module holds the rules for what every transport meets
(``OSError`` and its errno, DNS, TLS, timeouts, invalid URLs: :data:`ERROR_RULES`), and each
transport extends them with its library's exceptions. A test walks each library's exception
classes to prove that every one has a rule. As in k6, an HTTP status >= 400 is not a failure
of the request: ``status`` is set, ``error`` is empty and ``error_code`` is ``1000 + status``
(k6's 1400-1599 ranges, :func:`status_error_code`). HTTP/2's stream, GOAWAY and connection
errors are k6's 1610-1664 (:func:`http2_error_code`; the fast transport's ``h2errors`` has
the rules). A body longer than the transport's
``max_body_bytes`` fails the request with 1700 (k6's content-error code,
:class:`BodyTooLargeError`). Only programmer errors (wrong argument types, ``json=`` with
``data=``) raise, as ``TypeError``/``ValueError``.

The messages are short and stable: they become the ``error`` tag, so they carry no URL or
port where k6's do not.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import sys
from collections.abc import Callable, Mapping
from enum import IntEnum
from types import MappingProxyType

__all__ = [
    "ERROR_RULES",
    "TRANSPORT_ERRORS",
    "BodyTooLargeError",
    "ErrorCode",
    "InvalidURLError",
    "Rule",
    "cert_error",
    "classify_error",
    "classify_with",
    "dial_error",
    "dns_error",
    "fixed",
    "generic",
    "http2_error_code",
    "http2_error_name",
    "status_error_code",
    "tcp_error",
    "tls_error",
]

class ErrorCode(IntEnum):
    """k6's error codes that this client can produce.

    From k6's ``lib/netext/httpext/error_codes.go`` and the "Error codes" page of its docs.
    Ranges: 1000-1099 general, 1100 DNS, 1200 TCP, 1300 TLS, 1400-1499 and 1500-1599 are
    ``1000 + status`` for 4xx/5xx responses (:func:`status_error_code`), 1600-1699 HTTP/2
    (:func:`http2_error_code`), 1700 content. k6's 1110/1111 (blocked IPs and hostnames) belong to
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
    HTTP2_GOAWAY = 1610
    HTTP2_STREAM = 1630
    HTTP2_CONNECTION = 1650
    CONTENT_GENERIC = 1700
    RESPONSE_DECOMPRESSION = 1701


_HTTP2_ERROR_NAMES = (
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
)


def http2_error_name(h2_code: int) -> str:
    """An HTTP/2 error code's name as Go's ``http2.ErrCode.String`` spells it (k6's messages use it)."""
    if 0 <= h2_code < len(_HTTP2_ERROR_NAMES):
        return _HTTP2_ERROR_NAMES[h2_code]
    return f"unknown error code 0x{h2_code:x}"


def http2_error_code(base: ErrorCode, h2_code: int) -> int:
    """k6's code for an HTTP/2 failure: ``base`` (1610 GOAWAY, 1630 stream, 1650 connection)
    plus ``1 + h2_code`` for the 14 codes RFC 9113 defines, ``base`` itself for any other."""
    return int(base) + (1 + h2_code if 0 <= h2_code < len(_HTTP2_ERROR_NAMES) else 0)


def status_error_code(status: int) -> int:
    """k6's ``error_code`` for a response that arrived: ``1000 + status`` from 400 up, else 0."""
    return 1000 + status if status >= 400 else 0


class InvalidURLError(ValueError):
    """A URL a transport cannot request: not http(s), no host, a bad port (k6's 1020)."""


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
    if isinstance(exc, ConnectionResetError):  # e.g. a TLS handshake the server cut off
        return ErrorCode.TCP_RESET, "connection reset by peer"
    return ErrorCode.TCP_DIAL, f"dial: {str(exc) or type(exc).__name__}"


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
"""What the client (``surge.worker.http.client``) turns into a failed Response if a transport raises it.
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

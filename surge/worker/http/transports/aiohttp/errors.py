"""The aiohttp transport's table of k6 error rules: one for every exception class aiohttp defines.

:data:`ERROR_RULES` is the shared table of ``surge.worker.http.errors`` plus these; a test
walks aiohttp to prove none is missing. aiohttp often wraps the real cause (an ``OSError``,
a decompression error) and chains it: :func:`_unwrap` looks for it, as k6 unwraps Go's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import aiohttp
from aiohttp import client_exceptions, http_exceptions

from surge.worker.http import errors
from surge.worker.http.errors import (
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

__all__ = ["ERROR_RULES", "TRANSPORT_ERRORS", "classify_error"]


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

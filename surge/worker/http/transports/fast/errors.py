"""The fast transport's own exceptions, and its table of k6 error rules.

:data:`ERROR_RULES` is the shared table of ``surge.worker.http.errors`` plus a rule for each
of this transport's exceptions, httptools' and ``zlib.error``; a test walks them to prove
none is missing. Go reports a server that closes without answering as "EOF", a response cut
short as "unexpected EOF", and k6 leaves both at 1000, as it does a malformed response.
HTTP/2's rules (:data:`.h2errors.H2_RULES`) are part of the table too.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from types import MappingProxyType

import httptools

from surge.worker.http import errors
from surge.worker.http.errors import ErrorCode, Rule, classify_with, dial_error, fixed
from surge.worker.http.transports.fast.h2errors import H2_RULES

__all__ = [
    "ERROR_RULES",
    "TRANSPORT_ERRORS",
    "DialError",
    "DialTimeoutError",
    "ServerClosedError",
    "TruncatedResponseError",
    "classify_error",
]

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

ERROR_RULES: Mapping[type[BaseException], Rule] = MappingProxyType({**errors.ERROR_RULES, **_FAST_RULES, **H2_RULES})
"""The shared rules plus one for each exception this transport can meet (HTTP/2's included)."""

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(ERROR_RULES)
"""What this transport turns into a failed Response. Anything else is a bug and propagates."""


def classify_error(exc: BaseException) -> tuple[int, str]:
    """k6's ``(error_code, error)`` for an exception met by this transport."""
    return classify_with(ERROR_RULES, exc)

"""HTTP/2's failures as Go reports them and k6 codes them, for :mod:`.h2conn` and :mod:`.h2stream`.

k6 (``lib/netext/httpext/error_codes.go``) gives each of Go's three HTTP/2 error kinds a
range, the RFC 9113 code added as ``1 + code`` (``surge.worker.http.errors.http2_error_code``):

- RST_STREAM from the server: ``http2: stream error with http2 ErrCode X``, 1630 + 1 + code
  (1633 for INTERNAL_ERROR). REFUSED_STREAM means the server did not process it: the
  request is sent once more (Go retries it), on the same connection.
- GOAWAY: streams above its ``last_stream_id`` were not processed and are sent once more
  on a new connection (Go's ``errClientConnGotGoAway``), except the connection's first
  stream after a GOAWAY with an error code (Go: ``http2: Transport received GOAWAY from
  server ErrCode:X``, which k6 leaves at 1000). Streams at or below it may still complete; if
  the connection ends first they fail with ``http2: received GoAway with http2 ErrCode X``,
  1610 + 1 + code.
- A frame from the server that breaks the protocol (``h2`` raises): ``h2`` answers GOAWAY,
  the connection is closed, and every stream on it fails with ``http2: connection error
  with http2 ErrCode X``, 1650 + 1 + code.
- The connection closed without GOAWAY: ``unexpected EOF`` (1000, Go's); reset: 1220 (the
  shared rules).

What ``h2`` raises on this side (a header it will not frame, no stream id left) is 1000
with its text. ``unprocessed`` on an error says the request may be sent again whatever its
method (RFC 9113 8.7); the fast transport does so once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, cast

import h2.exceptions

from surge.worker.http.errors import ErrorCode, Rule, fixed, generic, http2_error_code, http2_error_name

__all__ = [
    "H2_RULES",
    "ConnectionLostError",
    "FirstStreamGoAwayError",
    "GoAwayError",
    "Http2Error",
    "ProtocolViolationError",
    "RefusedStreamError",
    "StreamResetError",
    "UnprocessedGoAwayError",
]


class Http2Error(Exception):
    """An HTTP/2 failure that carries the peer's (or ``h2``'s) error code.

    ``unprocessed``: the server did not process the request (RFC 9113 8.7), so it may be
    sent again whatever its method.
    """

    base: ClassVar[ErrorCode]
    template: ClassVar[str]
    unprocessed: ClassVar[bool] = False

    def __init__(self, h2_code: int) -> None:
        self.h2_code = int(h2_code)
        super().__init__(self.template % http2_error_name(self.h2_code))

    def k6(self) -> tuple[int, str]:
        """k6's ``(error_code, error)`` for it."""
        return http2_error_code(self.base, self.h2_code), str(self)


class StreamResetError(Http2Error):
    """The server reset the stream (RST_STREAM): Go's ``http2.StreamError``."""

    base = ErrorCode.HTTP2_STREAM
    template = "http2: stream error with http2 ErrCode %s"


class RefusedStreamError(StreamResetError):
    """RST_STREAM with REFUSED_STREAM: not processed, sent again."""

    unprocessed = True


class GoAwayError(Http2Error):
    """The connection ended after a GOAWAY with this stream still open: Go's ``http2.GoAwayError``."""

    base = ErrorCode.HTTP2_GOAWAY
    template = "http2: received GoAway with http2 ErrCode %s"


class UnprocessedGoAwayError(GoAwayError):
    """A GOAWAY whose ``last_stream_id`` is below this stream: not processed, sent again."""

    unprocessed = True


class ProtocolViolationError(Http2Error):
    """The server broke the protocol and the connection was closed: Go's ``http2.ConnectionError``."""

    base = ErrorCode.HTTP2_CONNECTION
    template = "http2: connection error with http2 ErrCode %s"


class FirstStreamGoAwayError(Exception):
    """A GOAWAY with an error code refused the first stream of a connection: Go does not retry
    it (a server that refuses a new connection's first request will refuse the next one)."""

    def __init__(self, h2_code: int) -> None:
        super().__init__(f"http2: Transport received GOAWAY from server ErrCode:{http2_error_name(h2_code)}")


class ConnectionLostError(Exception):
    """The connection ended, without GOAWAY, before the stream's END_STREAM (Go: ``unexpected EOF``)."""


def _http2(exc: BaseException) -> tuple[int, str]:
    return cast(Http2Error, exc).k6()


H2_RULES: Mapping[type[BaseException], Rule] = MappingProxyType(
    {
        Http2Error: _http2,
        StreamResetError: _http2,
        RefusedStreamError: _http2,
        GoAwayError: _http2,
        UnprocessedGoAwayError: _http2,
        ProtocolViolationError: _http2,
        FirstStreamGoAwayError: generic,  # k6 has no code for Go's text: 1000
        ConnectionLostError: fixed(ErrorCode.GENERIC, "unexpected EOF"),
        # What h2 raises on our side: a request it will not frame (a header it refuses), a
        # stream it has no room for. The peer's violations are turned into
        # ProtocolViolationError where they are read, so these are 1000 with h2's text.
        h2.exceptions.H2Error: generic,
        h2.exceptions.ProtocolError: generic,
        h2.exceptions.FrameTooLargeError: generic,
        h2.exceptions.FrameDataMissingError: generic,
        h2.exceptions.TooManyStreamsError: generic,
        h2.exceptions.FlowControlError: generic,
        h2.exceptions.StreamIDTooLowError: generic,
        h2.exceptions.NoAvailableStreamIDError: generic,
        h2.exceptions.NoSuchStreamError: generic,
        h2.exceptions.StreamClosedError: generic,
        h2.exceptions.InvalidSettingsValueError: generic,
        h2.exceptions.InvalidBodyLengthError: generic,
        h2.exceptions.UnsupportedFrameError: generic,
        h2.exceptions.RFC1122Error: generic,
        h2.exceptions.DenialOfServiceError: generic,
    }
)
"""A rule for each exception an HTTP/2 stream can fail with; ``.errors`` adds them to the fast transport's."""

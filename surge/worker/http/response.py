"""What a request produced: k6's ``http.Response`` and its timing breakdown.

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

Each transport's docstring says which events it takes these from (:meth:`Timings.from_stamps`
turns its ``perf_counter`` stamps into the breakdown). Over HTTP/2 the breakdown is per
stream: ``blocked`` ends when the stream is opened on a connection in hand, ``sending`` when
its last frame is written, and only the stream that waited for the dial carries
``connecting`` and ``tls_handshaking``. ``Response.proto`` says which protocol answered
(k6's spelling: ``HTTP/1.1``, ``HTTP/2.0``). A request that fails
part-way is charged up to the failure: a timeout while waiting has ``waiting`` of about the
time spent. A request that never got a connection has zero timings, as in k6. The timeout
covers the whole request, redirects and body included; if it expires while dialling, the
code is k6's dial timeout (1211), otherwise 1050.
"""

from __future__ import annotations

import asyncio
import json as _json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from surge.worker.http.errors import ErrorCode, classify_error

__all__ = ["Response", "Timings", "settle"]


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

    @classmethod
    def from_stamps(
        cls, start: float, got: float, sent: float, first: float, done: float, connecting_s: float, tls_s: float
    ) -> Timings:
        """The breakdown from ``perf_counter`` stamps in seconds (k6's trail, above).

        ``got``: a connection (or HTTP/2 stream) in hand; ``sent``: the request written (0: not
        yet, charged up to ``done``); ``first``: the first byte of the response (0: none yet).
        A request that never got a connection (``got == 0``) has zero timings, as in k6.
        ``connecting_s``/``tls_s`` are the dial's, for the one request that paid for it.
        """
        if not got:
            return cls()
        sent = sent or done
        sending = (sent - got) * 1e3
        if first:
            waiting = max(0.0, first - sent) * 1e3
            receiving = (done - first) * 1e3
        else:
            waiting = max(0.0, done - sent) * 1e3
            receiving = 0.0
        return cls(
            blocked=(got - start) * 1e3,
            connecting=connecting_s * 1e3,
            tls_handshaking=tls_s * 1e3,
            sending=sending,
            waiting=waiting,
            receiving=receiving,
            duration=sending + waiting + receiving,
        )


def settle(waiter: asyncio.Future[None], timer: asyncio.TimerHandle | None, exc: BaseException | None) -> None:
    """End a transport's wait for one exchange: its deadline timer off, and the future given the
    response (``exc is None``) or the failure, unless it is done already (cancelled)."""
    if timer is not None:
        timer.cancel()
    if not waiter.done():
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


_NO_HEADERS: Mapping[str, str] = CIMultiDictProxy(CIMultiDict())


class Response:
    """What a request produced: k6's ``http.Response``.

    ``status == 0`` with ``error``/``error_code`` set means no response arrived. For a
    response that did arrive, ``error_code`` is ``1000 + status`` from 400 up (k6), and
    ``expected`` is whether the status is in 200..399 (k6's default ``expected_response``).
    ``headers`` is a case-insensitive mapping. ``bytes_sent``/``bytes_received`` are the
    wire bytes of this hop (request line, headers and body; status line, headers and body;
    a retry included), for ``data_sent``/``data_received``: exact for the fast transport,
    estimated from the parsed message by the aiohttp one. ``proto`` is the protocol the
    response came by, as k6 spells it: ``"HTTP/1.1"`` (or ``"HTTP/1.0"``), ``"HTTP/2.0"``;
    ``""`` when none came.

    ``hops`` are the redirect responses that led here, first first: k6 counts each hop as a
    request of its own (its own ``http_reqs`` sample, URL, status and timings), and so does
    the client, which reports each of them before this one. A hop keeps no body.
    """

    __slots__ = (
        "body",
        "bytes_received",
        "bytes_sent",
        "error",
        "error_code",
        "expected",
        "headers",
        "hops",
        "method",
        "proto",
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
        hops: tuple[Response, ...] = (),
        proto: str = "",
    ) -> None:
        self.method = method
        self.proto = proto
        self.url = url
        self.status = status
        self.body = body
        self.headers = headers
        self.error = error
        if error_code is None:  # status_error_code, inlined: it runs for every request
            error_code = 1000 + status if status >= 400 else 0
        self.error_code = error_code
        self.timings = timings if timings is not None else Timings()
        self.bytes_sent = bytes_sent
        self.bytes_received = bytes_received
        self.expected = 200 <= status <= 399
        self.hops = hops

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
        hops: tuple[Response, ...] = (),
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
            hops=hops,
        )

    @classmethod
    def interrupted(
        cls,
        method: str,
        url: str,
        *,
        timings: Timings,
        bytes_sent: int,
        bytes_received: int,
        hops: tuple[Response, ...] = (),
    ) -> Response:
        """A request that was written and then cut short by the VU's cancellation.

        The server has it, so the client reports it (failed, 1000, ``"request interrupted"``)
        and surge's count matches what the server saw: see ``Transport.take_interrupted``.
        """
        return cls(
            method,
            url,
            0,
            error="request interrupted",
            error_code=int(ErrorCode.GENERIC),
            timings=timings,
            bytes_sent=bytes_sent,
            bytes_received=bytes_received,
            hops=hops,
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

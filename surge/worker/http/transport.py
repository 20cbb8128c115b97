"""The seam between the client and the bytes: the :class:`Transport` protocol.

Each VU owns one ``HttpClient`` (:mod:`surge.worker.http.client`), and each client owns one
:class:`Transport`: a single ``send`` method that takes a fully prepared request (method,
URL, headers, body bytes, timeout, redirect budget) and returns a Response. The client does
what is the same for every transport (k6's argument handling, base headers, reporting); a
transport does what is specific to its library (connections, cookie jar, redirects,
timing). The VU, the recorder and the unit tests (which use a fake transport) cannot tell
them apart.

:class:`BaseTransport` holds what both real transports share beside ``send``: the body cap,
whether bodies are kept, the fence, and the one slot for the interrupted request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from surge.worker.http.response import Response, Timings

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BaseTransport", "LoadHalted", "Transport"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""The most of one response body a transport keeps in memory (after decompression), 64 MiB.

k6 has no cap (Go reads the body into memory), nor has Locust; but one VU of thousands that
meets an endless or huge body must not take the worker's memory with it, and a load test
that downloads more than this per request measures bandwidth, for which
``discardResponseBodies`` is the tool: with it no body is kept, so none is capped."""


class LoadHalted(Exception):
    """A request refused before it was sent, because this worker may no longer load its target.

    The fence behind the coordinator-loss guard (:mod:`surge.common.wire`): a worker frozen
    (SIGSTOP, a stalled VM) past its silence limit wakes with every VU's timer due at once,
    and its VUs would run before its link's thread could say that the coordinator has gone.
    Checked on the VUs' own thread, before each request (by the client) and before each
    write (by a transport that has a ``fence``), so none goes out.
    """


class Transport(Protocol):
    """Sends one prepared request and returns its Response; never raises for a network failure.

    ``timeout_s`` bounds the whole request (redirects and body included); after
    ``max_redirects`` hops the last redirect response is returned (k6), with the hops before
    it in ``Response.hops``. ``keep_body=False`` is k6's ``responseType: "none"``: the body
    is read and counted, never kept (so never capped). A transport may still raise one of
    ``errors.TRANSPORT_ERRORS``; the client turns it into a failed Response.
    """

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_redirects: int,
        keep_body: bool = True,
    ) -> Response: ...

    async def close(self) -> None: ...

    def take_interrupted(self) -> Response | None:
        """The request a cancellation just cut short, if it had reached the wire (else None).

        When ``send`` is cancelled after the request was written, the server has it: the
        transport keeps it as a failed Response (``"request interrupted"``, 1000) for the
        client to report, so that surge's count matches what the server saw.
        """
        ...


class BaseTransport:
    """What both real transports share: the body cap, ``fence``, the interrupted slot.

    ``max_body_bytes`` bounds one kept body (:data:`DEFAULT_MAX_BODY_BYTES`); the client sets
    ``fence`` to its ``may_send`` (asked right before every write of a request, retries and
    redirect hops included: False means :class:`LoadHalted`).
    """

    def __init__(self, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be >= 0, got {max_body_bytes!r}")
        self.max_body_bytes = max_body_bytes
        self.fence: Callable[[], bool] | None = None
        self._interrupted: Response | None = None

    def take_interrupted(self) -> Response | None:
        resp, self._interrupted = self._interrupted, None
        return resp

    def _interrupt(
        self, method: str, url: str, timings: Timings, bytes_sent: int, bytes_received: int, hops: tuple[Response, ...]
    ) -> None:
        """Keep the request the VU's cancellation cut short after it was written (see ``take_interrupted``)."""
        self._interrupted = Response.interrupted(
            method, url, timings=timings, bytes_sent=bytes_sent, bytes_received=bytes_received, hops=hops
        )

"""The aiohttp transport itself: one aiohttp session per VU, its pool, jar and redirects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from time import perf_counter

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from surge.common.http_options import HttpOptions
from surge.worker.http.dns import Resolver
from surge.worker.http.errors import BodyTooLargeError
from surge.worker.http.redirects import REDIRECT_STATUSES, next_hop
from surge.worker.http.response import Response
from surge.worker.http.tls import client_context
from surge.worker.http.transport import DEFAULT_MAX_BODY_BYTES, BaseTransport
from surge.worker.http.transports.aiohttp.errors import TRANSPORT_ERRORS, classify_error
from surge.worker.http.transports.aiohttp.trace import (
    Body,
    Trace,
    estimate_request_bytes,
    request_bytes,
    response_bytes,
    trace_config,
)

__all__ = ["AiohttpTransport"]


class _Resolve(AbstractResolver):
    """aiohttp's resolver seam over surge's :class:`~surge.worker.http.dns.Resolver` (k6's hosts and dns)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        ip, port = await self._resolver.resolve(host, port)
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass  # the resolver is the worker's, shared by every VU


# ---------------------------------------------------------------------------- the transport


class AiohttpTransport(BaseTransport):
    """One VU's aiohttp session: its own keep-alive pool and cookie jar, as in k6.

    The session is created on the first request, inside the running loop. ``limit_per_host``
    matches k6's ``batchPerHost`` default (and is ``options.batch_per_host`` when given).
    ``keepalive_timeout_s`` is aiohttp's default: an idle connection is dropped before most
    servers drop it, so a pooled one is rarely stale. ``options`` and ``resolver`` are as for
    the fast transport: ``insecureSkipTLSVerify`` (also ``verify_tls=False``), ``tlsVersion``,
    and k6's ``hosts`` and ``dns`` through :class:`_Resolve` (aiohttp's own DNS cache is off).
    With ``batchPerHost: 0`` it keeps every idle connection (aiohttp has no idle bound apart
    from the per-host limit), where Go keeps 2. As Go under k6, it sends no header it was not given but ``Host`` and the framing: no
    ``Accept``, no ``Accept-Encoding`` (k6 turns Go's compression off), no ``User-Agent`` of its
    own.
    """

    def __init__(
        self,
        *,
        limit_per_host: int = 6,
        keepalive_timeout_s: float = 15.0,
        verify_tls: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        options: HttpOptions | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__(max_body_bytes=max_body_bytes)
        if options is not None:
            verify_tls = verify_tls and not options.insecure_skip_tls_verify
            limit_per_host = options.batch_per_host
        # aiohttp pools a connection whatever the request's "Connection: close" said (the client
        # sends it for noConnectionReuse, as Go does): it must be told to close them itself.
        self._force_close = options is not None and options.no_connection_reuse
        self._limit_per_host = limit_per_host
        self._keepalive_timeout_s = keepalive_timeout_s
        self._ssl = client_context(verify_tls, options.tls_min if options else None, options.tls_max if options else None)
        self._resolver = resolver if resolver is not None else Resolver()
        self._session: aiohttp.ClientSession | None = None
        self._jar: aiohttp.CookieJar | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._limit_per_host,
            keepalive_timeout=None if self._force_close else self._keepalive_timeout_s,
            force_close=self._force_close,
            ssl=self._ssl,
            resolver=_Resolve(self._resolver),
            use_dns_cache=False,  # the resolver caches, by k6's dns.ttl
        )
        if self._jar is None:
            self._jar = aiohttp.CookieJar(unsafe=True)  # so that cookies from 127.0.0.1 are kept
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=self._jar,
            trace_configs=[trace_config()],
            timeout=aiohttp.ClientTimeout(),  # no aiohttp timeouts: send() bounds the whole request
            # Go sends no Content-Type unless told, and under k6 no Accept-Encoding; nor Accept.
            skip_auto_headers=("Content-Type", "Accept", "Accept-Encoding", "User-Agent"),
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
        keep_body: bool = True,
    ) -> Response:
        session = self._session if self._session is not None else self._open()
        if "Transfer-Encoding" in headers:  # the framing is aiohttp's to write, as it is Go's
            headers = CIMultiDict(headers)
            headers.popall("Transfer-Encoding", None)
        target = url
        trace = Trace(perf_counter())
        redirects = bytes_sent = bytes_received = 0  # the bytes of this hop
        hops: list[Response] = []  # the redirects before this hop, each its own request
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    resp = await session.request(
                        method,
                        target,
                        headers=headers,
                        data=None if body is None else Body(body, trace),
                        allow_redirects=False,
                        trace_request_ctx=trace,
                    )
                    trace.head = perf_counter()
                    content, n_body = await self._read(resp, keep_body)
                    done = perf_counter()
                    bytes_sent += request_bytes(resp, body)
                    bytes_received += response_bytes(resp, n_body)
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
                            hops=tuple(hops),
                            proto=_proto(resp.version),
                        )
                    hops.append(Response(method, str(resp.url), resp.status, headers=resp.headers,
                                         timings=trace.timings(done), bytes_sent=bytes_sent,
                                         bytes_received=bytes_received, proto=_proto(resp.version)))  # fmt: skip
                    bytes_sent = bytes_received = 0
                    redirects += 1
                    method, target, headers, body = next_hop(
                        resp.status, str(resp.url), resp.url.host, location, method, headers, body
                    )
                    trace = Trace(perf_counter())
        except asyncio.CancelledError:
            # The VU was stopped mid-request. If the request was written, the server has it:
            # keep it as a failed request so surge's count matches what the server saw.
            if trace.sent:
                sent = bytes_sent + estimate_request_bytes(method, str(target), headers, body)
                self._interrupt(method, str(target), trace.timings(perf_counter()), sent, bytes_received, tuple(hops))
            raise
        except TRANSPORT_ERRORS as exc:
            done = perf_counter()
            failure: BaseException = exc
            if isinstance(exc, TimeoutError) and trace.dialling():
                failure = aiohttp.ConnectionTimeoutError(f"dial timeout to {target}")
            if trace.sent:
                bytes_sent += estimate_request_bytes(method, str(target), headers, body)
            return Response.failed(
                method,
                str(target),
                failure,
                classify=classify_error,
                timings=trace.timings(done),
                bytes_sent=bytes_sent,
                bytes_received=bytes_received,
                hops=tuple(hops),
            )

    async def _read(self, resp: aiohttp.ClientResponse, keep: bool) -> tuple[bytes, int]:
        """The body (``b""`` if not ``keep``) and its length; at most ``max_body_bytes`` kept."""
        parts: list[bytes] = []
        n = 0
        limit = self.max_body_bytes
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

    async def close_idle(self) -> None:
        """Close the pooled connections (k6's ``noVUConnectionReuse``), keeping the cookie jar.

        aiohttp has no call for closing only the idle ones, so the session goes and the next
        request opens another with the same jar: at an iteration's start, when this is
        called, a VU has nothing in flight.
        """
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            await asyncio.sleep(0)  # let the closed sockets' transports finish on this loop


def _proto(version: aiohttp.HttpVersion | None) -> str:
    """k6's ``proto`` for what aiohttp read (it speaks HTTP/1.x only)."""
    return "HTTP/1.1" if version is None else f"HTTP/{version.major}.{version.minor}"

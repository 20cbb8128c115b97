"""What aiohttp does not tell: a hop's timings from its trace signals, and the bytes on the wire.

See the package docstring for which signal ends which figure. ``bytes_sent`` and
``bytes_received`` are estimated from the request and the parsed response (aiohttp does
not count wire bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from time import perf_counter
from types import SimpleNamespace

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from surge.worker.http.response import Timings

__all__ = ["Body", "Trace", "estimate_request_bytes", "request_bytes", "response_bytes", "trace_config"]


class Trace:
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


# aiohttp calls these with (session, SimpleNamespace(trace_request_ctx=<our Trace>), params).
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


def trace_config() -> aiohttp.TraceConfig:
    tc = aiohttp.TraceConfig()
    tc.on_connection_create_start.append(_on_create_start)
    tc.on_dns_resolvehost_end.append(_on_dns_end)
    tc.on_connection_create_end.append(_on_create_end)
    tc.on_connection_reuseconn.append(_on_reuse)
    tc.on_request_headers_sent.append(_on_sent)
    return tc


class Body(Payload):
    """A request body that stamps the end of sending once aiohttp has written (and drained) it.

    It stands in for the ``BytesPayload`` aiohttp would make from the bytes (so it costs no
    extra object), without that class's warning about bodies over 1 MiB.
    """

    _autoclose = True
    _value: bytes

    def __init__(self, value: bytes, trace: Trace) -> None:
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


def request_bytes(resp: aiohttp.ClientResponse, body: bytes | None) -> int:
    info = resp.request_info
    n = len(info.method) + len(info.url.raw_path_qs) + 14  # "M /p HTTP/1.1\r\n" ... "\r\n"
    for k, v in info.headers.items():
        n += len(k) + len(v) + 4
    return n + (len(body) if body else 0)


def estimate_request_bytes(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> int:
    n = len(method) + len(url) + 14
    for k, v in headers.items():
        n += len(k) + len(v) + 4
    return n + (len(body) if body else 0)


def response_bytes(resp: aiohttp.ClientResponse, body: int) -> int:
    """``body``: the length of the body as read (decompressed)."""
    n = 17 + len(resp.reason or "")  # "HTTP/1.1 200 OK\r\n" ... "\r\n"
    for k, v in resp.raw_headers:
        n += len(k) + len(v) + 4
    if body and resp.content_length is not None and "Content-Encoding" in resp.headers:
        body = resp.content_length  # aiohttp decompressed it; count what crossed the wire
    return n + body

"""What the HTTP layer's tests share: a fake transport, a real aiohttp server on 127.0.0.1, raw
scripted servers for the fast transport's framing cases, and small checks.

pytest-asyncio is not used: each test runs one coroutine with ``asyncio.run``. No assertion
bounds wall-clock time from above.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvloop
from aiohttp import web

from surge.worker.http import HttpClient, Response, Timings
from surge.worker.http.transports import make_transport

T = TypeVar("T")

# ---------------------------------------------------------------------------- helpers


class Reports:
    """An ``on_response`` that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Response, Mapping[str, str] | None]] = []

    def __call__(self, resp: Response, tags: Mapping[str, str] | None) -> None:
        self.calls.append((resp, tags))


class FakeTransport:
    """Records what the client asked for and answers with a canned Response (or raises)."""

    def __init__(self, answer: Response | BaseException | None = None) -> None:
        self.answer = answer
        self.sent: list[tuple[str, str, Mapping[str, str], bytes | None, float, int]] = []
        self.kept: list[bool] = []  # each request's keep_body
        self.closed = False

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
        self.sent.append((method, url, headers, body, timeout_s, max_redirects))
        self.kept.append(keep_body)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer if self.answer is not None else Response(method, url, 200, body=b"ok")

    async def close(self) -> None:
        self.closed = True

    def take_interrupted(self) -> Response | None:
        return None


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def fake_client(
    answer: Response | BaseException | None = None, **kwargs: Any
) -> tuple[HttpClient, FakeTransport, Reports]:
    transport = FakeTransport(answer)
    reports = Reports()
    return HttpClient(on_response=reports, transport=transport, **kwargs), transport, reports


# ---------------------------------------------------------------------------- a real server on 127.0.0.1


async def _echo_json(request: web.Request) -> web.Response:
    return web.json_response({"got": await request.json(), "ct": request.content_type}, headers={"X-Echo": "yes"})


async def _form(request: web.Request) -> web.Response:
    return web.json_response(dict(await request.post()))


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["n"]), text="status")


async def _sleep(request: web.Request) -> web.Response:
    await asyncio.sleep(1.0)
    return web.Response(text="late")


HOLDING = web.AppKey("holding", asyncio.Event)


async def _hold(request: web.Request) -> web.Response:
    request.app[HOLDING].set()  # the request has arrived
    await asyncio.sleep(5.0)
    return web.Response(text="late")


async def _reset(request: web.Request) -> web.Response:
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    transport.abort()
    return web.Response()


async def _redirect(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    if n == 0:
        return web.Response(text="landed")
    raise web.HTTPFound(f"/redirect/{n - 1}")


async def _see_other(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/method")


async def _method(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"method": request.method, "body": len(body), "ct": request.headers.get("Content-Type")})


async def _set_cookie(request: web.Request) -> web.Response:
    resp = web.Response(text="set")
    resp.set_cookie("sid", request.query.get("v", "abc"))
    return resp


async def _cookie(request: web.Request) -> web.Response:
    return web.Response(text=request.cookies.get("sid", ""))


async def _peer(request: web.Request) -> web.Response:
    transport = request.transport
    assert transport is not None
    return web.Response(text=str(transport.get_extra_info("peername")[1]))


async def _bytes(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b"x" * int(request.match_info["n"]))


@asynccontextmanager
async def serving() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/json", _echo_json)
    app.router.add_post("/form", _form)
    app.router.add_get("/status/{n}", _status)
    app.router.add_get("/sleep", _sleep)
    app.router.add_get("/hold", _hold)
    app[HOLDING] = asyncio.Event()
    app.router.add_get("/reset", _reset)
    app.router.add_get("/redirect/{n}", _redirect)
    app.router.add_post("/see-other", _see_other)
    app.router.add_route("*", "/method", _method)
    app.router.add_get("/set-cookie", _set_cookie)
    app.router.add_get("/cookie", _cookie)
    app.router.add_get("/peer", _peer)
    app.router.add_route("*", "/bytes/{n}", _bytes)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    _apps[f"http://127.0.0.1:{port}"] = app
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


_apps: dict[str, web.Application] = {}


def client_with(
    transport: str, reports: Callable[[Response, Mapping[str, str] | None], None], **kwargs: Any
) -> HttpClient:
    return HttpClient(on_response=reports, transport=make_transport(transport), **kwargs)


def with_server(
    test: Callable[[str, HttpClient, Reports], Awaitable[None]], *, transport: str, loop: str = "asyncio"
) -> Reports:
    reports = Reports()

    async def main() -> None:
        async with serving() as base, client_with(transport, reports) as client:
            await test(base, client, reports)

    if loop == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())
    return reports


def assert_timings_add_up(t: Timings) -> None:
    for name in ("blocked", "connecting", "tls_handshaking", "sending", "waiting", "receiving", "duration"):
        assert getattr(t, name) >= 0.0, name
    assert math.isclose(t.duration, t.sending + t.waiting + t.receiving, rel_tol=1e-9, abs_tol=1e-9)


# ---------------------------------------------------------------------------- the fast transport's own cases
#
# A raw asyncio server on 127.0.0.1 answers each request with scripted bytes, so that every
# framing case (chunked, HEAD, 204, 304, 1xx, HTTP/1.0, Connection: close, a connection closed
# under the client, garbage) is exact, and so are the bytes each side saw.

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CLOSE = b""  # with close=True: drop the connection without answering

Answer = Callable[[int, bytes], tuple[bytes, bool]]
"""``(index of the request, over all connections; its bytes) -> (reply bytes, close after it)``."""


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's bytes (head, and the body its Content-Length announces), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


class RawServer:
    """What a scripted server saw: each request's bytes, each reply's bytes, each request's peer port."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.replies: list[bytes] = []
        self.peers: list[int] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed_by_server = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        peer = writer.get_extra_info("peername")[1]
        try:
            while (request := await read_request(reader)) is not None:
                n = len(self.requests)
                self.requests.append(request)
                self.peers.append(peer)
                data, close = self.answer(n, request)
                self.replies.append(data)
                writer.write(data)
                await writer.drain()
                if close:
                    self.closed_by_server.set()
                    break
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[tuple[str, RawServer]]:
    raw = RawServer(answer)
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", raw
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*raw.tasks, return_exceptions=True), 5)


def with_raw_server(
    answer: Answer, test: Callable[[str, RawServer, HttpClient], Awaitable[T]], *, loop: str = "uvloop"
) -> T:
    async def main() -> T:
        async with raw_server(answer) as (base, raw), client_with("fast", Reports()) as client:
            return await test(base, raw, client)

    return uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())


def script(*replies: bytes | tuple[bytes, bool]) -> Answer:
    """Answer the n-th request with the n-th reply (``(bytes, close)``, or bytes kept alive)."""

    def answer(n: int, _request: bytes) -> tuple[bytes, bool]:
        reply = replies[n]
        return reply if isinstance(reply, tuple) else (reply, False)

    return answer


@asynccontextmanager
async def serving_tls(
    cert_file: str, key_file: str, *, max_version: ssl.TLSVersion | None = None
) -> AsyncIterator[str]:
    """An aiohttp server on 127.0.0.1 over TLS with the given certificate (``/peer``: the client's port)."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    if max_version is not None:
        server_ctx.maximum_version = max_version
    app = web.Application()
    app.router.add_get("/peer", _peer)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()

"""HTTP/2 in the fast transport, against real servers on 127.0.0.1 over TLS.

Two servers: hypercorn (a real ASGI server that speaks h2 and HTTP/1.1 by ALPN) for what a
well-behaved server does, and a scripted one built on the ``h2`` library on a real socket
for what a server may do wrong or abruptly (RST_STREAM, GOAWAY, protocol violations, a
stream limit, a response that never comes). Certificates come from ``trustme``: a CA the
client trusts and a leaf for 127.0.0.1.

pytest-asyncio is not used: each test runs one coroutine with ``asyncio.run`` or
``uvloop.run`` (the worker's loop). No assertion bounds wall-clock time.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
import uvloop
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame, SettingsFrame

from surge.common.http_options import HttpOptions
from surge.worker.http import ErrorCode, HttpClient, Response
from surge.worker.http.errors import http2_error_code, http2_error_name
from surge.worker.http.transports.fast import ERROR_RULES as FAST_ERROR_RULES
from surge.worker.http.transports.fast import FastTransport
from surge.worker.http.transports import make_transport
from surge.worker.http.transports.fast.h2stream import request_fields

trustme = pytest.importorskip("trustme")
hypercorn_asyncio = pytest.importorskip("hypercorn.asyncio")
hypercorn_config = pytest.importorskip("hypercorn.config")

T = TypeVar("T")
LOOPS = ["asyncio", "uvloop"]


def run_on(loop: str, main: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await main()

    return uvloop.run(go()) if loop == "uvloop" else asyncio.run(go())


def ignore(_resp: Response, _tags: Mapping[str, str] | None) -> None:
    pass


@dataclass
class Tls:
    ca: Any  # trustme.CA
    cert_file: str  # the leaf's key and chain, PEM (what hypercorn loads)
    ca_file: str

    def client(self, no_connection_reuse: bool = False, **kwargs: Any) -> HttpClient:
        """A VU's client that trusts this CA."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        transport = FastTransport(ssl_context=context, **kwargs)
        return HttpClient(on_response=ignore, transport=transport, no_connection_reuse=no_connection_reuse)

    def server_context(self, alpn: list[str]) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file)
        context.set_alpn_protocols(alpn)
        return context


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("h2tls")
    cert_file, ca_file = folder / "server.pem", folder / "ca.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca, str(cert_file), str(ca_file))


def assert_timings_add_up(resp: Response) -> None:
    t = resp.timings
    assert t.duration == pytest.approx(t.sending + t.waiting + t.receiving)
    assert t.blocked >= t.connecting + t.tls_handshaking
    assert min(t.blocked, t.connecting, t.tls_handshaking, t.sending, t.waiting, t.receiving) >= 0


# ---------------------------------------------------------------------------- hypercorn


@dataclass
class Seen:
    """What the ASGI app saw: one entry per request."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # what /gated waits for

    def connections(self) -> set[tuple[str, int]]:
        return {r["client"] for r in self.requests}


def _pattern(n: int) -> bytes:
    """``n`` bytes whose order matters (a shuffled or dropped frame changes the digest)."""
    block = bytes(range(251))  # a prime length: frame boundaries never line up with it
    return (block * (n // len(block) + 1))[:n]


def asgi_app(seen: Seen) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        client = tuple(scope["client"])
        seen.requests.append({"version": scope["http_version"], "client": client, "path": scope["path"]})
        status, out_headers = 200, [(b"content-type", b"application/json")]
        path = scope["path"]
        if path == "/gated":
            await seen.gate.wait()
        if path.startswith("/bytes/"):
            out = _pattern(int(path.rsplit("/", 1)[1]))
        elif path == "/login":
            status = 302
            out_headers = [(b"location", b"/me"), (b"set-cookie", b"session=abc; Path=/")]
            out = b""
        else:
            out = json.dumps(
                {
                    "version": scope["http_version"],
                    "method": scope["method"],
                    "path": path,
                    "cookie": headers.get("cookie"),
                    "n": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "json": json.loads(body) if headers.get("content-type") == "application/json" else None,
                }
            ).encode()
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": out})

    return app


@asynccontextmanager
async def hypercorn_server(tls: Tls, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> AsyncIterator[tuple[str, Seen]]:
    """hypercorn on 127.0.0.1 (a port of its own), on this loop; yields its base URL."""
    seen = Seen()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    config = hypercorn_config.Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
    config.certfile = config.keyfile = tls.cert_file  # one PEM holds the key and the chain
    config.alpn_protocols = list(alpn)
    config.errorlog = None
    config.graceful_timeout = 0
    stop = asyncio.Event()
    serving = asyncio.ensure_future(hypercorn_asyncio.serve(asgi_app(seen), config, shutdown_trigger=stop.wait))
    try:
        yield f"https://127.0.0.1:{port}", seen
    finally:
        stop.set()
        await serving


@pytest.mark.parametrize("loop", LOOPS)
def test_get_and_post_speak_http2_with_the_timing_breakdown(tls: Tls, loop: str) -> None:
    async def main() -> tuple[list[Response], Seen]:
        async with hypercorn_server(tls) as (base, seen), tls.client() as client:
            first = await client.get(f"{base}/hello?x=1")
            second = await client.post(f"{base}/buy", json={"tickets": 2, "who": "ü"})
            return [first, second], seen

    (first, second), seen = run_on(loop, main)
    assert [r.status for r in (first, second)] == [200, 200]
    assert first.proto == second.proto == "HTTP/2.0"
    assert [r["version"] for r in seen.requests] == ["2", "2"]
    assert first.json()["path"] == "/hello" and first.json()["method"] == "GET"
    assert second.json()["json"] == {"tickets": 2, "who": "ü"}
    assert first.headers["Content-Type"] == "application/json"
    # The first stream waited for the dial and carries it; the second reused the connection.
    assert first.timings.connecting > 0 and first.timings.tls_handshaking > 0
    assert second.timings.connecting == second.timings.tls_handshaking == 0
    for resp in (first, second):
        assert_timings_add_up(resp)
        assert resp.bytes_sent > 0 and resp.bytes_received > len(resp.body or b"")
    assert second.bytes_sent > len(b'{"tickets":2,"who":"\xc3\xbc"}')
    assert len(seen.connections()) == 1


def test_concurrent_requests_are_streams_on_one_connection(tls: Tls) -> None:
    async def main() -> tuple[list[Response], list[Response], Seen, int, int]:
        async with hypercorn_server(tls) as (base, seen):
            async with tls.client() as cold:
                # From cold: every request dials, the first h2 connection up serves them all.
                from_cold = await asyncio.gather(*[cold.get(f"{base}/cold/{i}") for i in range(4)])
            async with tls.client() as warm:
                await warm.get(f"{base}/warm-up")
                n_before = len(seen.requests)
                warm_ones = await asyncio.gather(*[warm.get(f"{base}/warm/{i}") for i in range(8)])
                pooled = len(warm._transport._conns)  # type: ignore[attr-defined]
            return list(from_cold), list(warm_ones), seen, pooled, n_before

    from_cold, warm, seen, pooled, n_before = uvloop.run(main())
    assert all(r.status == 200 and r.proto == "HTTP/2.0" for r in from_cold + warm)
    cold_clients = {r["client"] for r in seen.requests if r["path"].startswith("/cold/")}
    warm_clients = {r["client"] for r in seen.requests[n_before - 1 :]}  # the warm-up and the 8
    assert len(cold_clients) == 1
    assert len(warm_clients) == 1
    assert pooled == 1


@pytest.mark.parametrize("loop", LOOPS)
def test_large_bodies_both_ways_pass_the_flow_control_windows(tls: Tls, loop: str) -> None:
    upload = _pattern(1 << 20)  # 16 times hypercorn's 64 KiB window: WINDOW_UPDATE from the server
    download = 6 << 20  # past the client's 4 MiB stream window: WINDOW_UPDATE from the client

    async def main() -> tuple[Response, Response]:
        async with hypercorn_server(tls) as (base, _seen), tls.client() as client:
            up = await client.post(f"{base}/upload", data=upload, timeout=30)
            down = await client.get(f"{base}/bytes/{download}", timeout=30)
            return up, down

    up, down = run_on(loop, main)
    assert (up.status, up.proto) == (200, "HTTP/2.0")
    assert up.json()["n"] == len(upload)
    assert up.json()["sha256"] == hashlib.sha256(upload).hexdigest()
    assert up.bytes_sent > len(upload)
    assert down.status == 200 and down.body == _pattern(download)
    assert down.bytes_received > download


def test_cookies_and_redirects_over_http2(tls: Tls) -> None:
    async def main() -> Response:
        async with hypercorn_server(tls) as (base, _seen), tls.client() as client:
            return await client.get(f"{base}/login")

    resp = uvloop.run(main())
    assert (resp.status, resp.proto) == (200, "HTTP/2.0")
    assert [(hop.status, hop.proto) for hop in resp.hops] == [(302, "HTTP/2.0")]
    assert resp.url.endswith("/me")
    assert resp.json()["cookie"] == "session=abc"


def test_falls_back_to_http11_when_the_server_does_not_pick_h2(tls: Tls) -> None:
    async def main() -> tuple[Response, Response, Seen, Seen]:
        async with hypercorn_server(tls, alpn=("http/1.1",)) as (base, seen1), tls.client() as client:
            old = await client.get(f"{base}/old")
        async with hypercorn_server(tls) as (base, seen2), tls.client(http2=False) as client:
            off = await client.get(f"{base}/off")
        return old, off, seen1, seen2

    old, off, seen1, seen2 = uvloop.run(main())
    assert (old.status, old.proto, off.status, off.proto) == (200, "HTTP/1.1", 200, "HTTP/1.1")
    assert [r["version"] for r in seen1.requests + seen2.requests] == ["1.1", "1.1"]


# ---------------------------------------------------------------------------- k6's HTTP options over HTTP/2


def _negotiated(client: HttpClient) -> list[tuple[str, str | None]]:
    """Each pooled connection's protocol and TLS version, as the fast transport holds them."""
    conns = client._transport._conns.values()  # type: ignore[attr-defined]
    return [(type(c).__name__, c.transport.get_extra_info("ssl_object").version()) for c in conns]


def test_insecure_skip_tls_verify_and_tls_version_reach_http2_and_aiohttp_is_offered_no_h2(tls: Tls) -> None:
    # The server's certificate is from a CA no client here trusts: only insecureSkipTLSVerify
    # gets through. Both transports' contexts for it are cached per process; the fast one's
    # offers h2, the aiohttp one's must not (aiohttp cannot speak the h2 the server would pick).
    insecure = HttpOptions(insecure_skip_tls_verify=True)

    async def main() -> tuple[list[Response], list[list[tuple[str, str | None]]], Seen]:
        out: list[Response] = []
        negotiated = []
        async with hypercorn_server(tls) as (base, seen):
            for name, options in [
                ("fast", HttpOptions()),
                ("fast", insecure),
                ("aiohttp", insecure),
                ("fast", replace(insecure, tls_max="tls1.2")),
                ("fast", replace(insecure, tls_min="tls1.3")),
            ]:
                async with HttpClient(on_response=ignore, transport=make_transport(name, options)) as client:
                    out.append(await client.get(f"{base}/{name}"))
                    if name == "fast":
                        negotiated.append(_negotiated(client))
        return out, negotiated, seen

    (refused, fast, aio, tls12, tls13), negotiated, seen = uvloop.run(main())
    assert (refused.status, refused.error_code) == (0, ErrorCode.TLS_UNKNOWN_AUTHORITY)
    assert [(r.status, r.proto) for r in (fast, aio, tls12, tls13)] == [
        (200, "HTTP/2.0"),
        (200, "HTTP/1.1"),
        (200, "HTTP/2.0"),
        (200, "HTTP/2.0"),
    ]
    assert [r["version"] for r in seen.requests] == ["2", "1.1", "2", "2"]
    assert negotiated[2:] == [[("H2Connection", "TLSv1.2")], [("H2Connection", "TLSv1.3")]]


def test_response_type_none_counts_an_http2_body_and_keeps_none_for_that_request_only(tls: Tls) -> None:
    async def main() -> tuple[Response, Response]:
        async with hypercorn_server(tls) as (base, _seen), tls.client() as client:
            return (
                await client.get(f"{base}/bytes/100000", response_type="none"),
                await client.get(f"{base}/bytes/100000"),
            )

    dropped, kept = uvloop.run(main())
    assert (dropped.status, dropped.proto, dropped.body) == (200, "HTTP/2.0", None)
    assert dropped.bytes_received > 100000
    assert kept.body == _pattern(100000)


def test_no_connection_reuse_opens_an_http2_connection_per_request(tls: Tls) -> None:
    async def main() -> tuple[list[Response], Seen, int]:
        async with hypercorn_server(tls) as (base, seen), tls.client(no_connection_reuse=True) as client:
            out = [await client.get(f"{base}/n/{i}") for i in range(3)]
            return out, seen, len(client._transport._conns)  # type: ignore[attr-defined]

    out, seen, pooled = uvloop.run(main())
    assert [(r.status, r.proto) for r in out] == [(200, "HTTP/2.0")] * 3
    assert [r["version"] for r in seen.requests] == ["2"] * 3
    assert len(seen.connections()) == 3
    assert pooled == 0


def test_close_idle_closes_an_http2_connection_only_when_no_stream_is_open(tls: Tls) -> None:
    async def main() -> tuple[Response, list[Response], Seen]:
        async with hypercorn_server(tls) as (base, seen), tls.client() as client:
            await client.get(f"{base}/first")
            gated = asyncio.ensure_future(client.get(f"{base}/gated"))
            for _ in range(200):  # until the server holds the stream
                if any(r["path"] == "/gated" for r in seen.requests):
                    break
                await asyncio.sleep(0.01)
            await client.close_idle()  # a stream is open: the connection stays
            seen.gate.set()
            held = await asyncio.wait_for(gated, 10)  # a bound, not a tolerance: a lost stream never ends
            after = [await client.get(f"{base}/same")]
            await client.close_idle()  # now idle: closed, and the next request dials
            after.append(await client.get(f"{base}/new"))
            return held, after, seen

    held, (same, new), seen = uvloop.run(main())
    assert [(r.status, r.proto) for r in (held, same, new)] == [(200, "HTTP/2.0")] * 3
    by_path = {r["path"]: r["client"] for r in seen.requests}
    assert by_path["/first"] == by_path["/gated"] == by_path["/same"] != by_path["/new"]


# ---------------------------------------------------------------------------- a scripted h2 server


class ServerConn(asyncio.Protocol):
    """One connection of :class:`ScriptedServer`: ``h2`` on the server side, the script decides."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.index = len(server.conns)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.transport: asyncio.Transport | None = None
        self.paths: dict[int, str] = {}
        self.bodies: dict[int, bytes] = {}
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.conns.append(self)
        if self.server.max_streams is not None:
            self.h2.local_settings = h2.settings.Settings(
                client=False,
                initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams},
            )
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.paths[event.stream_id] = dict(event.headers)[b":path"].decode()
                self.bodies[event.stream_id] = b""
            elif isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                self.bodies[event.stream_id] += event.data
            elif isinstance(event, h2.events.StreamEnded):
                self.server.requests.append((self.index, event.stream_id, self.paths[event.stream_id]))
                self.server.script(self, event.stream_id, self.paths[event.stream_id])
            elif isinstance(event, h2.events.StreamReset):
                self.server.resets.append((self.index, event.stream_id, int(event.error_code or 0)))
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def flush(self) -> None:
        out = self.h2.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    # what a script does
    def respond(self, stream_id: int, body: bytes = b"ok", status: int = 200) -> None:
        headers = [(b":status", str(status).encode()), (b"content-length", str(len(body)).encode())]
        self.h2.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.h2.send_data(stream_id, body, end_stream=True)
        self.flush()

    def reset(self, stream_id: int, code: int) -> None:
        self.h2.reset_stream(stream_id, code)
        self.flush()

    def go_away(self, code: int, last_stream_id: int) -> None:
        self.h2.close_connection(code, last_stream_id=last_stream_id)
        self.flush()

    def write_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


Script = Callable[[ServerConn, int, str], None]


@dataclass
class ScriptedServer:
    script: Script
    max_streams: int | None = None
    conns: list[ServerConn] = field(default_factory=list)
    requests: list[tuple[int, int, str]] = field(default_factory=list)  # (connection, stream, path)
    resets: list[tuple[int, int, int]] = field(default_factory=list)  # (connection, stream, code)


@asynccontextmanager
async def scripted_server(
    tls: Tls, script: Script, max_streams: int | None = None
) -> AsyncIterator[tuple[str, ScriptedServer]]:
    state = ScriptedServer(script, max_streams)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ServerConn(state), "127.0.0.1", 0, ssl=tls.server_context(["h2"]))
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}", state
    finally:
        server.close()
        for conn in state.conns:
            if conn.transport is not None:
                conn.transport.abort()
        await server.wait_closed()


def by_path(**actions: Callable[[ServerConn, int], None]) -> Script:
    """A script that looks up what to do by the request's first path segment (else: 200 ok)."""

    def script(conn: ServerConn, stream_id: int, path: str) -> None:
        action = actions.get(path.strip("/").split("/")[0])
        if action is None:
            conn.respond(stream_id)
        else:
            action(conn, stream_id)

    return script


def _run_scripted(
    tls: Tls, script: Script, paths: list[str], *, max_streams: int | None = None, **kw: Any
) -> tuple[list[Response], ScriptedServer]:
    """Requests sent one after another by one VU's client; what came back and what the server saw."""

    async def main() -> tuple[list[Response], ScriptedServer]:
        async with scripted_server(tls, script, max_streams) as (base, state), tls.client() as client:
            out = []
            for path in paths:
                method = "POST" if path.startswith("post:") else "GET"
                data = b"x" if method == "POST" else None
                out.append(await client.request(method, base + path.removeprefix("post:"), data=data, **kw))
            return out, state

    return uvloop.run(main())


def test_a_server_rst_stream_is_k6s_stream_error_and_the_connection_lives_on(tls: Tls) -> None:
    script = by_path(boom=lambda c, s: c.reset(s, ErrorCodes.INTERNAL_ERROR))
    (boom, after), state = _run_scripted(tls, script, ["/boom", "/after"])
    assert (boom.status, boom.error_code) == (0, 1633)
    assert boom.error == "http2: stream error with http2 ErrCode INTERNAL_ERROR"
    assert boom.proto == ""
    assert (after.status, after.proto) == (200, "HTTP/2.0")
    assert [conn for conn, _stream, _path in state.requests] == [0, 0]


def test_refused_stream_is_sent_again_even_a_post(tls: Tls) -> None:
    refused: set[str] = set()

    def refuse_once(conn: ServerConn, stream_id: int) -> None:
        path = conn.paths[stream_id]
        if path in refused:
            conn.respond(stream_id, b"second time")
        else:
            refused.add(path)
            conn.reset(stream_id, ErrorCodes.REFUSED_STREAM)

    (got, posted), state = _run_scripted(tls, by_path(busy=refuse_once), ["/busy/get", "post:/busy/post"])
    assert (got.status, got.text, posted.status, posted.text) == (200, "second time", 200, "second time")
    assert [(c, p) for c, _s, p in state.requests] == [(0, "/busy/get")] * 2 + [(0, "/busy/post")] * 2


def test_goaway_then_close_fails_the_accepted_stream_with_k6s_goaway_code(tls: Tls) -> None:
    def go_away(conn: ServerConn, stream_id: int) -> None:
        conn.go_away(ErrorCodes.INTERNAL_ERROR, last_stream_id=stream_id)
        conn.close()

    (warm, gone, after), state = _run_scripted(tls, by_path(gone=go_away), ["/warm", "/gone", "/after"])
    assert warm.status == 200
    assert (gone.status, gone.error_code) == (0, 1613)
    assert gone.error == "http2: received GoAway with http2 ErrCode INTERNAL_ERROR"
    assert (after.status, after.proto) == (200, "HTTP/2.0")  # on a new connection
    assert [c for c, _s, _p in state.requests] == [0, 0, 1]


def test_streams_above_goaways_last_stream_id_are_retried_on_a_new_connection(tls: Tls) -> None:
    def not_this_one(conn: ServerConn, stream_id: int) -> None:
        if conn.index == 0:
            conn.go_away(ErrorCodes.NO_ERROR, last_stream_id=stream_id - 2)
            conn.close()
        else:
            conn.respond(stream_id, b"from the new connection")

    (warm, moved), state = _run_scripted(tls, by_path(moved=not_this_one), ["/warm", "post:/moved"])
    assert warm.status == 200
    assert (moved.status, moved.text) == (200, "from the new connection")
    assert [(c, p) for c, _s, p in state.requests] == [(0, "/warm"), (0, "/moved"), (1, "/moved")]


def test_a_goaway_with_an_error_refusing_a_connections_first_stream_is_not_retried(tls: Tls) -> None:
    def refuse(conn: ServerConn, _stream_id: int) -> None:
        conn.go_away(ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=0)
        conn.close()

    (calm,), state = _run_scripted(tls, by_path(calm=refuse), ["/calm"])
    assert (calm.status, calm.error_code) == (0, 1000)  # Go's own text, which k6 has no code for
    assert calm.error == "http2: Transport received GOAWAY from server ErrCode:ENHANCE_YOUR_CALM"
    assert len(state.requests) == 1


def test_a_graceful_goaway_still_delivers_the_streams_it_accepted(tls: Tls) -> None:
    def finish_then_leave(conn: ServerConn, stream_id: int) -> None:
        # GOAWAY first, then the response to the stream it accepted (h2's server side would
        # send nothing after its own GOAWAY, so the frame is written by hand).
        conn.write_raw(GoAwayFrame(0, last_stream_id=stream_id, error_code=ErrorCodes.NO_ERROR).serialize())
        conn.respond(stream_id, b"finished")

    (last, next_one), state = _run_scripted(tls, by_path(last=finish_then_leave), ["/last", "/next"])
    assert (last.status, last.text) == (200, "finished")
    assert next_one.status == 200
    assert [c for c, _s, _p in state.requests] == [0, 1]  # no stream opened after the GOAWAY


def test_a_protocol_violation_is_k6s_connection_error(tls: Tls) -> None:
    def bad_settings(conn: ServerConn, _stream_id: int) -> None:
        conn.write_raw(SettingsFrame(0, settings={h2.settings.SettingCodes.ENABLE_PUSH: 2}).serialize())

    (bad, after), state = _run_scripted(tls, by_path(bad=bad_settings), ["/bad", "/after"])
    assert (bad.status, bad.error_code) == (0, 1652)
    assert bad.error == "http2: connection error with http2 ErrCode PROTOCOL_ERROR"
    assert after.status == 200
    assert [c for c, _s, _p in state.requests] == [0, 1]


def test_a_malformed_status_is_a_stream_protocol_error_and_the_connection_lives_on(tls: Tls) -> None:
    def bad_status(conn: ServerConn, stream_id: int) -> None:
        conn.h2.config.validate_outbound_headers = False  # h2 would not send it otherwise
        conn.h2.send_headers(stream_id, [(b":status", b"2xx")], end_stream=True)
        conn.flush()

    (bad, after), state = _run_scripted(tls, by_path(bad=bad_status), ["/bad", "/after"])
    assert (bad.status, bad.error_code) == (0, 1632)
    assert bad.error == "http2: stream error with http2 ErrCode PROTOCOL_ERROR"
    assert after.status == 200
    assert [c for c, _s, _p in state.requests] == [0, 0]


def test_a_timeout_resets_the_stream_and_keeps_the_connection(tls: Tls) -> None:
    (slow, after), state = _run_scripted(tls, by_path(slow=lambda c, s: None), ["/slow", "/after"], timeout=0.3)
    assert (slow.status, slow.error_code, slow.error) == (0, ErrorCode.REQUEST_TIMEOUT, "request timeout")
    assert slow.timings.waiting > 0 and slow.timings.receiving == 0
    assert after.status == 200
    assert [c for c, _s, _p in state.requests] == [0, 0]
    assert state.resets == [(0, 1, ErrorCodes.CANCEL)]  # the server was told to stop working on it


def test_a_body_over_the_cap_resets_only_its_stream(tls: Tls) -> None:
    script = by_path(big=lambda c, s: c.respond(s, b"x" * 5000))

    async def main() -> tuple[Response, Response, ScriptedServer]:
        context = ssl.create_default_context()
        tls.ca.configure_trust(context)
        transport = FastTransport(ssl_context=context, max_body_bytes=1000)
        async with (
            scripted_server(tls, script) as (base, state),
            HttpClient(on_response=ignore, transport=transport) as client,
        ):
            return await client.get(f"{base}/big"), await client.get(f"{base}/small"), state

    big, small, state = uvloop.run(main())
    assert (big.status, big.error_code) == (0, 1700)
    assert small.status == 200
    assert [c for c, _s, _p in state.requests] == [0, 0]


def test_past_the_servers_stream_limit_a_spare_connection_serves_and_closes(tls: Tls) -> None:
    held: list[tuple[ServerConn, int]] = []

    def hold_the_first(conn: ServerConn, stream_id: int) -> None:
        if conn.index == 0 and not held:
            held.append((conn, stream_id))  # the only stream the server allows stays open...
        else:
            conn.respond(stream_id, b"spare")
            first_conn, first_stream = held[0]
            first_conn.respond(first_stream, b"pooled")  # ...until the second request was served

    async def main() -> tuple[list[Response], ScriptedServer, int, list[bool]]:
        async with scripted_server(tls, by_path(hold=hold_the_first), max_streams=1) as (base, state):
            async with tls.client() as client:
                await client.get(f"{base}/warm")  # the server's SETTINGS (one stream) are known now
                both = await asyncio.gather(client.get(f"{base}/hold/1"), client.get(f"{base}/hold/2"))
                for _ in range(100):  # the spare's close reaches the server in a few turns of the loop
                    if len(state.conns) > 1 and state.conns[1].lost:
                        break
                    await asyncio.sleep(0.01)
                lost = [conn.lost for conn in state.conns]
                return list(both), state, len(client._transport._conns), lost  # type: ignore[attr-defined]

    (first, second), state, pooled, lost = uvloop.run(main())
    assert (first.text, second.text) == ("pooled", "spare")
    assert [(c, p) for c, _s, p in state.requests] == [(0, "/warm"), (0, "/hold/1"), (1, "/hold/2")]
    assert lost == [False, True]  # the spare closed, the pooled one stays
    assert pooled == 1


# ---------------------------------------------------------------------------- k6's codes and the rules


def test_http2_error_codes_are_k6s() -> None:
    # lib/netext/httpext/error_codes.go: 1610/1630/1650 + 1 + the RFC's code; anything else the base.
    assert http2_error_code(ErrorCode.HTTP2_GOAWAY, ErrorCodes.NO_ERROR) == 1611
    assert http2_error_code(ErrorCode.HTTP2_STREAM, ErrorCodes.INTERNAL_ERROR) == 1633
    assert http2_error_code(ErrorCode.HTTP2_STREAM, ErrorCodes.CANCEL) == 1639
    assert http2_error_code(ErrorCode.HTTP2_CONNECTION, ErrorCodes.HTTP_1_1_REQUIRED) == 1664
    assert http2_error_code(ErrorCode.HTTP2_STREAM, 0xDD) == 1630
    assert [http2_error_name(int(c)) for c in ErrorCodes] == [c.name for c in ErrorCodes]
    assert http2_error_name(0xDD) == "unknown error code 0xdd"


def test_every_h2_exception_has_a_rule() -> None:
    classes = {
        obj
        for _, obj in inspect.getmembers(h2.exceptions, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == "h2.exceptions"
    }
    assert classes, "h2.exceptions has no exception classes?"
    missing = sorted(c.__name__ for c in classes if c not in FAST_ERROR_RULES)
    assert not missing, f"h2 exceptions without an explicit rule: {missing}"



def test_request_fields_drop_connection_fields_and_merge_what_the_transport_adds() -> None:
    headers = {
        "Host": "other.example",
        "Connection": "keep-alive",
        "Transfer-Encoding": "chunked",
        "Content-Length": "99",
        "TE": "gzip",
        "Cookie": "mine=1",
        "X-Trace": "t1",
    }
    fields = request_fields("POST", "api.example", "/buy?n=2", headers, b"abc", "jar=2", "Basic dTpw")
    assert fields == [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", b"other.example"),  # the caller's Host, as Go's Request.Host
        (b":path", b"/buy?n=2"),
        (b"x-trace", b"t1"),
        (b"cookie", b"mine=1; jar=2"),
        (b"authorization", b"Basic dTpw"),
        (b"content-length", b"3"),
    ]
    given = {"Authorization": "Bearer k", "TE": "trailers"}
    bodiless = request_fields("PUT", "api.example", "/", given, None, None, "Basic x")
    assert bodiless[4:] == [(b"authorization", b"Bearer k"), (b"te", b"trailers"), (b"content-length", b"0")]

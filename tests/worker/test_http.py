"""The VU's HTTP client: a fake transport where the seam is under test, a real aiohttp server
on 127.0.0.1 (port 0) for both transports (every real-server test runs once with each), raw
scripted servers for the fast transport's framing cases, and meta-tests that every
exception aiohttp or httptools can raise has an explicit k6 error-code rule.

pytest-asyncio is not used: each test runs one coroutine with ``asyncio.run``. No assertion
bounds wall-clock time from above.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import errno
import gzip
import importlib
import inspect
import ipaddress
import math
import pkgutil
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import httptools
import pytest
import uvloop
from aiohttp import client_exceptions, http_exceptions, web
from aiohttp.client_reqrep import ConnectionKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from surge.worker.http import TRANSPORTS, ErrorCode, HttpClient, InvalidURLError, Response, Timings, make_transport
from surge.worker.transport_aiohttp import ERROR_RULES, TRANSPORT_ERRORS, AiohttpTransport, classify_error
from surge.worker.transport_fast import ERROR_RULES as FAST_ERROR_RULES
from surge.worker.transport_fast import TRANSPORT_ERRORS as FAST_TRANSPORT_ERRORS
from surge.worker.transport_fast import (
    DialError,
    DialTimeoutError,
    FastTransport,
    ServerClosedError,
    TruncatedResponseError,
    _Jar,
    _Target,
)
from surge.worker.transport_fast import classify_error as fast_classify_error

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
        self.closed = False

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_redirects: int,
    ) -> Response:
        self.sent.append((method, url, headers, body, timeout_s, max_redirects))
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


# ---------------------------------------------------------------------------- the seam (fake transport)


def test_json_body_is_compact_and_typed() -> None:
    client, transport, _ = fake_client()
    run(lambda: client.post("http://h/x", json={"a": [1, 2], "é": None}))
    method, url, headers, body, timeout_s, max_redirects = transport.sent[0]
    assert (method, url, timeout_s, max_redirects) == ("POST", "http://h/x", 60.0, 10)
    assert body == '{"a":[1,2],"é":null}'.encode()
    assert headers["content-type"] == "application/json"
    assert headers["User-Agent"].startswith("surge/")


def test_given_content_type_wins_case_insensitively() -> None:
    client, transport, _ = fake_client(base_headers={"X-Base": "1", "x-over": "base"})
    run(lambda: client.put("http://h/", json=[1], headers={"content-type": "application/vnd+json", "X-Over": "req"}))
    headers = transport.sent[0][2]
    assert headers["Content-Type"] == "application/vnd+json"
    assert headers["X-Base"] == "1" and headers["X-Over"] == "req"
    assert len([k for k in headers if k.lower() == "x-over"]) == 1


def test_data_forms() -> None:
    client, transport, _ = fake_client()

    async def go() -> None:
        await client.post("http://h/", data="plain é")
        await client.post("http://h/", data=b"\x00\x01")
        await client.post("http://h/", data={"a": "1", "b": "x y&z"})
        await client.get("http://h/p?x=1#frag", params={"q": "a b"})

    run(go)
    (_, _, h1, b1, _, _), (_, _, h2, b2, _, _), (_, _, h3, b3, _, _), (_, u4, _, b4, _, _) = transport.sent
    assert b1 == "plain é".encode() and "Content-Type" not in h1
    assert b2 == b"\x00\x01" and "Content-Type" not in h2
    assert b3 == b"a=1&b=x+y%26z" and h3["Content-Type"] == "application/x-www-form-urlencoded"
    assert u4 == "http://h/p?x=1&q=a+b#frag" and b4 is None


def test_timeouts_accept_seconds_and_durations() -> None:
    client, transport, _ = fake_client(default_timeout_s=5)

    async def go() -> None:
        await client.get("http://h/")
        await client.get("http://h/", timeout=2)
        await client.get("http://h/", timeout="1m30s")
        await client.get("http://h/", timeout="250ms")

    run(go)
    assert [s[4] for s in transport.sent] == [5.0, 2.0, 90.0, 0.25]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"json": {"a": 1}, "data": "x"}, TypeError),
        ({"data": 12}, TypeError),
        ({"timeout": True}, TypeError),
        ({"timeout": [1]}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": "soon"}, ValueError),
        ({"headers": [("a", "b")]}, TypeError),
        ({"params": [("a", "b")]}, TypeError),
    ],
)
def test_programmer_errors_raise_and_report_nothing(kwargs: dict[str, Any], error: type[Exception]) -> None:
    client, transport, reports = fake_client()
    with pytest.raises(error):
        run(lambda: client.request("POST", "http://h/", **kwargs))
    assert transport.sent == [] and reports.calls == []


def test_on_response_gets_the_tags_once_per_request() -> None:
    client, _, reports = fake_client()

    async def go() -> None:
        await client.get("http://h/a", tags={"name": "checkout"})
        await client.delete("http://h/b")

    run(go)
    assert [(r.method, r.url, t) for r, t in reports.calls] == [
        ("GET", "http://h/a", {"name": "checkout"}),
        ("DELETE", "http://h/b", None),
    ]


def test_a_transport_that_raises_still_yields_a_failed_response() -> None:
    client, _, reports = fake_client(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    resp = run(lambda: client.get("http://h/"))
    assert (resp.status, resp.error_code, resp.error) == (0, 1212, "dial: connection refused")
    assert resp.expected is False and resp.body is None and resp.text == ""
    assert reports.calls == [(resp, None)]


def test_a_bug_in_the_transport_is_not_swallowed() -> None:
    client, _, reports = fake_client(AttributeError("bug"))
    with pytest.raises(AttributeError):
        run(lambda: client.get("http://h/"))
    assert reports.calls == []


def test_close_closes_the_transport() -> None:
    client, transport, _ = fake_client()

    async def go() -> None:
        async with client:
            pass

    run(go)
    assert transport.closed


# ---------------------------------------------------------------------------- the Response


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (200, 0, True),
        (204, 0, True),
        (302, 0, True),
        (399, 0, True),
        (400, 1400, False),
        (404, 1404, False),
        (500, 1500, False),
        (503, 1503, False),
        (199, 0, False),
    ],
)
def test_status_codes_follow_k6(status: int, code: int, expected: bool) -> None:
    resp = Response("GET", "http://h/", status, body=b"")
    assert (resp.error_code, resp.error, resp.expected) == (code, "", expected)


def test_json_and_text() -> None:
    resp = Response("GET", "http://h/", 200, body='{"a": "é"}'.encode())
    assert resp.json() == {"a": "é"} and resp.text == '{"a": "é"}'
    assert Response("GET", "u", 200, body=b"\xff").text == "\ufffd"
    for body in (None, b"", b"not json"):
        with pytest.raises(ValueError):
            Response("GET", "u", 200, body=body).json()
    with pytest.raises(NotImplementedError):
        resp.json("a")
    assert "200" in repr(resp) and "1212" in repr(Response("GET", "u", 0, error="x", error_code=1212))


# ---------------------------------------------------------------------------- error classification

CONN_KEY = ConnectionKey("127.0.0.1", 1, False, True, None, None, None, None)


def _aiohttp_error_classes() -> set[type[BaseException]]:
    """Every ClientError and HttpProcessingError subclass aiohttp defines, found by walking it."""
    found: set[type[BaseException]] = set()
    modules = [aiohttp]
    for info in pkgutil.walk_packages(aiohttp.__path__, "aiohttp."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # optional extras (gunicorn worker, ...)
            continue
    roots = (aiohttp.ClientError, http_exceptions.HttpProcessingError)
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, roots) and obj.__module__.startswith("aiohttp"):
                found.add(obj)
    stack: list[type[BaseException]] = list(roots)
    while stack:
        cls = stack.pop()
        if cls.__module__.startswith("aiohttp"):
            found.add(cls)
        stack.extend(cls.__subclasses__())
    return found


STDLIB_ERRORS: set[type[BaseException]] = {
    TimeoutError,
    asyncio.TimeoutError,
    ValueError,
    OSError,
    ConnectionError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    socket.gaierror,
    socket.herror,
    ssl.SSLError,
    ssl.SSLCertVerificationError,
    ssl.CertificateError,
    ssl.SSLZeroReturnError,
    ssl.SSLWantReadError,
    ssl.SSLWantWriteError,
    ssl.SSLSyscallError,
    ssl.SSLEOFError,
}

# Where GENERIC (1000) is the intended answer: k6 has no more specific code for these.
INTENDED_GENERIC = {
    ValueError,
    aiohttp.ClientError,
    aiohttp.ClientResponseError,
    aiohttp.ContentTypeError,
    aiohttp.WSServerHandshakeError,
    aiohttp.ClientHttpProxyError,
    aiohttp.TooManyRedirects,
    aiohttp.UploadAbortedError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    http_exceptions.HttpProcessingError,
    http_exceptions.BadHttpMessage,
    http_exceptions.HttpBadRequest,
    http_exceptions.PayloadEncodingError,
    http_exceptions.TransferEncodingError,
    http_exceptions.ContentLengthError,
    http_exceptions.LineTooLong,
    http_exceptions.InvalidHeader,
    http_exceptions.BadStatusLine,
    http_exceptions.BadHttpMethod,
    http_exceptions.InvalidURLError,
}


def _instance(cls: type[BaseException]) -> BaseException:
    """A plausible instance of ``cls``, whatever its constructor wants."""
    if issubclass(cls, client_exceptions.UnixClientConnectorError):
        return cls("/tmp/s", CONN_KEY, OSError(errno.ENOENT, "no such file"))
    if issubclass(cls, aiohttp.ClientConnectorCertificateError):
        return cls(CONN_KEY, ssl.SSLCertVerificationError("bad cert"))
    if issubclass(cls, aiohttp.ClientConnectorError):
        return cls(CONN_KEY, OSError(errno.EHOSTUNREACH, "unreachable"))
    if issubclass(cls, aiohttp.ServerFingerprintMismatch):
        return cls(b"a", b"b", "127.0.0.1", 1)
    if issubclass(cls, aiohttp.ClientResponseError):
        info = aiohttp.RequestInfo(
            URL("http://127.0.0.1/"), "GET", CIMultiDictProxy(CIMultiDict()), URL("http://127.0.0.1/")
        )
        return cls(info, (), status=502, message="Bad Gateway")
    if issubclass(cls, aiohttp.InvalidURL):
        return cls("http://")
    if issubclass(cls, http_exceptions.LineTooLong):
        return cls("line", "8190")
    if issubclass(cls, http_exceptions.InvalidHeader):
        return cls(b"X-Bad")
    if issubclass(cls, http_exceptions.BadStatusLine):
        return cls("HTTP/9 x")
    if issubclass(cls, http_exceptions.HttpProcessingError):
        return cls(message="boom")
    return cls("boom")


def test_every_aiohttp_error_has_an_explicit_rule() -> None:
    classes = _aiohttp_error_classes() | STDLIB_ERRORS
    assert aiohttp.ClientConnectorDNSError in classes and http_exceptions.ContentLengthError in classes
    unmapped = sorted(c.__qualname__ for c in classes if c not in ERROR_RULES)
    assert unmapped == []
    for cls in classes:
        code, message = classify_error(_instance(cls))
        assert code in ErrorCode.__members__.values(), cls
        assert isinstance(message, str) and message, cls
        assert (code == ErrorCode.GENERIC) == (cls in INTENDED_GENERIC), cls
        assert isinstance(_instance(cls), TRANSPORT_ERRORS), cls


def test_an_unknown_exception_is_generic_with_its_name() -> None:
    class Odd(Exception):
        pass

    assert classify_error(Odd("x")) == (1000, "Odd: x")
    assert not isinstance(Odd("x"), TRANSPORT_ERRORS)


def _gaierror(num: int) -> socket.gaierror:
    return socket.gaierror(num, "lookup failed")


def _cert_error(code: int) -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_code = code
    err.verify_message = "whatever"
    return err


def _ssl_error(reason: str) -> ssl.SSLError:
    err = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    err.reason = reason
    return err


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (TimeoutError(), 1050),
        (aiohttp.SocketTimeoutError("read"), 1050),
        (aiohttp.ConnectionTimeoutError("dial"), 1211),
        (aiohttp.InvalidUrlClientError("nope"), 1020),
        (aiohttp.NonHttpUrlClientError("ftp://x"), 1020),
        (aiohttp.ClientConnectorError(CONN_KEY, ConnectionRefusedError(errno.ECONNREFUSED, "refused")), 1212),
        (aiohttp.ClientConnectorError(CONN_KEY, OSError(errno.ETIMEDOUT, "timed out")), 1211),
        (aiohttp.ClientConnectorError(CONN_KEY, OSError(errno.EHOSTUNREACH, "no route")), 1213),
        (aiohttp.ClientConnectorError(CONN_KEY, OSError("Multiple exceptions: ...")), 1210),
        (aiohttp.ClientConnectorDNSError(CONN_KEY, _gaierror(socket.EAI_NONAME)), 1101),
        (aiohttp.ClientConnectorDNSError(CONN_KEY, _gaierror(socket.EAI_AGAIN)), 1100),
        (_gaierror(socket.EAI_NONAME), 1101),
        (client_exceptions.UnixClientConnectorError("/s", CONN_KEY, OSError(errno.ENOENT, "x")), 1010),
        (aiohttp.ClientOSError(errno.ECONNRESET, "reset"), 1220),
        (aiohttp.ClientOSError(errno.EPIPE, "Can not write request body"), 1201),
        (aiohttp.ClientOSError(errno.EIO, "io"), 1202),
        (aiohttp.ClientOSError(), 1200),
        (ConnectionResetError(errno.ECONNRESET, "reset"), 1220),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), 1220),
        (BrokenPipeError(errno.EPIPE, "pipe"), 1201),
        (_chained(aiohttp.ClientConnectionError("Connection lost"), ConnectionResetError(errno.ECONNRESET, "r")), 1220),
        (aiohttp.ClientConnectionError("Connection closed"), 1200),
        (aiohttp.ServerDisconnectedError(), 1000),
        (aiohttp.ClientConnectorCertificateError(CONN_KEY, _cert_error(62)), 1311),
        (aiohttp.ClientConnectorCertificateError(CONN_KEY, _cert_error(20)), 1310),
        (aiohttp.ClientConnectorCertificateError(CONN_KEY, _cert_error(10)), 1300),
        (aiohttp.ClientConnectorSSLError(CONN_KEY, _ssl_error("WRONG_VERSION_NUMBER")), 1301),
        (aiohttp.ClientConnectorSSLError(CONN_KEY, _ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE")), 1300),
        (_cert_error(18), 1310),
        (_chained(aiohttp.ClientPayloadError("bad gzip"), http_exceptions.ContentEncodingError("gzip")), 1701),
        (_chained(aiohttp.ClientPayloadError("truncated"), http_exceptions.ContentLengthError("short")), 1000),
        (_chained(http_exceptions.HttpProcessingError(), http_exceptions.BadStatusLine("x")), 1000),
        (ValueError("Newline or carriage return character detected in HTTP header"), 1000),
    ],
)
def test_classification_examples(exc: BaseException, code: int) -> None:
    assert classify_error(exc)[0] == code


@given(st.integers(min_value=0, max_value=200))
def test_any_errno_maps_to_a_tcp_or_dial_code(num: int) -> None:
    tcp, _ = classify_error(aiohttp.ClientOSError(num, "x"))
    dial, _ = classify_error(aiohttp.ClientConnectorError(CONN_KEY, OSError(num, "x")))
    assert 1200 <= tcp < 1300 and 1200 <= dial < 1300


def test_messages_are_low_cardinality() -> None:
    """The error text becomes a metric tag: it must not carry the host or port."""
    a = aiohttp.ClientConnectorError(
        ConnectionKey("127.0.0.1", 1111, False, True, None, None, None, None),
        ConnectionRefusedError(errno.ECONNREFUSED, "r"),
    )
    b = aiohttp.ClientConnectorError(
        ConnectionKey("10.0.0.1", 2222, False, True, None, None, None, None),
        ConnectionRefusedError(errno.ECONNREFUSED, "r"),
    )
    assert classify_error(a) == classify_error(b)


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


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each real-server test runs once per transport: both must meet the same contract."""
    name: str = request.param
    return name


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


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_json_round_trip(loop: str, transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.post(f"{base}/json", json={"n": 1}, tags={"name": "echo"})
        assert resp.status == 200 and resp.expected and resp.error == "" and resp.error_code == 0
        assert resp.json() == {"got": {"n": 1}, "ct": "application/json"}
        assert resp.headers["x-echo"] == "yes" and resp.headers["CONTENT-TYPE"].startswith("application/json")
        assert resp.url == f"{base}/json" and resp.method == "POST"
        assert resp.bytes_sent > len(b'{"n":1}') and resp.bytes_received > len(resp.body or b"")
        assert_timings_add_up(resp.timings)
        assert resp.timings.duration > 0 and resp.timings.connecting > 0

    reports = with_server(test, loop=loop, transport=transport)
    assert [(r.status, t) for r, t in reports.calls] == [(200, {"name": "echo"})]


def test_form_data(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.post(f"{base}/form", data={"a": "1", "b": "x y"})
        assert resp.json() == {"a": "1", "b": "x y"}

    with_server(test, transport=transport)


def test_server_error_is_a_response_not_a_failure(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/status/500")
        assert (resp.status, resp.error, resp.error_code, resp.expected, resp.text) == (500, "", 1500, False, "status")

    with_server(test, transport=transport)


def test_connection_refused(transport: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reports = Reports()

    async def main() -> Response:
        async with client_with(transport, reports) as client:
            return await client.get(f"http://127.0.0.1:{port}/")

    resp = asyncio.run(main())
    assert (resp.status, resp.error_code, resp.error) == (0, 1212, "dial: connection refused")
    assert resp.body is None and not resp.expected
    assert_timings_add_up(resp.timings)
    assert reports.calls == [(resp, None)]


def test_timeout(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/sleep", timeout=0.1)
        assert (resp.status, resp.error_code, resp.error) == (0, 1050, "request timeout")
        assert_timings_add_up(resp.timings)
        assert resp.timings.duration >= 90  # about the 100 ms spent, mostly waiting
        assert resp.timings.waiting >= 90

    reports = with_server(test, transport=transport)
    assert len(reports.calls) == 1


def test_a_timeout_while_dialling_is_a_dial_timeout(monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    async def never(sock: socket.socket, address: object) -> None:
        await asyncio.sleep(10)

    async def main() -> Response:
        monkeypatch.setattr(asyncio.get_running_loop(), "sock_connect", never)  # the SYN is never answered
        async with client_with(transport, Reports()) as client:
            return await client.get("http://127.0.0.1:9/", timeout=0.05)

    resp = asyncio.run(main())
    assert (resp.status, resp.error_code, resp.error) == (0, 1211, "dial: i/o timeout")
    assert resp.timings == Timings()  # no connection was ever held, as in k6


def test_reset_by_peer(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/reset")
        assert resp.status == 0 and 1200 <= resp.error_code < 1300, resp
        assert_timings_add_up(resp.timings)

    with_server(test, transport=transport)


@pytest.mark.parametrize("url", ["not a url", "http://", "ftp://127.0.0.1/x", "http://[::1"])
def test_invalid_url(url: str, transport: str) -> None:
    reports = Reports()

    async def main() -> Response:
        async with client_with(transport, reports) as client:
            return await client.get(url)

    resp = asyncio.run(main())
    assert (resp.status, resp.error_code, resp.error) == (0, 1020, "invalid URL")
    assert len(reports.calls) == 1


def test_redirects_are_followed(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/redirect/3")
        assert (resp.status, resp.text, resp.url) == (200, "landed", f"{base}/redirect/0")
        one_hop = await client.get(f"{base}/redirect/0")
        assert resp.bytes_received > one_hop.bytes_received  # every hop's bytes count
        see_other = await client.post(f"{base}/see-other", json={"a": 1})
        assert see_other.json() == {"method": "GET", "body": 0, "ct": None}

    reports = with_server(test, transport=transport)
    assert len(reports.calls) == 3


def test_too_many_redirects_returns_the_last_redirect_as_k6_does(transport: str) -> None:
    reports = Reports()

    async def main() -> tuple[Response, Response]:
        async with serving() as base, client_with(transport, reports, max_redirects=2) as client:
            exact = await client.get(f"{base}/redirect/2")
            over = await client.get(f"{base}/redirect/5")
            return exact, over

    exact, over = asyncio.run(main())
    assert exact.status == 200
    assert (over.status, over.error, over.error_code) == (302, "", 0)
    assert over.url.endswith("/redirect/3") and over.headers["Location"] == "/redirect/2"


def test_cookies_persist_per_client_not_across_clients(transport: str) -> None:
    async def main() -> tuple[str, str, str]:
        async with (
            serving() as base,
            client_with(transport, Reports()) as one,
            client_with(transport, Reports()) as two,
        ):
            await one.get(f"{base}/set-cookie?v=one")
            seen_by_one = (await one.get(f"{base}/cookie")).text
            seen_by_two = (await two.get(f"{base}/cookie")).text
            await two.get(f"{base}/set-cookie?v=two")
            return seen_by_one, seen_by_two, (await one.get(f"{base}/cookie")).text

    assert asyncio.run(main()) == ("one", "", "one")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_keep_alive_reuses_one_connection(loop: str, transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        first = await client.get(f"{base}/peer")
        second = await client.get(f"{base}/peer")
        assert first.text == second.text
        assert first.timings.connecting > 0 and second.timings.connecting == 0
        assert first.timings.blocked >= first.timings.connecting
        for resp in (first, second):
            assert_timings_add_up(resp.timings)

    with_server(test, loop=loop, transport=transport)


def test_bytes_grow_with_body_size(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        small = await client.post(f"{base}/bytes/10", data=b"a" * 10)
        big = await client.post(f"{base}/bytes/100000", data=b"a" * 100_000)
        assert 0 < small.bytes_sent < big.bytes_sent and big.bytes_sent >= 100_000
        assert 0 < small.bytes_received < big.bytes_received and big.bytes_received >= 100_000
        assert len(big.body or b"") == 100_000

    with_server(test, transport=transport)


def test_head_and_options_read_no_body(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        head = await client.head(f"{base}/method")
        assert head.status == 200 and head.body == b""
        options = await client.options(f"{base}/method")
        assert options.json()["method"] == "OPTIONS"
        patch = await client.patch(f"{base}/method", data="abc")
        assert patch.json() == {"method": "PATCH", "body": 3, "ct": None}

    with_server(test, transport=transport)


def test_closing_an_unused_transport_is_fine(transport: str) -> None:
    asyncio.run(make_transport(transport).close())


def test_a_request_cut_short_after_it_was_sent_is_still_reported(transport: str) -> None:
    # The VU is stopped while the server holds the request: the server has it, so surge counts it.
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        task = asyncio.ensure_future(client.get(f"{base}/hold", tags={"t": "1"}))
        await asyncio.wait_for(_apps[base][HOLDING].wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(reports.calls) == 1
        resp, tags = reports.calls[0]
        assert (resp.status, resp.error, resp.error_code) == (0, "request interrupted", 1000)
        assert resp.bytes_sent > 0 and tags == {"t": "1"}
        assert_timings_add_up(resp.timings)

    with_server(test, transport=transport)


def test_a_request_cancelled_before_it_was_sent_is_not_reported() -> None:
    class Never(FakeTransport):
        async def send(self, *args: Any) -> Response:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    reports = Reports()
    client = HttpClient(on_response=reports, transport=Never())

    async def go() -> None:
        task = asyncio.ensure_future(client.get("http://h/"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(go)
    assert reports.calls == []


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


def test_fast_reads_a_chunked_body_and_keeps_the_connection() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> list[Response]:
        return [await client.get(f"{base}/a"), await client.get(f"{base}/b")]

    first, second = with_raw_server(script(chunked, OK), test)
    assert (first.status, first.body, second.body) == (200, b"hello world", b"ok")
    assert first.bytes_received == len(chunked)


@pytest.mark.parametrize(
    ("method", "reply", "status"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n", 200),
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 204),
        ("GET", b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', 304),
        ("GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 OK\r\n\r\n", 204),
    ],
    ids=["HEAD", "204", "304", "1xx"],
)
def test_fast_responses_without_a_body_keep_the_connection_in_step(method: str, reply: bytes, status: int) -> None:
    """The next response on the same connection is read from the right byte."""

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        return await client.request(method, f"{base}/x"), await client.get(f"{base}/y"), raw

    first, second, raw = with_raw_server(script(reply, OK), test)
    assert (first.status, first.body, first.error) == (status, b"", "")
    assert (second.status, second.body) == (200, b"ok")
    assert raw.peers[0] == raw.peers[1] and second.timings.connecting == 0
    assert first.bytes_received == len(reply) and first.bytes_sent == len(raw.requests[0])


def test_fast_connection_close_from_the_server_means_a_new_connection_next_time() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        return await client.get(f"{base}/a"), await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script((closing, True), OK), test)
    assert (first.status, second.status) == (200, 200)
    assert raw.peers[0] != raw.peers[1] and second.timings.connecting > 0


def test_fast_connection_close_from_the_client_means_a_new_connection_next_time() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        first = await client.get(f"{base}/a", headers={"Connection": "close"})
        return first, await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script(OK, OK), test)
    assert b"\r\nConnection: close\r\n" in raw.requests[0]
    assert (first.status, second.status) == (200, 200) and raw.peers[0] != raw.peers[1]


def test_fast_replaces_a_keep_alive_connection_the_server_closed_while_idle() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        first = await client.get(f"{base}/a")
        await asyncio.wait_for(raw.closed_by_server.wait(), 5)  # the server's idle timeout
        return first, await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script((OK, True), OK), test)
    assert (first.status, second.status, second.error) == (200, 200, "")
    assert raw.peers[0] != raw.peers[1]


def test_fast_sends_a_replayable_request_again_when_a_reused_connection_dies_under_it() -> None:
    """The server closes the kept-alive connection as the second request arrives (Go retries GET)."""

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        await client.get(f"{base}/a")
        return await client.get(f"{base}/b"), raw

    resp, raw = with_raw_server(script(OK, (CLOSE, True), OK), test)
    assert (resp.status, resp.body, resp.error) == (200, b"ok", "")
    assert raw.peers[0] == raw.peers[1] != raw.peers[2]
    assert resp.bytes_sent == len(raw.requests[1]) + len(raw.requests[2])  # both attempts hit the wire
    assert resp.timings.connecting > 0
    assert_timings_add_up(resp.timings)


def test_fast_does_not_replay_a_post_or_a_request_on_a_fresh_connection() -> None:
    async def post(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        await client.get(f"{base}/a")
        return await client.post(f"{base}/b", json={"n": 1}), raw

    resp, raw = with_raw_server(script(OK, (CLOSE, True), OK), post)
    assert (resp.status, resp.error_code, resp.error) == (0, 1000, "EOF (server closed the connection)")
    assert len(raw.requests) == 2 and resp.bytes_sent == len(raw.requests[1])

    async def fresh(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        return await client.get(f"{base}/a"), raw

    resp, raw = with_raw_server(script((CLOSE, True), OK), fresh)
    assert (resp.status, resp.error_code, resp.error) == (0, 1000, "EOF (server closed the connection)")
    assert len(raw.requests) == 1
    assert_timings_add_up(resp.timings)


def test_fast_reads_an_http_1_0_response_framed_by_the_end_of_the_connection() -> None:
    old = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from 1.0"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        return await client.get(f"{base}/a"), await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script((old, True), (old, True)), test)
    assert (first.status, first.body, second.body) == (200, b"hello from 1.0", b"hello from 1.0")
    assert raw.peers[0] != raw.peers[1] and first.bytes_received == len(old)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"garbage\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "unexpected EOF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "unexpected EOF"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", None),
    ],
    ids=["garbage", "bad-status", "short-body", "short-chunk", "upgrade"],
)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fast_a_malformed_or_truncated_response_is_a_failure(reply: bytes, error: str | None, loop: str) -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/a")

    resp = with_raw_server(script((reply, True)), test, loop=loop)
    assert (resp.status, resp.error_code) == (0, 1000), resp
    assert resp.error == error or (error is None and resp.error.startswith("malformed HTTP response"))
    assert resp.bytes_received == len(reply)
    assert_timings_add_up(resp.timings)


def test_fast_counts_the_exact_bytes_of_every_hop() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        posted = await client.post(f"{base}/a", data=b"x" * 1000, headers={"X-Id": "é"})
        return posted, await client.get(f"{base}/b"), raw

    posted, redirected, raw = with_raw_server(script(OK, moved, OK), test)
    assert posted.bytes_sent == len(raw.requests[0]) and posted.bytes_received == len(raw.replies[0])
    assert raw.requests[0].endswith(b"\r\n\r\n" + b"x" * 1000)
    assert "X-Id: é".encode() in raw.requests[0]
    assert redirected.url.endswith("/next") and redirected.status == 200
    assert redirected.bytes_sent == len(raw.requests[1]) + len(raw.requests[2])
    assert redirected.bytes_received == len(raw.replies[1]) + len(raw.replies[2])


def test_fast_writes_the_request_as_go_would() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> RawServer:
        await client.post(f"{base}/p/ä b?q=1 2&r=ü", json={"a": 1})
        await client.get(f"{base}/g", headers={"Host": "example.test", "Content-Length": "99"})
        await client.post(f"{base}/empty")
        return raw

    raw = with_raw_server(script(OK, OK, OK), test)
    post, get, empty = (r.decode("utf-8") for r in raw.requests)
    line, *fields = post.split("\r\n\r\n")[0].split("\r\n")
    assert line == "POST /p/%C3%A4%20b?q=1%202&r=%C3%BC HTTP/1.1"
    assert fields[0].startswith("Host: 127.0.0.1:") and "Content-Length: 7" in fields
    assert "Content-Type: application/json" in fields and any(f.startswith("User-Agent: surge/") for f in fields)
    assert "Host: example.test\r\n" in get and "Content-Length" not in get  # a GET has no body to measure
    assert "Content-Length: 0\r\n" in empty


def test_fast_a_307_keeps_the_method_and_the_body() -> None:
    again = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        return await client.post(f"{base}/first", data=b"payload"), raw

    resp, raw = with_raw_server(script(again, OK), test)
    assert resp.status == 200 and resp.url.endswith("/again")
    assert raw.requests[1].startswith(b"POST /again HTTP/1.1\r\n") and raw.requests[1].endswith(b"\r\n\r\npayload")


def test_fast_a_redirect_to_another_host_drops_the_credentials() -> None:
    """127.0.0.1 sends the client to localhost (resolved by DNS, maybe ::1 first, refused there)."""

    async def main() -> tuple[Response, RawServer, RawServer]:
        async with raw_server(script(OK)) as (other_base, other):
            port = other_base.rsplit(":", 1)[1]
            moved = f"HTTP/1.1 302 Found\r\nLocation: http://localhost:{port}/landing\r\nContent-Length: 0\r\n\r\n"
            async with raw_server(script(moved.encode())) as (base, first), client_with("fast", Reports()) as client:
                headers = {"Authorization": "Bearer secret", "Cookie": "sid=1", "X-Kept": "yes"}
                return await client.get(f"{base}/start", headers=headers), first, other

    resp, first, other = uvloop.run(main())
    assert resp.status == 200 and resp.url.endswith("/landing")
    assert b"Authorization: Bearer secret" in first.requests[0] and b"Cookie: sid=1" in first.requests[0]
    assert b"Authorization" not in other.requests[0] and b"Cookie" not in other.requests[0]
    assert b"X-Kept: yes" in other.requests[0] and b"Host: localhost:" in other.requests[0]


def test_fast_refuses_a_header_that_would_split_the_request() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        return await client.get(f"{base}/a", headers={"X-Evil": "a\r\nX-Injected: 1"}), raw

    resp, raw = with_raw_server(script(OK), test)
    assert (resp.status, resp.error_code) == (0, 1000) and "Newline" in resp.error
    assert raw.requests == []


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


@pytest.mark.parametrize(
    ("encoding", "payload", "expected"),
    [
        (b"gzip", _gzip(b"zipped!"), b"zipped!"),
        (b"deflate", zlib.compress(b"deflated"), b"deflated"),
        (b"deflate", zlib.compress(b"raw deflate")[2:-4], b"raw deflate"),
        (b"br", b"\x0bopaque", b"\x0bopaque"),
    ],
    ids=["gzip", "deflate", "raw-deflate", "unknown"],
)
def test_fast_decodes_a_compressed_body_and_counts_the_wire_bytes(encoding: bytes, payload: bytes, expected: bytes) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: " + encoding + b"\r\nContent-Length: %d\r\n\r\n" % len(payload)

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/z")

    resp = with_raw_server(script(reply + payload), test)
    assert (resp.status, resp.body) == (200, expected)
    assert resp.bytes_received == len(reply) + len(payload)


def test_fast_a_body_that_does_not_decompress_is_1701() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/z")

    resp = with_raw_server(script(reply), test)
    assert (resp.status, resp.error_code, resp.error) == (0, 1701, "error decompressing response body")


def test_fast_timings_follow_the_connection() -> None:
    """A response held back by the server is waiting; a reused connection has no connecting."""

    async def slow_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
            await writer.drain()
            await asyncio.sleep(0.02)  # the body comes in two pieces: receiving is measured
            writer.write(b"cde")
        writer.close()

    async def main() -> list[Response]:
        server = await asyncio.start_server(slow_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, client_with("fast", Reports()) as client:
            return [await client.get(f"http://127.0.0.1:{port}/") for _ in range(2)]

    first, second = uvloop.run(main())
    for resp in (first, second):
        assert resp.body == b"abcde"
        assert_timings_add_up(resp.timings)
        assert resp.timings.waiting >= 45 and resp.timings.receiving >= 15
        assert resp.timings.blocked >= resp.timings.connecting + resp.timings.tls_handshaking
    assert first.timings.connecting > 0 and second.timings.connecting == 0
    assert first.timings.tls_handshaking == second.timings.tls_handshaking == 0


def test_fast_concurrent_requests_of_one_vu_get_their_own_connections() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[list[Response], Response, RawServer]:
        both = await asyncio.gather(client.get(f"{base}/a"), client.get(f"{base}/b"))
        return list(both), await client.get(f"{base}/c"), raw

    both, third, raw = with_raw_server(script(OK, OK, OK), test)
    assert [r.status for r in both] == [200, 200] and third.status == 200
    assert len(set(raw.peers[:2])) == 2 and raw.peers[2] in raw.peers[:2]
    assert third.timings.connecting == 0


def test_fast_headers_are_a_case_insensitive_mapping_read_lazily() -> None:
    reply = b"HTTP/1.1 200 OK\r\nX-One: 1\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/h")

    resp = with_raw_server(script(reply), test)
    headers = resp.headers
    assert isinstance(headers, Mapping) and len(headers) == 4
    assert headers["x-one"] == "1" and headers.get("X-ONE") == "1" and "x-two" not in headers
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]  # type: ignore[attr-defined]
    assert dict(headers)["Content-Length"] == "0"


def test_fast_cookie_jar_follows_rfc_6265() -> None:
    jar = _Jar()
    site = _Target("http://shop.example.test/cart/items?x=1")
    jar.store(
        site,
        [
            b"sid=1; Path=/",
            b"local=2",  # default path: /cart
            b"wide=3; Domain=.example.test; Path=/",
            b"other=4; Domain=elsewhere.test",  # not ours: ignored
            b"safe=5; Secure; Path=/",
            b"gone=6; Max-Age=0",
            b"old=7; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        ],
    )
    assert jar.header(site) == "local=2; sid=1; wide=3"  # the longest path first
    assert jar.header(_Target("http://shop.example.test/cartoon")) == "sid=1; wide=3"
    assert jar.header(_Target("http://example.test/")) == "wide=3"
    assert jar.header(_Target("http://api.example.test/cartoon")) == "wide=3"
    assert jar.header(_Target("https://shop.example.test/")) == "sid=1; wide=3; safe=5"
    jar.store(site, [b"sid=1; Path=/; Max-Age=0"])
    assert jar.header(_Target("http://shop.example.test/")) == "wide=3"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999/", "https://", "mailto:x@y", "http://exa mple.com:x/", "//no-scheme/"]
)
def test_fast_rejects_urls_it_cannot_request(url: str) -> None:
    with pytest.raises(InvalidURLError):
        _Target(url)


def test_fast_makes_basic_auth_from_the_url() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> RawServer:
        await client.get(base.replace("http://", "http://us%40r:p%3Ass@") + "/")
        return raw

    raw = with_raw_server(script(OK), test)
    assert b"\r\nAuthorization: Basic " + base64.b64encode(b"us@r:p:ss") + b"\r\n" in raw.requests[0]


def test_make_transport_knows_its_names() -> None:
    assert TRANSPORTS == ("fast", "aiohttp")
    assert isinstance(make_transport("fast"), FastTransport)
    assert isinstance(make_transport("aiohttp"), AiohttpTransport)
    with pytest.raises(ValueError, match="'curl'.*fast, aiohttp"):
        make_transport("curl")
    client = HttpClient(on_response=Reports())
    assert isinstance(client._transport, FastTransport)  # the default


# ---------------------------------------------------------------------------- the fast transport over TLS


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    x509 = pytest.importorskip("cryptography.x509", reason="needs the cryptography package")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "surge test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_file), str(key_file)


@asynccontextmanager
async def serving_tls(cert_file: str, key_file: str) -> AsyncIterator[str]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
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


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fast_speaks_tls_and_times_the_handshake_apart(tls_files: tuple[str, str], loop: str) -> None:
    cert_file, key_file = tls_files
    trusting = ssl.create_default_context(cafile=cert_file)

    async def main() -> tuple[Response, Response, Response, Response]:
        async with (
            serving_tls(cert_file, key_file) as base,
            HttpClient(on_response=Reports(), transport=FastTransport(ssl_context=trusting)) as client,
            HttpClient(on_response=Reports()) as default,
            HttpClient(on_response=Reports(), transport=FastTransport(verify_tls=False)) as insecure,
        ):
            first = await client.get(f"{base}/peer")
            second = await client.get(f"{base}/peer")
            return first, second, await default.get(f"{base}/peer"), await insecure.get(f"{base}/peer")

    first, second, untrusted, insecure = uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())
    assert (first.status, second.status, first.text) == (200, 200, second.text)
    assert first.timings.connecting > 0 and first.timings.tls_handshaking > 0
    assert first.timings.blocked >= first.timings.connecting + first.timings.tls_handshaking
    assert second.timings.connecting == second.timings.tls_handshaking == 0
    for resp in (first, second):
        assert_timings_add_up(resp.timings)
    assert (untrusted.status, untrusted.error_code, untrusted.error) == (0, 1310, "x509: unknown authority")
    assert insecure.status == 200


# ---------------------------------------------------------------------------- the fast transport's error rules


def _httptools_error_classes() -> set[type[BaseException]]:
    return {
        obj
        for _, obj in inspect.getmembers(httptools.parser.errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith("httptools")
    }


FAST_ERRORS: set[type[BaseException]] = {
    DialError,
    DialTimeoutError,
    ServerClosedError,
    TruncatedResponseError,
    InvalidURLError,
    zlib.error,
}

FAST_INTENDED_GENERIC = {ValueError, ServerClosedError, TruncatedResponseError}


def _fast_instance(cls: type[BaseException]) -> BaseException:
    if cls is DialError:
        return DialError(OSError(errno.EHOSTUNREACH, "no route"))
    return cls("boom")


def test_every_fast_transport_error_has_an_explicit_rule() -> None:
    httptools_errors = _httptools_error_classes()
    assert httptools.HttpParserError in httptools_errors and httptools.HttpParserUpgrade in httptools_errors
    classes = httptools_errors | FAST_ERRORS | STDLIB_ERRORS
    unmapped = sorted(c.__qualname__ for c in classes if c not in FAST_ERROR_RULES)
    assert unmapped == []
    for cls in classes:
        code, message = fast_classify_error(_fast_instance(cls))
        assert code in ErrorCode.__members__.values(), cls
        assert isinstance(message, str) and message, cls
        generic = cls in FAST_INTENDED_GENERIC or cls in httptools_errors
        assert (code == ErrorCode.GENERIC) == generic, cls
        assert isinstance(_fast_instance(cls), FAST_TRANSPORT_ERRORS), cls


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (DialError(ConnectionRefusedError(errno.ECONNREFUSED, "refused")), 1212, "dial: connection refused"),
        (DialError(OSError(errno.EHOSTUNREACH, "no route")), 1213, None),
        (DialError(OSError("Multiple exceptions: ...")), 1210, None),
        (DialError(socket.gaierror(socket.EAI_NONAME, "x")), 1101, "lookup: no such host"),
        (DialTimeoutError(), 1211, "dial: i/o timeout"),
        (TimeoutError(), 1050, "request timeout"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), 1220, "connection reset by peer"),
        (ServerClosedError(), 1000, "EOF (server closed the connection)"),
        (TruncatedResponseError(), 1000, "unexpected EOF"),
        (httptools.HttpParserInvalidStatusError("bad"), 1000, "malformed HTTP response"),
        (zlib.error("bad"), 1701, "error decompressing response body"),
        (InvalidURLError("x"), 1020, "invalid URL"),
        (_cert_error(62), 1311, "x509: certificate doesn't match hostname"),
    ],
)
def test_fast_classification_examples(exc: BaseException, code: int, message: str | None) -> None:
    got_code, got_message = fast_classify_error(exc)
    assert got_code == code
    assert message is None or got_message == message


_HEADS = st.sampled_from(
    [
        b"",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 404 Not Found\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n",
    ]
)
_FIELDS = st.lists(
    st.sampled_from(
        [
            b"Content-Length: 3\r\n",
            b"Content-Length: x\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Encoding: gzip\r\n",
            b"Connection: close\r\n",
            b"Set-Cookie: a=b; Max-Age=-1\r\n",
            b"\r\n",
        ]
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=_HEADS, fields=_FIELDS, tail=st.binary(max_size=40))
def test_fast_answers_whatever_the_server_sends(head: bytes, fields: list[bytes], tail: bytes) -> None:
    """A reply followed by a close: the transport returns a Response, never raises, never hangs."""
    reply = head + b"".join(fields) + tail

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/any", timeout=5)

    resp = with_raw_server(lambda n, _r: (reply, True) if n == 0 else (CLOSE, True), test)
    assert isinstance(resp, Response)
    if resp.status == 0:
        assert resp.error and resp.error_code in ErrorCode.__members__.values() and resp.error_code != 1050
    else:
        assert 200 <= resp.status <= 999 and resp.error == ""
    assert_timings_add_up(resp.timings)


def test_discard_response_bodies_drops_the_body_but_reports_the_request() -> None:
    client, _, reports = fake_client(Response("GET", "http://h/x", 200, body=b"a big page", bytes_received=90),
                                     discard_response_bodies=True)
    resp = run(lambda: client.get("http://h/x"))
    assert resp.body is None and resp.text == "" and resp.status == 200
    assert len(reports.calls) == 1 and reports.calls[0][0].bytes_received == 90  # read and counted, then dropped


def test_a_refused_request_yields_first_so_a_retrying_scenario_loop_can_be_stopped() -> None:
    # The fence (may_send False: the coordinator went quiet) refuses every request. A scenario
    # that retries whatever fails must still reach an await, or the cancel that stops its VU
    # would never land and its loop would spin.
    from surge.worker.http import HttpClient, LoadHalted

    async def main() -> tuple[int, bool]:
        client = HttpClient(on_response=lambda _r, _t: None, may_send=lambda: False)
        refused = 0

        async def vu() -> None:
            nonlocal refused
            for _ in range(1000):  # bounded, for the test's sake
                try:
                    await client.get("http://127.0.0.1:9/never-sent")
                except LoadHalted:
                    refused += 1

        task = asyncio.get_running_loop().create_task(vu())
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return refused, True
        return refused, False

    refused, cancelled = asyncio.run(main())
    assert cancelled and refused <= 1

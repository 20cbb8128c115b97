"""The VU's HTTP client: a fake transport where the seam is under test, a real aiohttp server
on 127.0.0.1 (port 0) for the transport, and a meta-test that every exception aiohttp can
raise has an explicit k6 error-code rule.

pytest-asyncio is not used: each test runs one coroutine with ``asyncio.run``. No assertion
bounds wall-clock time from above.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import inspect
import math
import pkgutil
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import pytest
import uvloop
from aiohttp import client_exceptions, http_exceptions, web
from aiohttp.client_reqrep import ConnectionKey
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from surge.worker.http import (
    ERROR_RULES,
    TRANSPORT_ERRORS,
    AiohttpTransport,
    ErrorCode,
    HttpClient,
    Response,
    Timings,
    classify_error,
)

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


def with_server(test: Callable[[str, HttpClient, Reports], Awaitable[None]], *, loop: str = "asyncio") -> Reports:
    reports = Reports()

    async def main() -> None:
        async with serving() as base, HttpClient(on_response=reports) as client:
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
def test_json_round_trip(loop: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.post(f"{base}/json", json={"n": 1}, tags={"name": "echo"})
        assert resp.status == 200 and resp.expected and resp.error == "" and resp.error_code == 0
        assert resp.json() == {"got": {"n": 1}, "ct": "application/json"}
        assert resp.headers["x-echo"] == "yes" and resp.headers["CONTENT-TYPE"].startswith("application/json")
        assert resp.url == f"{base}/json" and resp.method == "POST"
        assert resp.bytes_sent > len(b'{"n":1}') and resp.bytes_received > len(resp.body or b"")
        assert_timings_add_up(resp.timings)
        assert resp.timings.duration > 0 and resp.timings.connecting > 0

    reports = with_server(test, loop=loop)
    assert [(r.status, t) for r, t in reports.calls] == [(200, {"name": "echo"})]


def test_form_data() -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.post(f"{base}/form", data={"a": "1", "b": "x y"})
        assert resp.json() == {"a": "1", "b": "x y"}

    with_server(test)


def test_server_error_is_a_response_not_a_failure() -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/status/500")
        assert (resp.status, resp.error, resp.error_code, resp.expected, resp.text) == (500, "", 1500, False, "status")

    with_server(test)


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reports = Reports()

    async def main() -> Response:
        async with HttpClient(on_response=reports) as client:
            return await client.get(f"http://127.0.0.1:{port}/")

    resp = asyncio.run(main())
    assert (resp.status, resp.error_code, resp.error) == (0, 1212, "dial: connection refused")
    assert resp.body is None and not resp.expected
    assert_timings_add_up(resp.timings)
    assert reports.calls == [(resp, None)]


def test_timeout() -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/sleep", timeout=0.1)
        assert (resp.status, resp.error_code, resp.error) == (0, 1050, "request timeout")
        assert_timings_add_up(resp.timings)
        assert resp.timings.duration >= 90  # about the 100 ms spent, mostly waiting
        assert resp.timings.waiting >= 90

    reports = with_server(test)
    assert len(reports.calls) == 1


def test_a_timeout_while_dialling_is_a_dial_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(sock: socket.socket, address: object) -> None:
        await asyncio.sleep(10)

    async def main() -> Response:
        monkeypatch.setattr(asyncio.get_running_loop(), "sock_connect", never)  # the SYN is never answered
        async with HttpClient(on_response=Reports()) as client:
            return await client.get("http://127.0.0.1:9/", timeout=0.05)

    resp = asyncio.run(main())
    assert (resp.status, resp.error_code, resp.error) == (0, 1211, "dial: i/o timeout")
    assert resp.timings == Timings()  # no connection was ever held, as in k6


def test_reset_by_peer() -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/reset")
        assert resp.status == 0 and 1200 <= resp.error_code < 1300, resp
        assert_timings_add_up(resp.timings)

    with_server(test)


@pytest.mark.parametrize("url", ["not a url", "http://", "ftp://127.0.0.1/x", "http://[::1"])
def test_invalid_url(url: str) -> None:
    reports = Reports()

    async def main() -> Response:
        async with HttpClient(on_response=reports) as client:
            return await client.get(url)

    resp = asyncio.run(main())
    assert (resp.status, resp.error_code, resp.error) == (0, 1020, "invalid URL")
    assert len(reports.calls) == 1


def test_redirects_are_followed() -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/redirect/3")
        assert (resp.status, resp.text, resp.url) == (200, "landed", f"{base}/redirect/0")
        one_hop = await client.get(f"{base}/redirect/0")
        assert resp.bytes_received > one_hop.bytes_received  # every hop's bytes count
        see_other = await client.post(f"{base}/see-other", json={"a": 1})
        assert see_other.json() == {"method": "GET", "body": 0, "ct": None}

    reports = with_server(test)
    assert len(reports.calls) == 3


def test_too_many_redirects_returns_the_last_redirect_as_k6_does() -> None:
    reports = Reports()

    async def main() -> tuple[Response, Response]:
        async with serving() as base, HttpClient(on_response=reports, max_redirects=2) as client:
            exact = await client.get(f"{base}/redirect/2")
            over = await client.get(f"{base}/redirect/5")
            return exact, over

    exact, over = asyncio.run(main())
    assert exact.status == 200
    assert (over.status, over.error, over.error_code) == (302, "", 0)
    assert over.url.endswith("/redirect/3") and over.headers["Location"] == "/redirect/2"


def test_cookies_persist_per_client_not_across_clients() -> None:
    async def main() -> tuple[str, str, str]:
        async with (
            serving() as base,
            HttpClient(on_response=Reports()) as one,
            HttpClient(on_response=Reports()) as two,
        ):
            await one.get(f"{base}/set-cookie?v=one")
            seen_by_one = (await one.get(f"{base}/cookie")).text
            seen_by_two = (await two.get(f"{base}/cookie")).text
            await two.get(f"{base}/set-cookie?v=two")
            return seen_by_one, seen_by_two, (await one.get(f"{base}/cookie")).text

    assert asyncio.run(main()) == ("one", "", "one")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_keep_alive_reuses_one_connection(loop: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        first = await client.get(f"{base}/peer")
        second = await client.get(f"{base}/peer")
        assert first.text == second.text
        assert first.timings.connecting > 0 and second.timings.connecting == 0
        assert first.timings.blocked >= first.timings.connecting
        for resp in (first, second):
            assert_timings_add_up(resp.timings)

    with_server(test, loop=loop)


def test_bytes_grow_with_body_size() -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        small = await client.post(f"{base}/bytes/10", data=b"a" * 10)
        big = await client.post(f"{base}/bytes/100000", data=b"a" * 100_000)
        assert 0 < small.bytes_sent < big.bytes_sent and big.bytes_sent >= 100_000
        assert 0 < small.bytes_received < big.bytes_received and big.bytes_received >= 100_000
        assert len(big.body or b"") == 100_000

    with_server(test)


def test_head_and_options_read_no_body() -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        head = await client.head(f"{base}/method")
        assert head.status == 200 and head.body == b""
        options = await client.options(f"{base}/method")
        assert options.json()["method"] == "OPTIONS"
        patch = await client.patch(f"{base}/method", data="abc")
        assert patch.json() == {"method": "PATCH", "body": 3, "ct": None}

    with_server(test)


def test_closing_an_unused_transport_is_fine() -> None:
    asyncio.run(AiohttpTransport().close())


def test_a_request_cut_short_after_it_was_sent_is_still_reported() -> None:
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

    with_server(test)


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

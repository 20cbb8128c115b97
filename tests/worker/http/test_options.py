"""k6's request options on real sockets on 127.0.0.1, each test once per transport.

``userAgent``, no ``Accept-Encoding`` unless asked, ``noConnectionReuse``, ``noVUConnectionReuse``,
``hosts``, the ``dns`` cache, ``insecureSkipTLSVerify``, ``tlsVersion``, ``responseType``,
per-request ``redirects`` and ``http.batch`` with its limits. Raw scripted servers show what
went on the wire; no assertion bounds wall-clock time.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from surge import __version__
from surge.common.http_options import DnsOptions, HostAddress, HttpOptions
from surge.worker.http import ErrorCode, HttpClient, Response
from surge.worker.http.dns import Resolver
from surge.worker.http.transports import make_transport
from surge.worker.runner import _closing_idle_first
from surge.worker.vu import VU
from tests.worker.http.helpers import OK, FakeTransport, RawServer, Reports, raw_server, serving, serving_tls

T = TypeVar("T")


def always(reply: bytes) -> Callable[[int, bytes], tuple[bytes, bool]]:
    return lambda _n, _request: (reply, False)


def on_raw(
    transport: str,
    test: Callable[[str, RawServer, HttpClient], Awaitable[T]],
    *,
    reply: bytes = OK,
    options: HttpOptions | None = None,
    resolver: Resolver | None = None,
    **client: Any,
) -> T:
    """Run ``test`` against a raw server that answers ``reply`` to every request."""

    async def main() -> T:
        async with (
            raw_server(always(reply)) as (base, raw),
            HttpClient(on_response=Reports(), transport=make_transport(transport, options, resolver), **client) as c,
        ):
            return await test(base, raw, c)

    return asyncio.run(main())


def header_lines(request: bytes) -> list[str]:
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n")[1:]]


# ---------------------------------------------------------------------------- what is sent


@pytest.mark.parametrize(("user_agent", "sent"), [(None, f"surge/{__version__}"), ("shop-test/2", "shop-test/2"), ("", None)])
def test_user_agent_and_nothing_else_unasked(transport: str, user_agent: str | None, sent: str | None) -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> list[bytes]:
        await client.get(f"{base}/")
        return raw.requests

    (request,) = on_raw(transport, test, user_agent=user_agent)
    agents = [line for line in request.decode("latin-1").split("\r\n") if line.lower().startswith("user-agent:")]
    assert agents == ([] if sent is None else [f"User-Agent: {sent}"])
    # k6 turns Go's compression off, so no Accept-Encoding goes out unless the script sets one; nor Accept
    assert set(header_lines(request)) <= {"host", "user-agent"}


def test_an_accept_encoding_the_script_sets_is_sent_and_the_body_decoded(transport: str) -> None:
    body = gzip.compress(b"hello " * 100)
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, bytes]:
        resp = await client.get(f"{base}/", headers={"Accept-Encoding": "gzip"})
        return resp, raw.requests[0]

    resp, request = on_raw(transport, test, reply=reply)
    assert b"\r\nAccept-Encoding: gzip\r\n" in request
    assert resp.body == b"hello " * 100


def test_no_connection_reuse_dials_for_every_request_and_says_close(transport: str) -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> RawServer:
        for _ in range(3):
            assert (await client.get(f"{base}/")).status == 200
        return raw

    raw = on_raw(transport, test, options=HttpOptions(no_connection_reuse=True), no_connection_reuse=True)
    assert len(set(raw.peers)) == 3
    assert all(b"\r\nConnection: close\r\n" in request for request in raw.requests)
    reused = on_raw(transport, test)
    assert len(set(reused.peers)) == 1


def test_close_idle_makes_the_next_request_dial(transport: str) -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> list[int]:
        await client.get(f"{base}/")
        await client.get(f"{base}/")
        await client.close_idle()
        await client.get(f"{base}/")
        return raw.peers

    first, second, third = on_raw(transport, test)
    assert first == second != third


def test_no_vu_connection_reuse_closes_idle_connections_before_each_iteration() -> None:
    class Http:
        def __init__(self) -> None:
            self.events: list[str] = []

        async def close_idle(self) -> None:
            self.events.append("close_idle")

    http = Http()

    async def default(vu: VU) -> str:
        http.events.append(f"iteration {vu.iteration}")
        return "done"

    vu = VU(1, "s", {}, http, {})
    iteration = _closing_idle_first(default)
    assert asyncio.run(iteration(vu)) == "done"
    vu.iteration += 1
    asyncio.run(iteration(vu))
    assert http.events == ["close_idle", "iteration 0", "close_idle", "iteration 1"]


# ---------------------------------------------------------------------------- where it goes


def test_hosts_send_a_name_to_an_address_with_no_lookup(transport: str) -> None:
    class NoDns:
        async def __call__(self, host: str) -> list[str]:
            raise AssertionError(f"looked up {host}")

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        port = base.rpartition(":")[2]
        named = await client.get(f"http://shop.surge-test.invalid:{port}/a")
        moved = await client.get("http://api.surge-test.invalid/b")  # port 80 in the URL, the server's in hosts
        return named, moved, raw

    async def main() -> tuple[Response, Response, RawServer]:
        async with raw_server(always(OK)) as (base, raw):
            port = int(base.rpartition(":")[2])
            hosts = {
                "*.surge-test.invalid": HostAddress("127.0.0.1"),
                "api.surge-test.invalid:80": HostAddress("127.0.0.1", port),
            }
            resolver = Resolver(hosts=hosts, lookup=NoDns())
            async with HttpClient(on_response=Reports(), transport=make_transport(transport, None, resolver)) as c:
                return await test(base, raw, c)

    named, moved, raw = asyncio.run(main())
    assert (named.status, moved.status) == (200, 200)
    host = urlsplit(named.url).netloc
    assert f"\r\nHost: {host}\r\n".encode() in raw.requests[0] and host.startswith("shop.")  # the name, not the IP
    assert b"\r\nHost: api.surge-test.invalid\r\n" in raw.requests[1]


@pytest.mark.parametrize(("ttl_s", "lookups"), [(300.0, 1), (0.0, 3)])
def test_the_dns_cache_spares_a_lookup_per_dial(transport: str, ttl_s: float, lookups: int) -> None:
    asked: list[str] = []

    async def lookup(host: str) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    async def test(base: str, raw: RawServer, client: HttpClient) -> None:
        port = base.rpartition(":")[2]
        for _ in range(3):  # a new connection each time: every dial needs an address
            assert (await client.get(f"http://cached.surge-test.invalid:{port}/")).status == 200

    resolver = Resolver(DnsOptions(ttl_s=ttl_s), lookup=lookup)
    on_raw(transport, test, options=HttpOptions(no_connection_reuse=True), resolver=resolver, no_connection_reuse=True)
    assert asked == ["cached.surge-test.invalid"] * lookups


def test_a_name_that_does_not_resolve_is_1101(transport: str) -> None:
    resolver = Resolver(DnsOptions(policy="onlyIPv6"), lookup=lambda host: _v4_only(host))

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get("http://v4.surge-test.invalid/")

    resp = on_raw(transport, test, resolver=resolver)
    assert (resp.status, resp.error_code, resp.error) == (0, ErrorCode.DNS_NO_IP, "lookup: no such host")


async def _v4_only(host: str) -> list[str]:
    return ["127.0.0.1"]


# ---------------------------------------------------------------------------- TLS


def tls_get(transport: str, cert: tuple[str, str], options: HttpOptions, **server: Any) -> Response:
    async def main() -> Response:
        async with (
            serving_tls(*cert, **server) as base,
            HttpClient(on_response=Reports(), transport=make_transport(transport, options)) as client,
        ):
            return await client.get(f"{base}/peer")

    return asyncio.run(main())


def test_insecure_skip_tls_verify_accepts_a_self_signed_certificate(transport: str, tls_files: tuple[str, str]) -> None:
    refused = tls_get(transport, tls_files, HttpOptions())
    assert (refused.status, refused.error_code) == (0, ErrorCode.TLS_UNKNOWN_AUTHORITY)
    accepted = tls_get(transport, tls_files, HttpOptions(insecure_skip_tls_verify=True))
    assert accepted.status == 200


def test_tls_version_bounds_the_handshake(transport: str, tls_files: tuple[str, str]) -> None:
    insecure = HttpOptions(insecure_skip_tls_verify=True)
    up_to_12 = {"max_version": ssl.TLSVersion.TLSv1_2}
    too_new = tls_get(transport, tls_files, replace(insecure, tls_min="tls1.3"), **up_to_12)
    # The server answers a TLS 1.3-only hello with an alert and a close, which the client may
    # read as a TLS failure or as the connection dropped in the handshake: either, not a response.
    assert too_new.status == 0 and 1200 <= too_new.error_code < 1400, too_new
    assert tls_get(transport, tls_files, replace(insecure, tls_min="tls1.2", tls_max="tls1.2"), **up_to_12).status == 200
    assert tls_get(transport, tls_files, replace(insecure, tls_min="tls1.3")).status == 200


# ---------------------------------------------------------------------------- per request


def test_response_type_per_request_overrides_discard_response_bodies(transport: str) -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> list[Response]:
        return [
            await client.get(f"{base}/"),
            await client.get(f"{base}/", response_type="text"),
            await client.get(f"{base}/", response_type="binary"),
        ]

    dropped, text, binary = on_raw(transport, test, discard_response_bodies=True)
    assert dropped.body is None and dropped.bytes_received > 0
    assert text.body == b"ok" == binary.body

    async def none(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/", response_type="none")

    kept_by_default = on_raw(transport, none)
    assert kept_by_default.body is None and kept_by_default.bytes_received > 0


def test_response_type_reaches_the_transport_and_a_bad_one_is_refused() -> None:
    fake = FakeTransport()

    async def main() -> None:
        client = HttpClient(on_response=Reports(), transport=fake)
        await client.get("http://h/", response_type="none")
        await client.get("http://h/")
        with pytest.raises(ValueError, match="response_type must be one of text, binary, none"):
            await client.get("http://h/", response_type="json")
        with pytest.raises(ValueError, match="redirects must be a whole number"):
            await client.get("http://h/", redirects=-1)

    asyncio.run(main())
    assert fake.kept == [False, True]


def test_redirects_per_request(transport: str) -> None:
    async def main() -> tuple[Response, Response, Response]:
        async with serving() as base, HttpClient(on_response=Reports(), transport=make_transport(transport)) as c:
            return (
                await c.get(f"{base}/redirect/3", redirects=0),
                await c.get(f"{base}/redirect/3", redirects=1),
                await c.get(f"{base}/redirect/3"),
            )

    none, one, all_of_them = asyncio.run(main())
    assert (none.status, none.hops) == (302, ())
    assert (one.status, [h.status for h in one.hops], one.url.rpartition("/")[2]) == (302, [302], "2")
    assert (all_of_them.status, len(all_of_them.hops)) == (200, 3)


# ---------------------------------------------------------------------------- http.batch


def test_batch_takes_k6s_shapes_and_keeps_their_order(transport: str) -> None:
    async def main() -> tuple[list[Response], dict[str, Response], Reports]:
        reports = Reports()
        async with serving() as base, HttpClient(on_response=reports, transport=make_transport(transport)) as c:
            listed = await c.batch([
                f"{base}/status/201",
                ("POST", f"{base}/method", "abc"),
                ("PUT", f"{base}/method", None, {"headers": {"Content-Type": "text/plain"}, "tags": {"k": "v"}}),
                {"method": "GET", "url": f"{base}/method", "body": "dropped, as k6 drops a GET's body"},
                {"method": "patch", "url": f"{base}/method", "body": "xy", "params": {"responseType": "none"}},
            ])  # fmt: skip
            named = await c.batch({"a": f"{base}/status/202", "b": ["DELETE", f"{base}/method"]})
        return listed, named, reports

    listed, named, reports = asyncio.run(main())
    assert [r.status for r in listed] == [201, 200, 200, 200, 200]
    assert [r.json()["method"] for r in listed[1:4]] == ["POST", "PUT", "GET"]
    assert [r.json()["body"] for r in listed[1:4]] == [3, 0, 0]
    assert listed[2].json()["ct"] == "text/plain" and listed[4].body is None
    assert list(named) == ["a", "b"] and (named["a"].status, named["b"].json()["method"]) == (202, "DELETE")
    assert len(reports.calls) == 7 and ({"k": "v"} in [tags for _, tags in reports.calls])


@asynccontextmanager
async def counting_server(limit: int) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that holds each request until ``limit`` are in flight (or 5 s pass): ``peak[0]`` is the most seen."""
    peak, inflight = [0], [0]
    reached = asyncio.Event()

    async def hold(_request: web.Request) -> web.Response:
        inflight[0] += 1
        peak[0] = max(peak[0], inflight[0])
        if inflight[0] >= limit:
            reached.set()
        try:
            await asyncio.wait_for(reached.wait(), 5.0)
        except TimeoutError:
            pass  # the limit was never reached: peak says so
        inflight[0] -= 1
        return web.Response(text="held")

    app = web.Application()
    app.router.add_get("/hold", hold)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", peak
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("batch", "per_host", "peak"), [(20, 2, 2), (3, 0, 3), (3, 6, 3)])
def test_batch_and_batch_per_host_bound_the_requests_in_flight(
    transport: str, batch: int, per_host: int, peak: int
) -> None:
    async def main() -> tuple[list[Response], int]:
        async with counting_server(peak) as (base, seen):
            transport_ = make_transport(transport, HttpOptions(batch_per_host=per_host or 6))
            async with HttpClient(on_response=Reports(), transport=transport_, batch=batch,
                                  batch_per_host=per_host) as client:  # fmt: skip
                responses = await client.batch([f"{base}/hold"] * 7)
            return responses, seen[0]

    responses, seen = asyncio.run(main())
    assert [r.status for r in responses] == [200] * 7
    assert seen == peak


def test_a_malformed_batch_sends_nothing() -> None:
    fake = FakeTransport()

    async def main() -> None:
        client = HttpClient(on_response=Reports(), transport=fake)
        for bad, error in [
            ([("GET",)], ValueError),
            ([{"method": "GET"}], ValueError),
            (["http://h/ok", 5], TypeError),
            ([("GET", b"http://h/")], TypeError),
            ([("GET", "http://h/", None, "params")], TypeError),
            ("http://h/", TypeError),
        ]:
            with pytest.raises(error):
                await client.batch(bad)  # type: ignore[arg-type]

    asyncio.run(main())
    assert fake.sent == []


@pytest.mark.parametrize("per_host", [3, 0])
def test_a_batchs_connections_are_kept_for_the_next_one_up_to_batch_per_host(transport: str, per_host: int) -> None:
    # Go keeps MaxIdleConnsPerHost idle connections, 2 when batchPerHost is 0; aiohttp's pool has
    # no idle bound apart from its per-host limit, so with none it keeps all three.
    kept = per_host or (2 if transport == "fast" else 3)

    async def test(base: str, raw: RawServer, client: HttpClient) -> list[int]:
        async with counting_server(3) as (held, _):
            first = await client.batch([f"{held}/hold"] * 3)  # three in flight at once: three connections
            assert [r.status for r in first] == [200] * 3
            second = await client.batch([f"{held}/hold"] * 3)
            return [r.timings.connecting == 0 for r in second]  # reused: no dial

    reused = on_raw(transport, test, options=HttpOptions(batch_per_host=per_host), batch_per_host=per_host)
    assert sum(reused) == kept

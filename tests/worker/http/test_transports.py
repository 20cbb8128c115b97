"""Both transports against a real aiohttp server on 127.0.0.1 (port 0): every test runs once
with each, since both must meet the same contract.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from surge.worker.http import HttpClient, Response, Timings
from surge.worker.http.transports import TRANSPORTS, make_transport
from surge.worker.http.transports.aiohttp import AiohttpTransport
from surge.worker.http.transports.fast import FastTransport
from tests.worker.http.helpers import (
    FakeTransport,
    HOLDING,
    Reports,
    _apps,
    assert_timings_add_up,
    client_with,
    run,
    serving,
    with_server,
)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_json_round_trip(loop: str, transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.post(f"{base}/json", json={"n": 1}, tags={"name": "echo"})
        assert resp.status == 200 and resp.expected and resp.error == "" and resp.error_code == 0
        assert resp.json() == {"got": {"n": 1}, "ct": "application/json"}
        assert resp.headers["x-echo"] == "yes" and resp.headers["CONTENT-TYPE"].startswith("application/json")
        assert resp.url == f"{base}/json" and resp.method == "POST" and resp.proto == "HTTP/1.1"
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
    assert resp.body is None and not resp.expected and resp.proto == ""
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


def test_each_request_on_a_kept_alive_connection_has_its_own_timeout(transport: str) -> None:
    # The fast transport keeps one timer per connection across exchanges (a timer per request
    # costs ~5 % of one): a short timeout must not outlive its request, and a shorter one
    # than the last must still be kept.
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        quick = await client.get(f"{base}/status/200", timeout=0.05)
        slow = await client.get(f"{base}/sleep", timeout=5.0)  # 1 s, past the first's deadline
        assert (quick.status, slow.status, slow.text) == (200, 200, "late")
        assert slow.timings.connecting == 0.0  # the same connection
        again = await client.get(f"{base}/status/200", timeout=60.0)
        late = await client.get(f"{base}/sleep", timeout=0.1)
        assert again.status == 200 and again.timings.connecting == 0.0
        assert (late.status, late.error_code) == (0, 1050)

    with_server(test, transport=transport)


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


def test_redirects_are_followed_and_each_hop_is_a_request_of_its_own(transport: str) -> None:
    async def test(base: str, client: HttpClient, reports: Reports) -> None:
        resp = await client.get(f"{base}/redirect/3", tags={"t": "x"})
        assert (resp.status, resp.text, resp.url) == (200, "landed", f"{base}/redirect/0")
        assert [(h.method, h.status, h.url, h.body) for h in resp.hops] == [
            ("GET", 302, f"{base}/redirect/{n}", None) for n in (3, 2, 1)
        ]
        for hop in resp.hops:  # each with its own timings and bytes, as k6 samples each hop
            assert hop.bytes_sent > 0 and hop.bytes_received > 0 and hop.timings.duration > 0
            assert_timings_add_up(hop.timings)
        one_hop = await client.get(f"{base}/redirect/0")
        assert resp.bytes_sent == one_hop.bytes_sent  # the final hop's own bytes, not the chain's
        see_other = await client.post(f"{base}/see-other", json={"a": 1})
        assert see_other.json() == {"method": "GET", "body": 0, "ct": None}
        assert [(h.method, h.status) for h in see_other.hops] == [("POST", 303)]

    reports = with_server(test, transport=transport)
    assert [(r.method, r.status, r.url.rpartition("/")[2], tags) for r, tags in reports.calls] == [
        ("GET", 302, "3", {"t": "x"}),
        ("GET", 302, "2", {"t": "x"}),
        ("GET", 302, "1", {"t": "x"}),
        ("GET", 200, "0", {"t": "x"}),
        ("GET", 200, "0", None),
        ("POST", 303, "see-other", None),
        ("GET", 200, "method", None),
    ]


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


def test_make_transport_knows_its_names() -> None:
    assert TRANSPORTS == ("fast", "aiohttp")
    assert isinstance(make_transport("fast"), FastTransport)
    assert isinstance(make_transport("aiohttp"), AiohttpTransport)
    with pytest.raises(ValueError, match="'curl'.*fast, aiohttp"):
        make_transport("curl")

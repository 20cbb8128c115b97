"""The client (k6's request API) over a fake transport: argument handling, reporting, the
Response model, ``discardResponseBodies`` and the fence.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.worker.http import HttpClient, LoadHalted, Response
from surge.worker.http.transports.fast import FastTransport
from tests.worker.http.helpers import fake_client, run


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
    async def main() -> tuple[int, bool]:
        client = HttpClient(on_response=lambda _r, _t: None, transport=FastTransport(), may_send=lambda: False)
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


_names = st.sampled_from(["User-Agent", "user-agent", "Content-Type", "content-type", "X-A", "x-a", "Accept"])
_headers = st.one_of(st.none(), st.dictionaries(_names, st.text(max_size=5), max_size=4))


@given(base=st.dictionaries(_names, st.text(max_size=5), max_size=3), headers=_headers,
       content_type=st.one_of(st.none(), st.just("application/json")))
def test_merged_headers_are_base_then_the_callers_then_content_type_one_object_for_equal_inputs(
    base: dict[str, str], headers: dict[str, str] | None, content_type: str | None
) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from surge.worker.http.client import _merged_headers

    shared = CIMultiDictProxy(CIMultiDict(base))
    expected = CIMultiDict(shared)
    for name, value in (headers or {}).items():
        expected[name] = value
    if content_type is not None and "Content-Type" not in expected:
        expected["Content-Type"] = content_type
    merged = _merged_headers(shared, headers, content_type)
    assert list(merged.items()) == list(expected.items())
    again = _merged_headers(shared, dict(headers) if headers is not None else None, content_type)
    assert again is merged  # equal inputs, one read-only object (the fast transport keeps its bytes)
    with pytest.raises(TypeError):
        merged["X-New"] = "1"  # type: ignore[index]

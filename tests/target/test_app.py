"""The demo target, served for real on 127.0.0.1 and hit with a real aiohttp client.

pytest-asyncio is not used: each test is a plain function that runs one coroutine with
``asyncio.run``. Latency is 0 unless a test is about latency, so the file stays fast, and no
test asserts an upper bound on wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from surge.target import (
    CHECKOUT_PATH,
    DEMO_ANON_KEY,
    RunningTarget,
    TargetConfig,
    TargetStats,
    start_target,
)

T = TypeVar("T")

FAST = TargetConfig(port=0, latency_median_ms=0.0, seed=1)
HEADERS = {"Authorization": f"Bearer {DEMO_ANON_KEY}", "apikey": DEMO_ANON_KEY}
ORDER: dict[str, Any] = {
    "eventId": "evt_123",
    "ticketTypeId": "tt_general",
    "quantity": 2,
    "email": "vu@example.com",
    "successUrl": "https://example.com/success",
    "cancelUrl": "http://example.com/cancel",
}
CHECKOUT_URL = re.compile(r"https://checkout\.stripe\.com/c/pay/(cs_test_[A-Za-z0-9]{32})")
REPO_ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def serving(
    config: TargetConfig = FAST, connector_limit: int = 100
) -> AsyncIterator[tuple[RunningTarget, aiohttp.ClientSession]]:
    target = await start_target(config)
    try:
        connector = aiohttp.TCPConnector(limit=connector_limit)
        async with aiohttp.ClientSession(base_url=target.url, connector=connector) as session:
            yield target, session
    finally:
        await target.stop()


def run_with_target(
    test: Callable[[RunningTarget, aiohttp.ClientSession], Awaitable[T]],
    config: TargetConfig = FAST,
) -> T:
    async def main() -> T:
        async with serving(config) as (target, session):
            return await test(target, session)

    return asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition``; the 5 s limit only turns a hang into a failure, it measures nothing."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.005)


async def post(
    session: aiohttp.ClientSession,
    body: Any = ORDER,
    headers: dict[str, str] = HEADERS,
) -> tuple[int, Any]:
    async with session.post(CHECKOUT_PATH, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


def test_valid_order_gets_a_checkout_url() -> None:
    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> None:
        async with session.post(CHECKOUT_PATH, json=ORDER, headers=HEADERS) as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            body = await resp.json()
        match = CHECKOUT_URL.fullmatch(body["url"])
        assert match is not None, body
        assert body["sessionId"] == match.group(1)

    run_with_target(test)


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"apikey": DEMO_ANON_KEY}, "Authorization"),
        ({"Authorization": "Bearer wrong", "apikey": DEMO_ANON_KEY}, "Authorization"),
        ({"Authorization": DEMO_ANON_KEY, "apikey": DEMO_ANON_KEY}, "Authorization"),
        ({"Authorization": f"Bearer {DEMO_ANON_KEY}"}, "apikey"),
        ({"Authorization": f"Bearer {DEMO_ANON_KEY}", "apikey": "wrong"}, "apikey"),
        ({}, "Authorization"),
    ],
    ids=["no-bearer", "wrong-bearer", "no-bearer-prefix", "no-apikey", "wrong-apikey", "none"],
)
def test_missing_or_wrong_key_is_401_naming_the_header(headers: dict[str, str], named: str) -> None:
    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> tuple[int, Any]:
        return await post(session, headers=headers)

    status, body = run_with_target(test)
    assert status == 401
    assert named in body["error"]


def test_a_custom_anon_key_replaces_the_demo_key() -> None:
    config = replace(FAST, anon_key="other-key")

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> list[int]:
        demo = await post(session)
        other = await post(
            session, headers={"Authorization": "Bearer other-key", "apikey": "other-key"}
        )
        return [demo[0], other[0]]

    assert run_with_target(test, config) == [401, 200]


BAD_FIELDS: list[tuple[str, Any]] = [
    ("eventId", None),  # None means: leave the field out
    ("eventId", ""),
    ("eventId", 123),
    ("ticketTypeId", None),
    ("ticketTypeId", ""),
    ("ticketTypeId", ["tt"]),
    ("quantity", None),
    ("quantity", 0),
    ("quantity", 11),
    ("quantity", -1),
    ("quantity", 2.0),
    ("quantity", "2"),
    ("quantity", True),
    ("email", None),
    ("email", "no-at-sign"),
    ("email", 5),
    ("successUrl", None),
    ("successUrl", "ftp://example.com"),
    ("successUrl", "example.com/success"),
    ("cancelUrl", None),
    ("cancelUrl", "/cancel"),
    ("cancelUrl", {"url": "https://example.com"}),
]


@pytest.mark.parametrize(
    ("field_name", "value"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v in BAD_FIELDS]
)
def test_bad_field_is_400_naming_it(field_name: str, value: Any) -> None:
    order = dict(ORDER)
    if value is None:
        del order[field_name]
    else:
        order[field_name] = value

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> tuple[int, Any]:
        return await post(session, body=order)

    status, body = run_with_target(test)
    assert status == 400
    assert body["field"] == field_name
    assert body["error"]


def test_quantity_bounds_are_inclusive() -> None:
    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> list[int]:
        return [(await post(session, body={**ORDER, "quantity": q}))[0] for q in (1, 10)]

    assert run_with_target(test) == [200, 200]


def test_first_bad_field_is_the_one_named() -> None:
    order = {**ORDER, "quantity": 0, "email": "nope"}

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> tuple[int, Any]:
        return await post(session, body=order)

    assert run_with_target(test) == (
        400,
        {"error": "'quantity' must be within 1..10", "field": "quantity"},
    )


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe", b"[1, 2]", b'"order"', b"null"])
def test_body_that_is_not_a_json_object_is_400(raw: bytes) -> None:
    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> tuple[int, Any]:
        async with session.post(CHECKOUT_PATH, data=raw, headers=HEADERS) as resp:
            return resp.status, await resp.json()

    status, body = run_with_target(test)
    assert status == 400
    assert body["error"]
    assert "field" not in body


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_and_counted(method: str) -> None:
    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> tuple[int, str]:
        async with session.request(method, CHECKOUT_PATH, headers=HEADERS) as resp:
            await resp.read()
            return resp.status, resp.headers["Allow"]

    async def counted(target: RunningTarget, session: aiohttp.ClientSession) -> dict[str, Any]:
        assert await test(target, session) == (405, "POST")
        return target.stats.snapshot()

    snapshot = run_with_target(counted)
    assert snapshot["requests"] == 1
    assert snapshot["by_status"] == {"405": 1}


def test_error_rate_one_injects_the_configured_status() -> None:
    config = replace(FAST, error_rate=1.0, error_status=503)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> list[tuple[int, Any]]:
        return [await post(session) for _ in range(5)]

    assert run_with_target(test, config) == [(503, {"error": "injected failure"})] * 5


def test_error_rate_is_applied_after_validation() -> None:
    config = replace(FAST, error_rate=1.0)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> list[int]:
        return [
            (await post(session, headers={}))[0],
            (await post(session, body={**ORDER, "email": "x"}))[0],
            (await post(session))[0],
        ]

    assert run_with_target(test, config) == [401, 400, 500]


def test_error_rate_share_is_binomial() -> None:
    n, p = 200, 0.3
    config = replace(FAST, error_rate=p, seed=7)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> list[int]:
        results = await asyncio.gather(*(post(session) for _ in range(n)))
        return [status for status, _ in results]

    statuses = run_with_target(test, config)
    assert set(statuses) <= {200, 500}
    failures = statuses.count(500)
    sd = (n * p * (1 - p)) ** 0.5  # ~6.5
    assert abs(failures - n * p) < 5 * sd


def test_same_seed_gives_the_same_session_ids_and_failures() -> None:
    config = replace(FAST, error_rate=0.5, seed=42)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> list[tuple[int, Any]]:
        return [await post(session) for _ in range(20)]

    first = run_with_target(test, config)
    second = run_with_target(test, config)
    assert first == second
    assert {status for status, _ in first} == {200, 500}
    assert run_with_target(test, replace(config, seed=43)) != first


def test_latency_is_at_least_the_median_when_sigma_is_zero() -> None:
    config = replace(FAST, latency_median_ms=20.0, latency_sigma=0.0)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> list[float]:
        elapsed_s = []
        for _ in range(3):
            started = time.perf_counter()
            assert (await post(session))[0] == 200
            elapsed_s.append(time.perf_counter() - started)
        return elapsed_s

    assert min(run_with_target(test, config)) >= 0.020


def test_latency_is_capped() -> None:
    # A 10-minute median capped at 1 ms: the request must come back; only the cap allows it.
    config = replace(FAST, latency_median_ms=600_000.0, latency_max_ms=1.0)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> int:
        return (await post(session))[0]

    assert run_with_target(test, config) == 200


def test_stats_count_every_request_exactly_and_not_their_own_endpoints() -> None:
    config = replace(FAST, error_rate=0.25, seed=3)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> None:
        ok_or_injected = await asyncio.gather(*(post(session) for _ in range(40)))
        unauthorized = await asyncio.gather(*(post(session, headers={}) for _ in range(7)))
        invalid = await asyncio.gather(*(post(session, body={}) for _ in range(5)))
        async with session.get(CHECKOUT_PATH) as resp:
            assert resp.status == 405
        for _ in range(3):  # none of these count
            async with session.get("/__surge/stats") as resp:
                assert resp.status == 200
            async with session.get("/health") as resp:
                assert resp.status == 200
                assert await resp.text() == "ok"

        async with session.get("/__surge/stats") as resp:
            snapshot = await resp.json()
        injected = sum(1 for status, _ in ok_or_injected if status == 500)
        assert 0 < injected < 40
        assert snapshot == {
            "requests": 53,
            "completed": 53,
            "in_flight": 0,
            "by_status": {"200": 40 - injected, "400": 5, "401": 7, "405": 1, "500": injected},
            "by_client": {"127.0.0.1": 53},
            "catalog_requests": 0,
        }
        assert target.stats.snapshot() == snapshot
        json.dumps(snapshot)  # JSON-able as promised
        assert len(unauthorized) == 7 and len(invalid) == 5

    run_with_target(test, config)


def test_in_flight_counts_requests_that_are_sleeping() -> None:
    config = replace(FAST, latency_median_ms=300.0, latency_sigma=0.0)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> None:
        pending = [asyncio.ensure_future(post(session)) for _ in range(4)]
        await until(lambda: target.stats.in_flight == 4)
        assert target.stats.requests == 4
        assert target.stats.completed == 0
        assert [status for status, _ in await asyncio.gather(*pending)] == [200] * 4
        assert target.stats.in_flight == 0
        assert target.stats.completed == 4

    run_with_target(test, config)


def test_a_client_that_gives_up_does_not_cancel_the_request() -> None:
    config = replace(FAST, latency_median_ms=200.0, latency_sigma=0.0)

    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> dict[str, Any]:
        with pytest.raises(asyncio.TimeoutError):
            await post_with_timeout(session, aiohttp.ClientTimeout(total=0.02))
        await until(lambda: target.stats.completed == 1)  # the handler sleeps and answers anyway
        return target.stats.snapshot()

    snapshot = run_with_target(test, config)
    assert snapshot == {
        "requests": 1, "completed": 1, "in_flight": 0, "by_status": {"200": 1}, "by_client": {"127.0.0.1": 1}, "catalog_requests": 0,
    }


async def post_with_timeout(session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> None:
    async with session.post(CHECKOUT_PATH, json=ORDER, headers=HEADERS, timeout=timeout) as resp:
        await resp.read()


def test_reset_zeroes_the_counters() -> None:
    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> None:
        for _ in range(3):
            await post(session)
        async with session.post("/__surge/reset") as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "requests": 0,
                "completed": 0,
                "in_flight": 0,
                "by_status": {},
                "by_client": {},
                "catalog_requests": 0,
            }
        await post(session, headers={})
        async with session.get("/__surge/stats") as resp:
            assert (await resp.json())["by_status"] == {"401": 1}
        assert target.stats.requests == 1

    run_with_target(test)


def test_stats_reset_keeps_in_flight() -> None:
    stats = TargetStats(requests=5, completed=3, by_status={200: 3}, in_flight=2, by_client={"10.0.0.7": 5})
    stats.reset()
    assert stats.snapshot() == {"requests": 0, "completed": 0, "in_flight": 2, "by_status": {}, "by_client": {},
                                "catalog_requests": 0}


def test_by_client_counts_each_source_address_on_arrival() -> None:
    # Linux answers on all of 127.0.0.0/8, so two client addresses need no network of their own.
    async def test(target: RunningTarget, session: aiohttp.ClientSession) -> dict[str, Any]:
        for _ in range(3):
            await post(session)
        await post(session, headers={})  # refused (401), still counted for its sender
        other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(base_url=target.url, connector=other) as second:
            for _ in range(2):
                await post(second)
            async with second.get("/__surge/stats") as resp:  # not counted, like every bookkeeping call
                return dict(await resp.json())

    snapshot = run_with_target(test)
    assert snapshot["by_client"] == {"127.0.0.1": 4, "127.0.0.2": 2}
    assert sum(snapshot["by_client"].values()) == snapshot["requests"] == 6


def test_port_zero_binds_a_real_port_and_the_url_says_which() -> None:
    async def main() -> None:
        first = await start_target(FAST)
        second = await start_target(FAST)
        try:
            assert first.url != second.url
            for target in (first, second):
                match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", target.url)
                assert match is not None and int(match.group(1)) > 0
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(target.url + "/health") as resp,
                ):
                    assert resp.status == 200
        finally:
            await first.stop()
            await second.stop()

    asyncio.run(main())


def test_keep_alive_connections_are_reused() -> None:
    async def main() -> int:
        created = 0

        async def on_create(*_: object) -> None:
            nonlocal created
            created += 1

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(on_create)
        target = await start_target(FAST)
        try:
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(
                base_url=target.url, connector=connector, trace_configs=[trace]
            ) as session:
                statuses = [(await post(session, body=body))[0] for body in (ORDER, {}, ORDER)]
                assert statuses == [200, 400, 200]
        finally:
            await target.stop()
        return created

    assert asyncio.run(main()) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"port": -1},
        {"port": 70000},
        {"anon_key": ""},
        {"latency_median_ms": -1.0},
        {"latency_median_ms": float("nan")},
        {"latency_sigma": -0.1},
        {"latency_max_ms": -1.0},
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"error_status": 42},
    ],
)
def test_config_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        TargetConfig(**bad)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_target_serves_until_signalled_and_returns(signum: int) -> None:
    code = (
        "from surge.target import TargetConfig, run_target\n"
        "run_target(TargetConfig(port=0, latency_median_ms=0.0))\n"
        "print('returned', flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"surge demo target listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match is not None, line

        async def health() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.get(match.group(1) + "/health") as resp,
            ):
                return resp.status

        assert asyncio.run(health()) == 200
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert stdout == "returned\n"
    assert stderr == ""


def test_the_catalog_answers_the_shop_journey_and_counts_apart_from_checkout() -> None:
    async def main() -> tuple[RunningTarget, list[Any]]:
        target = await start_target(replace(FAST))
        try:
            async with aiohttp.ClientSession(target.url) as session:
                got: list[Any] = []
                for path, params in (("/shop/events", {}), ("/shop/events/12345", {}), ("/shop/events/nope", {}),
                                     ("/shop/search", {"q": "jazz"})):
                    async with session.get(path, params=params) as resp:
                        got.append((resp.status, await resp.json()))
        finally:
            await target.stop()
        return target, got

    target, got = asyncio.run(main())

    (s1, listed), (s2, one), (s3, _), (s4, found) = got
    assert (s1, s2, s3, s4) == (200, 200, 404, 200)
    assert len(listed["events"]) == 8 and one["id"] == 12345
    assert [e["name"] for e in found["events"]] == ["jazz night 1"]
    assert target.stats.catalog_requests == 4 and target.stats.requests == 0

"""The recorder's per-endpoint rows: what names a request, and the cap that bounds them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from surge.common.api import group
from surge.common.endpoint_stats import (
    DATA_RECEIVED,
    DURATION,
    FAILURES,
    OVERFLOW,
    OVERFLOW_NAMES,
    EndpointRow,
    failure_tags,
    parse_endpoint_key,
)
from surge.common.metrics import CounterSink, Sink, TrendSink
from surge.worker.http import HttpClient, Response, Timings
from surge.worker.recorder import Recorder, vu_tags


def _resp(url: str, status: int = 200, *, method: str = "GET", duration: float = 10.0, error_code: int = 0) -> Response:
    r = Response(method=method, url=url, status=status, error_code=error_code or (1000 + status if status >= 400 else 0))
    r.timings = Timings(waiting=duration, duration=duration)
    r.bytes_sent, r.bytes_received = 100, 250
    return r


def _rows(series: Mapping[str, Sink]) -> dict[EndpointRow, int]:
    """Row -> its requests in this flush."""
    out = {}
    for key, sink in series.items():
        parsed = parse_endpoint_key(key)
        if parsed is not None and parsed.metric == DURATION:
            assert isinstance(sink, TrendSink)
            out[parsed.row] = sink.sketch.count
    return out


def test_a_request_is_counted_under_its_name_method_group_and_scenario() -> None:
    rec = Recorder(clock=lambda: 0.0, metric_defs={})
    token = vu_tags.set({"scenario": "shoppers"})
    try:
        rec.record_http(_resp("http://h/shop/events"), None)
        rec.record_http(_resp("http://h/shop/events"), None)
        rec.record_http(_resp("http://h/shop/events", method="HEAD"), None)
        with group("checkout"):
            rec.record_http(_resp("http://h/pay?id=9", 503, method="POST", duration=30.0), {"name": "checkout"})
    finally:
        vu_tags.reset(token)
    series, _ = rec.flush()

    checkout = EndpointRow("checkout", "POST", "shoppers", "::checkout")
    assert _rows(series) == {EndpointRow("http://h/shop/events", "GET", "shoppers"): 2,
                             EndpointRow("http://h/shop/events", "HEAD", "shoppers"): 1, checkout: 1}
    failures = series[checkout.key(FAILURES, *failure_tags(503, 1503))]
    received = series[checkout.key(DATA_RECEIVED)]
    assert isinstance(failures, CounterSink) and failures.total == 1
    assert isinstance(received, CounterSink) and received.total == 250
    assert _rows(rec.flush()[0]) == {}  # an interval's rows, once


def test_twenty_thousand_urls_make_at_most_the_cap_of_rows_and_name_a_few_overflowed_once() -> None:
    rec = Recorder(clock=lambda: 0.0, metric_defs={}, max_endpoints=50)
    for i in range(20_000):
        rec.record_http(_resp(f"http://h/items/{i}"), None)
    series, _ = rec.flush()

    rows = _rows(series)
    assert len(rows) == 51 and rows[OVERFLOW] == 20_000 - 50
    assert len(rec._rows) == 51  # memory: the overflowed URLs were not remembered
    examples = [parse_endpoint_key(k).row.name for k in series if k.startswith(OVERFLOW_NAMES)]  # type: ignore[union-attr]
    assert examples == [f"http://h/items/{i}" for i in range(50, 55)]
    for i in range(20_000, 20_010):
        rec.record_http(_resp(f"http://h/items/{i}"), None)
    again, _ = rec.flush()
    assert _rows(again) == {OVERFLOW: 10} and not any(k.startswith(OVERFLOW_NAMES) for k in again)


def test_the_url_helper_names_the_request_by_its_template_unless_a_name_tag_is_given() -> None:
    rec = Recorder(clock=lambda: 0.0, metric_defs={})

    class Answer:
        async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                       timeout_s: float, max_redirects: int, keep_body: bool = True) -> Response:
            return _resp(url, method=method)

        async def close(self) -> None:
            pass

        def take_interrupted(self) -> Response | None:
            return None

    async def main() -> list[str]:
        vu_tags.set({"scenario": "s"})  # as the executor sets it for a VU's task (this task's context only)
        http = HttpClient(on_response=rec.record_http, transport=Answer())  # type: ignore[arg-type]
        sent = []
        for i in (1, 2, 3):
            sent.append((await http.get(http.url("http://h/items/{}", i))).url)
        await http.get(http.url("http://h/items/{}", 4), tags={"name": "item"})
        return sent

    sent = asyncio.run(main())
    series, _ = rec.flush()

    assert sent == ["http://h/items/1", "http://h/items/2", "http://h/items/3"]
    assert _rows(series) == {EndpointRow("http://h/items/${}", "GET", "s"): 3, EndpointRow("item", "GET", "s"): 1}

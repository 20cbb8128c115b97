"""The recorder: what goes into which series, and what a flush hands over."""

from __future__ import annotations

from surge.common.metrics import CounterSink, GaugeSink, MetricDef, MetricType, RateSink, TrendSink, ValueType
from surge.worker.http import Response, Timings
from surge.worker.recorder import Recorder, vu_tags

DEFS = {
    "wait": MetricDef("wait", MetricType.TREND, ValueType.TIME),
    "errors": MetricDef("errors", MetricType.RATE),
    "orders": MetricDef("orders", MetricType.COUNTER),
    "queue": MetricDef("queue", MetricType.GAUGE),
}


def _resp(status: int, duration: float, *, method: str = "POST", url: str = "http://127.0.0.1/x") -> Response:
    r = Response(method=method, url=url, status=status)
    r.timings = Timings(blocked=1.0, sending=0.5, waiting=duration - 1.0, receiving=0.5, duration=duration)
    r.bytes_sent = 100
    r.bytes_received = 250
    return r


def test_custom_metrics_land_in_their_sinks_and_flush_resets() -> None:
    now = [0.0]
    rec = Recorder(clock=lambda: now[0], metric_defs=DEFS)
    for v in (3.0, 1.0, 2.0):
        rec.add("wait", v)
    rec.add("errors", 1.0)
    rec.add("errors", 0.0)
    rec.add("orders", 2.0)
    rec.add("orders", 5.0)
    rec.add("queue", 4.0)
    now[0] = 1.0
    rec.add("queue", 7.0)
    series, checks = rec.flush()
    wait = series["wait"]
    assert isinstance(wait, TrendSink) and (wait.sketch.count, wait.sketch.min, wait.sketch.max) == (3, 1.0, 3.0)
    errors = series["errors"]
    assert isinstance(errors, RateSink) and (errors.passes, errors.total) == (1, 2)
    orders = series["orders"]
    assert isinstance(orders, CounterSink) and orders.total == 7.0
    queue = series["queue"]
    assert isinstance(queue, GaugeSink) and (queue.value, queue.min, queue.max, queue.at_s) == (7.0, 4.0, 7.0, 1.0)
    assert checks == {}
    assert rec.flush() == ({}, {})  # nothing twice


def test_http_outcomes_feed_every_builtin_series() -> None:
    rec = Recorder(clock=lambda: 0.0, metric_defs={})
    rec.record_http(_resp(200, 10.0), None)
    rec.record_http(_resp(500, 30.0), None)
    series, _ = rec.flush()
    assert series["http_reqs"].total == 2  # type: ignore[union-attr]
    failed = series["http_req_failed"]
    assert isinstance(failed, RateSink) and (failed.passes, failed.total) == (1, 2)
    dur = series["http_req_duration"]
    assert isinstance(dur, TrendSink) and dur.sketch.total == 40.0
    assert series["data_sent"].total == 200 and series["data_received"].total == 500  # type: ignore[union-attr]
    for name in ("http_req_blocked", "http_req_waiting", "http_req_sending", "http_req_receiving"):
        assert series[name].sketch.count == 2  # type: ignore[union-attr]


def test_sub_metrics_match_vu_tags_and_sample_tags() -> None:
    rec = Recorder(
        clock=lambda: 0.0,
        metric_defs=DEFS,
        submetrics=[
            "http_req_duration{scenario:a}",
            "http_req_duration{status:500}",
            "http_reqs{scenario:a,method:GET}",
            "wait{kind:slow}",
            "checks{check:ok?}",
        ],
    )
    token = vu_tags.set({"scenario": "a"})
    try:
        rec.record_http(_resp(200, 10.0, method="GET"), None)
        rec.record_http(_resp(500, 20.0), None)
        rec.add("wait", 5.0, {"kind": "slow"})
        rec.add("wait", 1.0, {"kind": "fast"})
        rec.add_check("ok?", True)
        rec.add_check("ok?", False)
        rec.add_check("other", True)
    finally:
        vu_tags.reset(token)
    vu_tags.set({"scenario": "b"})
    rec.record_http(_resp(200, 99.0), None)
    series, checks = rec.flush()
    assert series["http_req_duration{scenario:a}"].sketch.count == 2  # type: ignore[union-attr]
    assert series["http_req_duration{status:500}"].sketch.total == 20.0  # type: ignore[union-attr]
    assert series["http_reqs{scenario:a,method:GET}"].total == 1  # type: ignore[union-attr]
    assert series["http_req_duration"].sketch.count == 3  # type: ignore[union-attr]
    assert series["wait{kind:slow}"].sketch.total == 5.0  # type: ignore[union-attr]
    assert (series["checks{check:ok?}"].passes, series["checks{check:ok?}"].total) == (1, 2)  # type: ignore[union-attr]
    assert (series["checks"].passes, series["checks"].total) == (2, 3)  # type: ignore[union-attr]
    assert checks == {"ok?": (1, 1), "other": (1, 0)}


def test_responses_are_tagged_with_their_protocol_as_k6_does() -> None:
    rec = Recorder(clock=lambda: 0.0, metric_defs={}, submetrics=["http_req_duration{proto:HTTP/2.0}"])
    h2, h1, failed = _resp(200, 10.0), _resp(200, 30.0), _resp(0, 5.0)
    h2.proto, h1.proto = "HTTP/2.0", "HTTP/1.1"
    for resp in (h2, h1, failed):
        rec.record_http(resp, None)
    series, _ = rec.flush()
    assert series["http_req_duration{proto:HTTP/2.0}"].sketch.total == 10.0  # type: ignore[union-attr]


def test_a_bad_value_that_reaches_the_recorder_is_dropped_and_counted_not_raised() -> None:
    import math

    rec = Recorder(clock=lambda: 1.0, metric_defs=DEFS)
    for metric in DEFS:
        rec.add(metric, math.nan)
        rec.add(metric, math.inf)
        rec.add(metric, "x")  # type: ignore[arg-type]
    rec.add("wait", 2.0)
    series, _ = rec.flush()
    dropped = series["surge_dropped_samples"]
    assert isinstance(dropped, CounterSink) and dropped.total == 12
    wait = series["wait"]
    assert isinstance(wait, TrendSink) and (wait.sketch.count, wait.sketch.max) == (1, 2.0)
    assert set(series) == {"wait", "surge_dropped_samples"}


def test_flush_filters_non_finite_values_that_bypassed_add() -> None:
    import math

    rec = Recorder(clock=lambda: 1.0, metric_defs=DEFS)
    resp = _resp(200, 10.0)
    resp.timings.duration = math.nan
    resp.timings.waiting = math.inf
    rec.record_http(resp, None)
    rec.record_http(_resp(200, 20.0), None)
    series, _ = rec.flush()  # must not raise
    duration = series["http_req_duration"]
    assert isinstance(duration, TrendSink) and (duration.sketch.count, duration.sketch.max) == (1, 20.0)
    assert isinstance(series["http_reqs"], CounterSink) and series["http_reqs"].total == 2
    dropped = series["surge_dropped_samples"]
    assert isinstance(dropped, CounterSink) and dropped.total == 2


def test_failed_requests_are_counted_by_kind_and_the_kinds_are_bounded() -> None:
    from surge.common.metrics import FAILURE_KIND_OTHER, MAX_FAILURE_KINDS, failure_kind_key

    rec = Recorder(clock=lambda: 0.0, metric_defs=DEFS)
    ok = _resp(200, 5.0)
    ok.expected = True
    rec.record_http(ok, None)
    for status in range(400, 400 + MAX_FAILURE_KINDS + 3):  # more kinds than a worker keeps
        r = _resp(status, 5.0)
        r.expected, r.error_code = False, 1000 + status
        rec.record_http(r, None)
        rec.record_http(r, None)
    refused = _resp(0, 1.0)
    refused.expected, refused.error_code = False, 1212
    rec.record_http(refused, None)  # a new kind, past the bound: lumped with the rest
    series, _ = rec.flush()
    kinds = {k: s.total for k, s in series.items() if k.startswith("surge_http_failures") and isinstance(s, CounterSink)}
    assert kinds[failure_kind_key(400, 1400)] == 2
    assert len(kinds) == MAX_FAILURE_KINDS + 1
    assert kinds[FAILURE_KIND_OTHER] == 3 * 2 + 1
    assert sum(kinds.values()) == series["http_req_failed"].passes  # type: ignore[union-attr]
    assert failure_kind_key(200, 0) not in kinds  # an expected response is no failure

"""build_summary's k6-shaped data, and the number formatters (surge/results/humanize.py).

The formatter tables were checked against k6's own ``js/summary.js`` functions run under node,
so they pin k6's output, rounding quirks included. The text layout is tested in
test_summary_text.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.metrics import (
    BUILTIN_METRICS,
    CounterSink,
    GaugeSink,
    MetricDef,
    MetricType,
    RateSink,
    TrendSink,
    ValueType,
)
from surge.common.sketch import Sketch
from surge.results.summary import (
    SeriesResult,
    build_summary,
    humanize_bytes,
    humanize_duration,
    humanize_value,
)
from surge.results.summary import text_summary as text_summary_from_here  # where it used to live
from surge.results.summary_text import text_summary
from surge.results.thresholds import Verdict




def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def linear_quantile(values: list[float], q: float) -> float:
    """numpy's default ('linear') percentile, written out."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def trend(values: list[float]) -> TrendSink:
    return TrendSink(Sketch.from_samples(values))


def gauge(*points: tuple[float, float]) -> GaugeSink:
    g = GaugeSink()
    for value, at_s in points:
        g.set(value, at_s)
    return g


B = BUILTIN_METRICS
LATENCIES_MS = [12.0, 15.5, 18.0, 22.0, 25.0, 31.0, 40.0, 44.0, 52.0, 61.0, 75.0, 90.0, 120.0, 180.0, 480.0]


def standard_series() -> list[SeriesResult]:
    return [
        SeriesResult("http_reqs", B["http_reqs"], CounterSink(2000)),
        SeriesResult("http_req_duration", B["http_req_duration"], trend(LATENCIES_MS)),
        SeriesResult("http_req_duration{scenario:purchase}", B["http_req_duration"], trend(LATENCIES_MS[:10])),
        SeriesResult("http_req_failed", B["http_req_failed"], RateSink(30, 2000)),
        SeriesResult("checks", B["checks"], RateSink(1970, 2000)),
        SeriesResult("vus", B["vus"], gauge((10, 1), (100, 5), (0, 30))),
        SeriesResult("data_received", B["data_received"], CounterSink(1_200_000)),
    ]


def standard_data(**kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "series": standard_series(),
        "verdicts": [
            Verdict("http_req_duration", "p(95)<500", True, 300.0),
            Verdict("http_req_failed", "rate<0.01", False, 0.015),
        ],
        "checks": {"status is 200": (2000, 0), "has checkout URL": (970, 30)},
        "duration_s": 30.0,
    }
    args.update(kwargs)
    return build_summary(**args)


# --------------------------------------------------------------------------- build_summary


def test_trend_values_are_exact_where_k6_is_exact_and_quantiles_interpolate_linearly() -> None:
    data = standard_data(trend_stats=("count", "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"))
    values = data["metrics"]["http_req_duration"]["values"]
    assert list(values) == ["count", "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"]
    assert values["count"] == 15 and isinstance(values["count"], int)
    assert values["avg"] == pytest.approx(math.fsum(LATENCIES_MS) / 15, rel=1e-15)
    assert values["min"] == 12.0
    assert values["max"] == 480.0
    assert values["med"] == pytest.approx(linear_quantile(LATENCIES_MS, 0.5))
    assert values["p(95)"] == pytest.approx(linear_quantile(LATENCIES_MS, 0.95))
    # 180 + 0.3 * (480 - 180); the sketch's float noise (269.9999999999997) is trimmed
    assert values["p(95)"] == 270.0
    assert values["p(90)"] == pytest.approx(linear_quantile(LATENCIES_MS, 0.90))


def test_quantiles_match_numpy_on_a_known_list() -> None:
    np = pytest.importorskip("numpy")
    samples = [float((i * 37) % 101) + i / 7 for i in range(300)]
    data = build_summary(
        series=[SeriesResult("t", B["http_req_duration"], trend(samples))],
        verdicts=[],
        checks={},
        duration_s=1.0,
        trend_stats=("med", "p(90)", "p(95)", "p(99)", "p(99.9)"),
    )
    got = data["metrics"]["t"]["values"]
    for stat, q in [("med", 50), ("p(90)", 90), ("p(95)", 95), ("p(99)", 99), ("p(99.9)", 99.9)]:
        assert got[stat] == pytest.approx(float(np.percentile(samples, q)), rel=1e-11), stat
        assert got[stat] == pytest.approx(linear_quantile(samples, q / 100), rel=1e-11), stat


def test_counter_rate_and_gauge_values() -> None:
    metrics = standard_data()["metrics"]
    assert metrics["http_reqs"]["values"] == {"count": 2000, "rate": pytest.approx(2000 / 30)}
    assert metrics["http_req_failed"]["values"] == {"rate": 0.015, "passes": 30, "fails": 1970}
    assert metrics["vus"]["values"] == {"value": 0, "min": 0, "max": 100}


def test_default_trend_stats_are_k6s() -> None:
    values = standard_data()["metrics"]["http_req_duration"]["values"]
    assert list(values) == ["avg", "min", "med", "max", "p(90)", "p(95)"]


def test_shape_matches_k6_handle_summary_data() -> None:
    data = standard_data(is_stdout_tty=True)
    assert list(data) == ["root_group", "options", "state", "metrics"]
    assert data["root_group"] == {
        "name": "",
        "path": "",
        "id": md5(""),
        "groups": [],
        "checks": [
            {"name": "status is 200", "path": "::status is 200", "id": md5("::status is 200"), "passes": 2000, "fails": 0},
            {"name": "has checkout URL", "path": "::has checkout URL", "id": md5("::has checkout URL"), "passes": 970, "fails": 30},
        ],
    }
    assert data["root_group"]["id"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert data["options"] == {
        "summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)"],
        "summaryTimeUnit": "",
        "noColor": False,
    }
    assert data["state"] == {"isStdOutTTY": True, "isStdErrTTY": False, "testRunDurationMs": 30000.0}
    for key, metric in data["metrics"].items():
        assert set(metric) <= {"type", "contains", "values", "thresholds"}, key
        assert metric["type"] in {"trend", "counter", "rate", "gauge"}
        assert metric["contains"] in {"time", "data", "default"}
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metric["values"].values())
    assert data["metrics"]["http_req_duration"]["type"] == "trend"
    assert data["metrics"]["http_req_duration"]["contains"] == "time"
    assert data["metrics"]["data_received"]["contains"] == "data"
    assert data["metrics"]["checks"]["type"] == "rate"


def test_every_series_appears_sorted_with_sub_metrics_after_their_parent() -> None:
    metric = MetricDef("foo", MetricType.COUNTER)
    series = [
        SeriesResult("foo{tag:x}", metric, CounterSink(1)),
        SeriesResult("foo_bar", MetricDef("foo_bar", MetricType.COUNTER), CounterSink(1)),
        SeriesResult("foo", metric, CounterSink(1)),
        SeriesResult("bar", MetricDef("bar", MetricType.COUNTER), CounterSink(1)),
    ]
    data = build_summary(series=series, verdicts=[], checks={}, duration_s=1.0)
    assert list(data["metrics"]) == ["bar", "foo", "foo{tag:x}", "foo_bar"]
    keys = list(standard_data()["metrics"])
    assert keys == [
        "checks",
        "data_received",
        "http_req_duration",
        "http_req_duration{scenario:purchase}",
        "http_req_failed",
        "http_reqs",
        "vus",
    ]


def test_thresholds_only_on_keys_with_verdicts() -> None:
    data = standard_data(
        verdicts=[
            Verdict("http_req_duration", "p(95)<500", True, 276.0),
            Verdict("http_req_duration", "avg<50", False, 82.0),
            Verdict("http_req_duration{scenario:purchase}", "p(99)<1000", True, 60.0),
            Verdict("no_such_metric", "count>0", False, 0.0),  # no series: skipped
        ]
    )
    metrics = data["metrics"]
    assert metrics["http_req_duration"]["thresholds"] == {"p(95)<500": {"ok": True}, "avg<50": {"ok": False}}
    assert metrics["http_req_duration{scenario:purchase}"]["thresholds"] == {"p(99)<1000": {"ok": True}}
    assert [k for k, m in metrics.items() if "thresholds" in m] == [
        "http_req_duration",
        "http_req_duration{scenario:purchase}",
    ]
    assert "no_such_metric" not in metrics


def test_a_trend_statistic_a_threshold_judged_joins_the_values_as_in_k6s_report() -> None:
    data = standard_data(
        verdicts=[
            Verdict("http_req_duration", "p(99)<800", True, 0.0),
            Verdict("http_req_duration", "p(95) < 500", True, 0.0),  # listed already: nothing added
            Verdict("http_req_duration{scenario:purchase}", "count>5", True, 0.0),
            Verdict("http_reqs", "rate>1", True, 0.0),  # not a trend: its values stay k6's
        ]
    )
    metrics = data["metrics"]
    assert list(metrics["http_req_duration"]["values"]) == ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"]
    assert metrics["http_req_duration"]["values"]["p(99)"] == pytest.approx(linear_quantile(LATENCIES_MS, 0.99))
    assert metrics["http_req_duration{scenario:purchase}"]["values"]["count"] == 10
    assert list(metrics["http_reqs"]["values"]) == ["count", "rate"]
    assert data["options"]["summaryTrendStats"] == ["avg", "min", "med", "max", "p(90)", "p(95)"]


def test_the_same_threshold_twice_holds_only_if_both_held() -> None:
    data = standard_data(
        verdicts=[Verdict("http_reqs", "count>10", True, 1.0), Verdict("http_reqs", "count>10", False, 1.0)]
    )
    assert data["metrics"]["http_reqs"]["thresholds"] == {"count>10": {"ok": False}}


def test_json_round_trip_without_nan() -> None:
    data = standard_data()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data


def test_empty_sinks_zero_duration_and_infinities_become_zero() -> None:
    series = [
        SeriesResult("t", MetricDef("t", MetricType.TREND, ValueType.TIME), TrendSink()),
        SeriesResult("g", MetricDef("g", MetricType.GAUGE), GaugeSink()),
        SeriesResult("r", MetricDef("r", MetricType.RATE), RateSink()),
        SeriesResult("c", MetricDef("c", MetricType.COUNTER), CounterSink(math.inf)),
    ]
    data = build_summary(series=series, verdicts=[], checks={}, duration_s=0.0, trend_stats=("avg", "p(99)", "count"))
    json.dumps(data, allow_nan=False)
    assert data["metrics"]["t"]["values"] == {"avg": 0, "p(99)": 0, "count": 0}
    assert data["metrics"]["g"]["values"] == {"value": 0, "min": 0, "max": 0}
    assert data["metrics"]["r"]["values"] == {"rate": 0, "passes": 0, "fails": 0}
    assert data["metrics"]["c"]["values"] == {"count": 0, "rate": 0}
    assert data["state"]["testRunDurationMs"] == 0


def test_options_carry_time_unit_and_no_color_but_trend_stats_come_from_the_argument() -> None:
    data = standard_data(
        trend_stats=["p(99)"],
        options={"summaryTimeUnit": "ms", "noColor": True, "summaryTrendStats": ["avg"], "vus": 10},
    )
    assert data["options"] == {"summaryTrendStats": ["p(99)"], "summaryTimeUnit": "ms", "noColor": True}


def test_bad_input_is_refused() -> None:
    duplicate = [SeriesResult("x", MetricDef("x", MetricType.COUNTER), CounterSink(1))] * 2
    with pytest.raises(ValueError, match="two series named 'x'"):
        build_summary(series=duplicate, verdicts=[], checks={}, duration_s=1.0)
    mismatch = [SeriesResult("x", MetricDef("x", MetricType.TREND), CounterSink(1))]
    with pytest.raises(ValueError, match="counter sink for a trend metric"):
        build_summary(series=mismatch, verdicts=[], checks={}, duration_s=1.0)
    with pytest.raises(ValueError, match="unknown trend statistic"):
        standard_data(trend_stats=("p95",))


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(st.floats(0, 1e7, allow_nan=False), max_size=50),
    count=st.floats(0, 1e12, allow_nan=False),
    passes=st.integers(0, 1000),
    extra=st.integers(0, 1000),
    duration_s=st.floats(0, 1e6, allow_nan=False),
)
def test_summary_is_always_strict_json(
    samples: list[float], count: float, passes: int, extra: int, duration_s: float
) -> None:
    series = [
        SeriesResult("t", B["http_req_duration"], trend(samples)),
        SeriesResult("c", B["data_sent"], CounterSink(count)),
        SeriesResult("r", B["checks"], RateSink(passes, passes + extra)),
        SeriesResult("g", B["vus"], gauge(*[(s, i) for i, s in enumerate(samples)])),
    ]
    data = build_summary(series=series, verdicts=[], checks={"c": (passes, extra)}, duration_s=duration_s)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    text_summary(data)  # never crashes on what build_summary makes
    text_summary(data, summary_mode="full")
    assert text_summary_from_here is text_summary


# --------------------------------------------------------------------------- formatters


@pytest.mark.parametrize(
    ("ms", "unit", "expected"),
    [
        (0, "", "0s"),
        (0.0005, "", "500ns"),
        (0.0451, "", "45.1µs"),
        (0.999, "", "999µs"),
        (1, "", "1ms"),
        (45.1, "", "45.1ms"),
        (45.129, "", "45.12ms"),  # truncated, not rounded
        (999.999, "", "999.99ms"),
        (1000, "", "1s"),
        (1200, "", "1.2s"),
        (59999.99, "", "59.99s"),
        (60000, "", "1m0s"),
        (63000, "", "1m3s"),
        (63500, "", "1m3s"),  # whole seconds past a minute
        (3_600_000, "", "1h0m0s"),
        (7_384_512.7, "", "2h3m4s"),
        (45.129, "ms", "45.13ms"),  # a fixed unit rounds, as k6's toFixed does
        (45.129, "s", "0.05s"),
        (45.129, "us", "45129.00µs"),
        (1200, "s", "1.20s"),
    ],
)
def test_humanize_duration(ms: float, unit: str, expected: str) -> None:
    assert humanize_duration(ms, unit) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (9, "9 B"),
        (9.5, "9.5 B"),
        (10, "10 B"),
        (512, "512 B"),
        (999.96, "1000 B"),
        (1000, "1.0 kB"),
        (1234, "1.2 kB"),
        (40_000, "40 kB"),
        (1_200_000, "1.2 MB"),
        (1_000_000_000, "1.0 GB"),
    ],
)
def test_humanize_bytes(n: float, expected: str) -> None:
    assert humanize_bytes(n) == expected


@pytest.mark.parametrize(
    ("value", "metric_type", "contains", "expected"),
    [
        (0.985, "rate", "default", "98.50%"),
        (0.99999, "rate", "default", "99.99%"),  # truncated: never a false 100 %
        (1, "rate", "default", "100.00%"),
        (0, "rate", "default", "0.00%"),
        (2000, "counter", "default", "2000"),
        (66.6000666, "counter", "default", "66.600067"),
        (1 / 3, "counter", "default", "0.333333"),
        (0.1 + 0.2, "counter", "default", "0.3"),
        (1e-7, "counter", "default", "0"),
        (45.1, "trend", "time", "45.1ms"),
        (1_200_000, "counter", "data", "1.2 MB"),
    ],
)
def test_humanize_value(value: float, metric_type: str, contains: str, expected: str) -> None:
    assert humanize_value(value, metric_type, contains) == expected

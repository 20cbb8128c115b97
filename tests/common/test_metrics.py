"""Series names as a table and a never-crash property; sinks as monoids with a checked wire form."""

from __future__ import annotations

import math
import re
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.errors import ProtocolError
from surge.common.metrics import (
    BUILTIN_METRICS,
    CounterSink,
    GaugeSink,
    MetricType,
    RateSink,
    SeriesName,
    Sink,
    TrendSink,
    aggregate,
    merge_into,
    new_sink,
    parse_series_name,
    trend_stat,
)
from surge.common.sketch import Sketch

# --------------------------------------------------------------------------- series names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http_reqs", SeriesName("http_reqs")),
        ("_private9", SeriesName("_private9")),
        ("  http_reqs \t\n", SeriesName("http_reqs")),
        ("http_req_duration{scenario:purchase}", SeriesName("http_req_duration", (("scenario", "purchase"),))),
        (
            "http_req_duration{ scenario : purchase , status : 200 }",
            SeriesName("http_req_duration", (("scenario", "purchase"), ("status", "200"))),
        ),
        ('http_req_duration{name:"GET /api/items"}', SeriesName("http_req_duration", (("name", "GET /api/items"),))),
        ("http_req_duration{name:'GET /'}", SeriesName("http_req_duration", (("name", "GET /"),))),
        ("http_req_duration{name:`x`}", SeriesName("http_req_duration", (("name", "x"),))),
        ('checks{check:"status is 200"}', SeriesName("checks", (("check", "status is 200"),))),
        # the first ':' separates tag and value; later ones belong to the value
        ("http_reqs{url:http://127.0.0.1:8080/a}", SeriesName("http_reqs", (("url", "http://127.0.0.1:8080/a"),))),
        # a quoted value may hold commas
        ('http_reqs{name:"a,b",status:500}', SeriesName("http_reqs", (("name", "a,b"), ("status", "500")))),
    ],
)
def test_parse_series_name(text: str, expected: SeriesName) -> None:
    assert parse_series_name(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected 'metric'"),
        ("   ", "expected 'metric'"),
        ("{scenario:a}", "expected 'metric'"),
        ("http reqs", "expected 'metric'"),
        ("http_reqs{scenario:a", "expected 'metric'"),
        ("http_reqs scenario:a}", "expected 'metric'"),
        ("http_reqs{a:b}{c:d}", "expected 'metric'"),
        ("http_reqs{a:b} trailing", "expected 'metric'"),
        ("9lives", "not a valid metric name"),
        ("http-reqs", "not a valid metric name"),
        ("http.reqs{a:b}", "not a valid metric name"),
        ("x" * 129, "not a valid metric name"),
        ("http_reqs{}", "empty tag filter"),
        ("http_reqs{ }", "empty tag filter"),
        ("http_reqs{a:b,}", "empty tag filter"),
        ("http_reqs{a:b,,c:d}", "empty tag filter"),
        ("http_reqs{scenario}", "is not 'tag:value'"),
        ("http_reqs{:purchase}", "is not 'tag:value'"),
        ("http_reqs{a:b,c}", "is not 'tag:value'"),
        ("http_reqs{a:1,a:2}", "appears twice"),
    ],
)
def test_parse_series_name_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_series_name(text)


def test_parse_series_name_quotes_what_it_refuses() -> None:
    with pytest.raises(ValueError) as info:
        parse_series_name("http_reqs{scenario}")
    assert "'http_reqs{scenario}'" in str(info.value)


# Text built from the grammar's own pieces reaches far more branches than random unicode.
_pieces = st.sampled_from(["{", "}", ":", ",", '"', "'", "`", " ", "\t", "\n", "a", "_", "1", "é", "\x00", "http_reqs"])


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(), st.lists(_pieces, max_size=14).map("".join)))
def test_parse_series_name_raises_only_value_error(text: str) -> None:
    try:
        parsed = parse_series_name(text)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(parsed, SeriesName)
    assert parsed.metric and len({k for k, _ in parsed.tags}) == len(parsed.tags)


_metric = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
_tag_key = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_tag_value = st.from_regex(r"[A-Za-z0-9_./:-]([A-Za-z0-9_./: -]{0,10}[A-Za-z0-9_./:-])?", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(
    metric=_metric,
    tags=st.lists(st.tuples(_tag_key, _tag_value), max_size=4, unique_by=lambda kv: kv[0]),
)
def test_str_of_a_series_name_parses_back(metric: str, tags: list[tuple[str, str]]) -> None:
    name = SeriesName(metric, tuple(tags))

    assert parse_series_name(str(name)) == name


def test_series_name_matches_its_tags() -> None:
    name = parse_series_name("http_req_duration{scenario:a,status:200}")

    assert name.matches({"scenario": "a", "status": "200", "method": "GET"})
    assert not name.matches({"scenario": "a"})
    assert not name.matches({"scenario": "b", "status": "200"})
    assert parse_series_name("http_reqs").matches({})


# --------------------------------------------------------------------------- sinks: strategies

# Integer-valued counters keep float addition exact, so associativity can be checked with ==.
counters = st.integers(0, 2**40).map(lambda v: CounterSink(float(v)))
rates = st.integers(0, 2**40).flatmap(lambda t: st.integers(0, t).map(lambda p: RateSink(p, t)))


def _gauge(sets: list[tuple[float, float]]) -> GaugeSink:
    g = GaugeSink()
    for value, at_s in sets:
        g.set(value, at_s)
    return g


# Few distinct times, so that ties (same at_s from two sinks) are common.
gauges = st.lists(
    st.tuples(st.floats(-1e9, 1e9, allow_nan=False), st.integers(0, 5).map(float)), max_size=4
).map(_gauge)
trends = st.lists(st.floats(0, 1e6, allow_nan=False), max_size=40).map(
    lambda vs: TrendSink(Sketch.from_samples(vs))
)
SINKS: dict[MetricType, st.SearchStrategy[Sink]] = {
    MetricType.COUNTER: counters,
    MetricType.GAUGE: gauges,
    MetricType.RATE: rates,
    MetricType.TREND: trends,
}


def _bits(sink: Sink) -> bytes:
    return msgpack.packb(sink.to_wire())  # type: ignore[no-any-return]


def _merge(*sinks: Sink) -> Sink:
    out = new_sink(sinks[0].type)
    for s in sinks:
        merge_into(out, s)
    return out


def _exact_fields(sink: Sink) -> tuple[Any, ...]:
    if isinstance(sink, TrendSink):  # the digest's centroids may differ; these may not
        return (sink.sketch.count, sink.sketch.min, sink.sketch.max)
    return tuple(sink.to_wire())


# --------------------------------------------------------------------------- sinks: monoid laws


@pytest.mark.parametrize("type_", list(MetricType), ids=lambda t: t.value)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_the_empty_sink_is_an_identity(type_: MetricType, data: st.DataObject) -> None:
    a = data.draw(SINKS[type_])
    before = _bits(a)

    left = new_sink(type_)
    merge_into(left, a)
    right = _merge(a)
    merge_into(right, new_sink(type_))

    assert _bits(left) == before
    assert _bits(right) == before
    assert new_sink(type_).is_empty()


@pytest.mark.parametrize("type_", list(MetricType), ids=lambda t: t.value)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_merge_is_associative_on_the_exact_fields(type_: MetricType, data: st.DataObject) -> None:
    a, b, c = (data.draw(SINKS[type_]) for _ in range(3))

    left = _merge(_merge(a, b), c)
    right = _merge(a, _merge(b, c))

    assert _exact_fields(left) == _exact_fields(right)
    if isinstance(left, TrendSink) and isinstance(right, TrendSink):
        assert left.sketch.total == pytest.approx(right.sketch.total, rel=1e-12)


def test_merge_into_refuses_two_types() -> None:
    with pytest.raises(TypeError, match="cannot merge"):
        merge_into(CounterSink(1.0), RateSink(1, 1))


# --------------------------------------------------------------------------- sinks: wire form


@pytest.mark.parametrize("type_", list(MetricType), ids=lambda t: t.value)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_wire_round_trip(type_: MetricType, data: st.DataObject) -> None:
    sink = data.draw(SINKS[type_])
    cls = type(sink)

    back: Sink = cls.from_wire(msgpack.unpackb(msgpack.packb(sink.to_wire())))

    assert type(back) is cls
    assert _bits(back) == _bits(sink)
    assert back.is_empty() == sink.is_empty()


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("cls", "wire"),
    [
        (CounterSink, None),
        (CounterSink, 5.0),
        (CounterSink, []),
        (CounterSink, [1.0, 2.0]),
        (CounterSink, [NAN]),
        (CounterSink, [INF]),
        (CounterSink, [True]),
        (CounterSink, ["3"]),
        (CounterSink, [None]),
        (GaugeSink, [1.0, 1.0, 1.0]),
        (GaugeSink, [1.0, 1.0, 1.0, 2.0, 3.0]),
        (GaugeSink, {"value": 1.0}),
        (GaugeSink, [5.0, 1.0, 4.0, 2.0]),  # value above max
        (GaugeSink, [0.0, 1.0, 4.0, 2.0]),  # value below min
        (GaugeSink, [2.0, 3.0, 1.0, 2.0]),  # min above max
        (GaugeSink, [NAN, 1.0, 4.0, 2.0]),
        (GaugeSink, [2.0, -INF, 4.0, 2.0]),
        (GaugeSink, [2.0, 1.0, 4.0, NAN]),
        (GaugeSink, [2.0, 1.0, 4.0, INF]),
        (GaugeSink, [True, 1.0, 4.0, 2.0]),
        (GaugeSink, [2.0, 1.0, 4.0, "2"]),
        (RateSink, [1]),
        (RateSink, [1, 2, 3]),
        (RateSink, [3, 2]),  # more passes than adds
        (RateSink, [-1, 2]),
        (RateSink, [1, -2]),
        (RateSink, [1.0, 2]),
        (RateSink, [1, 2.0]),
        (RateSink, [True, 2]),
        (RateSink, [1, "2"]),
        (TrendSink, [1, 1.0, 1.0, 1.0, [1.0], [2.0]]),
        (TrendSink, [1, 1.0, 1.0, 1.0, [NAN], [1.0]]),
        (TrendSink, [1, 1.0]),
    ],
)
def test_from_wire_refuses(cls: Any, wire: Any) -> None:
    with pytest.raises(ProtocolError):
        cls.from_wire(wire)


def test_from_wire_accepts_what_msgpack_may_give() -> None:
    assert CounterSink.from_wire([3]).total == 3.0
    assert CounterSink.from_wire((2.5,)).total == 2.5
    g = GaugeSink.from_wire([2, 1, 4, 7])
    assert (g.value, g.min, g.max, g.at_s) == (2.0, 1.0, 4.0, 7.0)
    assert GaugeSink.from_wire([0.0, 0.0, 0.0, None]).is_empty()
    r = RateSink.from_wire([0, 0])
    assert r.is_empty()


@pytest.mark.parametrize(
    ("cls", "wire"), [(CounterSink, [10**400]), (GaugeSink, [1.0, 1.0, 1.0, 10**400])], ids=["counter", "gauge"]
)
def test_from_wire_refuses_ints_beyond_float_range(cls: Any, wire: Any) -> None:
    with pytest.raises(ProtocolError):
        cls.from_wire(wire)


_wire_int = st.integers(min_value=-(2**63), max_value=2**64 - 1)
_json_like = st.recursive(
    st.none() | st.booleans() | _wire_int | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=16,
)


@pytest.mark.parametrize("cls", [CounterSink, GaugeSink, RateSink, TrendSink], ids=lambda c: c.__name__)
@settings(max_examples=100, deadline=None)
@given(obj=st.one_of(_json_like, st.lists(st.one_of(_wire_int, st.floats(), st.none()), min_size=1, max_size=4)))
def test_from_wire_raises_only_protocol_error(cls: Any, obj: Any) -> None:
    try:
        cls.from_wire(obj)
    except ProtocolError:
        pass


# --------------------------------------------------------------------------- gauges: last value wins


def test_gauge_keeps_the_value_with_the_latest_time_not_the_latest_call() -> None:
    g = GaugeSink()
    g.set(5.0, at_s=2.0)
    g.set(3.0, at_s=1.0)  # older: counts for min and max, not for the value

    assert (g.value, g.min, g.max, g.at_s) == (5.0, 3.0, 5.0, 2.0)
    g.set(4.0, at_s=2.0)  # same time: the later call wins
    assert g.value == 4.0


def test_gauge_merge_keeps_the_latest_value_whatever_the_merge_order() -> None:
    early, late = _gauge([(10.0, 1.0), (1.0, 1.5)]), _gauge([(7.0, 3.0)])

    a = _merge(late, early)
    b = _merge(early, late)

    assert a.to_wire() == b.to_wire() == [7.0, 1.0, 10.0, 3.0]


def test_gauge_merge_of_equal_times_takes_the_later_sink() -> None:
    assert _merge(_gauge([(1.0, 2.0)]), _gauge([(9.0, 2.0)])).to_wire() == [9.0, 1.0, 9.0, 2.0]


def test_empty_gauge() -> None:
    g = GaugeSink()

    assert g.is_empty()
    assert g.to_wire() == [0.0, 0.0, 0.0, None]
    assert g.values(10.0) == {"value": 0.0, "min": 0.0, "max": 0.0}


# --------------------------------------------------------------------------- aggregate() and trend_stat()

HUNDRED = TrendSink(Sketch.from_samples([float(v) for v in range(1, 101)]))


@pytest.mark.parametrize(
    ("sink", "stat", "duration_s", "expected"),
    [
        (CounterSink(30.0), "count", 10.0, 30.0),
        (CounterSink(30.0), "rate", 10.0, 3.0),
        (CounterSink(30.0), "rate", 0.0, 0.0),
        (CounterSink(), "count", 10.0, 0.0),
        (_gauge([(3.0, 1.0), (8.0, 2.0), (5.0, 3.0)]), "value", 10.0, 5.0),
        (_gauge([(3.0, 1.0), (8.0, 2.0), (5.0, 3.0)]), "min", 10.0, 3.0),
        (_gauge([(3.0, 1.0), (8.0, 2.0), (5.0, 3.0)]), "max", 10.0, 8.0),
        (GaugeSink(), "value", 10.0, 0.0),
        (RateSink(3, 4), "rate", 10.0, 0.75),
        (RateSink(3, 4), "passes", 10.0, 3.0),
        (RateSink(3, 4), "fails", 10.0, 1.0),
        (RateSink(), "rate", 10.0, 0.0),
        (HUNDRED, "avg", 10.0, 50.5),
        (HUNDRED, "med", 10.0, 50.5),
        (HUNDRED, "p(95)", 10.0, 95.05),
        (HUNDRED, "count", 10.0, 100.0),
        (TrendSink(), "p(95)", 10.0, 0.0),
    ],
)
def test_aggregate(sink: Sink, stat: str, duration_s: float, expected: float) -> None:
    got = aggregate(sink, stat, duration_s)

    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("sink", "stat", "message"),
    [
        (CounterSink(1.0), "value", "counter metrics have no 'value'; expected one of count, rate"),
        (CounterSink(1.0), "p(95)", "counter metrics have no"),
        (_gauge([(1.0, 1.0)]), "rate", "gauge metrics have no 'rate'; expected one of value, min, max"),
        (GaugeSink(), "count", "gauge metrics have no"),
        (RateSink(1, 2), "count", "rate metrics have no 'count'; expected one of rate, passes, fails"),
        (HUNDRED, "p(101)", "unknown trend statistic"),
        (HUNDRED, "rate", "unknown trend statistic"),
        (TrendSink(), "bogus", "unknown trend statistic"),
        (TrendSink(), "p(100.5)", "unknown trend statistic"),
    ],
)
def test_aggregate_refuses_a_bad_stat(sink: Sink, stat: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        aggregate(sink, stat, 10.0)


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ("avg", 50.5),
        ("min", 1.0),
        ("max", 100.0),
        ("med", 50.5),
        ("count", 100.0),
        ("p(0)", 1.0),
        ("p(50)", 50.5),
        ("p(90)", 90.1),
        ("p(95)", 95.05),
        ("p(99)", 99.01),
        ("p(99.9)", 99.901),
        ("p(100)", 100.0),
        ("p(100.0)", 100.0),
    ],
)
def test_trend_stat(stat: str, expected: float) -> None:
    assert trend_stat(HUNDRED.sketch, stat) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("stat", ["avg", "min", "max", "med", "count", "p(90)", "p(0)", "p(100)"])
def test_trend_stat_of_an_empty_sketch_is_zero(stat: str) -> None:
    assert trend_stat(Sketch(), stat) == 0.0


@pytest.mark.parametrize("stat", ["", "mean", "P(90)", "p90", "p(90", "p(-1)", "p(101)", "p(1e2)", "p( 90)", "p(.5)"])
def test_trend_stat_refuses(stat: str) -> None:
    for sketch in (HUNDRED.sketch, Sketch()):
        with pytest.raises(ValueError, match="unknown trend statistic"):
            trend_stat(sketch, stat)


def test_values_of_each_sink() -> None:
    assert CounterSink(6.0).values(3.0) == {"count": 6.0, "rate": 2.0}
    assert RateSink(1, 4).values(3.0) == {"rate": 0.25, "passes": 1, "fails": 3}
    assert HUNDRED.values(1.0, ("min", "max", "count")) == {"min": 1.0, "max": 100.0, "count": 100.0}
    assert set(HUNDRED.values(1.0)) == {"avg", "min", "med", "max", "p(90)", "p(95)"}


def test_an_empty_gauge_on_the_wire_carries_no_values() -> None:
    assert GaugeSink.from_wire([0.0, 0.0, 0.0, None]).is_empty()
    for bad in (["x", {}, [], None], [1.0, 1.0, 1.0, None]):
        with pytest.raises(ProtocolError):
            GaugeSink.from_wire(bad)


# --------------------------------------------------------------------------- bad values at .add()


class _Rec:
    """A recorder that keeps what the scenario's metrics hand it."""

    def __init__(self) -> None:
        self.adds: list[tuple[str, float]] = []

    def add(self, metric: str, value: float, tags: Any) -> None:
        self.adds.append((metric, value))

    def add_check(self, name: str, ok: bool, tags: Any) -> None:
        pass


@pytest.fixture
def rec() -> Any:
    from surge.common import api

    r = _Rec()
    api.install_recorder(r)
    yield r
    api.install_recorder(None)


def test_builtin_dropped_samples_is_a_counter() -> None:
    assert BUILTIN_METRICS["surge_dropped_samples"].type is MetricType.COUNTER


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "x", None, 1j, [1.0], 10**400, b"1"])
def test_a_bad_value_is_dropped_counted_and_never_raises(rec: Any, bad: Any, capsys: Any) -> None:
    from surge.common.api import Counter, Gauge, Rate, Trend

    for cls in (Counter, Gauge, Rate, Trend):
        cls(f"bad_{cls.__name__.lower()}").add(bad)
    assert rec.adds == [("surge_dropped_samples", 1.0)] * 4
    err = capsys.readouterr().err
    assert err.count("\n") == 4 and "test_metrics.py:" in err and "bad_trend" in err and repr(bad)[:10] in err


def test_good_values_pass_bools_count_as_one_and_zero(rec: Any) -> None:
    from fractions import Fraction

    from surge.common.api import Rate, Trend

    t, r = Trend("good_t"), Rate("good_r")
    t.add(1.5)
    t.add(3)
    t.add(Fraction(1, 4))
    r.add(True)
    r.add(False)
    assert rec.adds == [("good_t", 1.5), ("good_t", 3.0), ("good_t", 0.25), ("good_r", 1.0), ("good_r", 0.0)]
    assert all(type(v) is float for _, v in rec.adds)


def test_a_bad_value_is_logged_once_per_metric_and_call_site(rec: Any, capsys: Any) -> None:
    from surge.common.api import Trend

    a, b = Trend("site_a"), Trend("site_b")
    for _ in range(5):
        a.add(math.nan)  # one call site, five drops: one line
    a.add(math.inf)  # another line of the same metric: a second line
    for _ in range(3):
        b.add(None)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    assert sum(1 for m, _ in rec.adds if m == "surge_dropped_samples") == 9
    assert "site_a" in lines[0] and "nan" in lines[0] and "site_b" in lines[2] and "None" in lines[2]
    sites = [re.search(r"test_metrics\.py:(\d+):", line) for line in lines]
    assert all(sites) and len({m.group(1) for m in sites if m}) == 3  # each line names its own call site


@given(st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none(), st.booleans(), st.complex_numbers()))
@settings(max_examples=200)
def test_add_never_raises_and_only_finite_floats_reach_the_recorder(value: Any) -> None:
    from surge.common import api

    r = _Rec()
    api.install_recorder(r)
    try:
        api.Trend("any_value").add(value)
    finally:
        api.install_recorder(None)
    ((metric, v),) = r.adds
    assert type(v) is float and math.isfinite(v)
    assert metric == ("any_value" if metric != "surge_dropped_samples" else "surge_dropped_samples")

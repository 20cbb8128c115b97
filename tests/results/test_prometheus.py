"""The Prometheus exposition of a built LiveSnapshot, parsed back with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from surge.common.metrics import BUILTIN_METRICS, CounterSink, GaugeSink, MetricDef, MetricType, RateSink, Sink, \
    TrendSink, ValueType
from surge.common.options import Options
from surge.common.sketch import Sketch
from surge.results.live import LiveSnapshot
from surge.results.prometheus import SnapshotCollector, label_name, stat_suffix
from surge.common.endpoints import parse_listen_address
from surge.results.thresholds import Verdict
from surge.results.timeline import Point, TimelineData

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _snapshot(series: Mapping[str, Sink], *, verdicts: tuple[Verdict, ...] = (), workers: tuple[str, ...] = (),
              points: tuple[Point, ...] = (), trend_stats: tuple[str, ...] = ("avg", "p(95)", "p(99.9)", "count"),
              elapsed_s: float = 12.5) -> LiveSnapshot:
    return LiveSnapshot(
        elapsed_s=elapsed_s, max_duration_s=40.0, series=dict(series),
        timeline=TimelineData(1.0, 1.0, points, {}, workers), verdicts=verdicts,
        options=Options(scenarios=(), summary_trend_stats=trend_stats), workers=workers,
    )


def _expose(snapshot: LiveSnapshot | None, metric_defs: Mapping[str, MetricDef] = BUILTIN_METRICS) -> str:
    collector = SnapshotCollector(metric_defs)
    if snapshot is not None:
        collector.set(snapshot)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode("utf-8")


def _parse(text: str) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, sorted labels) -> value), failing on a repeated sample."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in types, f"family {family.name} twice"
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"sample {key} twice"
            samples[key] = s.value
    return types, samples


def _trend(*values_ms: float) -> TrendSink:
    return TrendSink(Sketch.from_samples(list(values_ms)))


def _gauge(value: float) -> GaugeSink:
    g = GaugeSink()
    g.set(value, 1.0)
    return g


def test_names_types_units_and_labels_follow_k6_remote_write_with_the_surge_prefix() -> None:
    snapshot = _snapshot({
        "http_reqs": CounterSink(120),
        "http_reqs{scenario:purchase}": CounterSink(100),
        "http_req_duration": _trend(100, 200, 300),
        "http_req_duration{scenario:purchase}": _trend(100, 200),
        "http_req_failed": RateSink(3, 120),
        "vus": _gauge(7),
        "data_sent": CounterSink(2048),
        "surge_http_failures{status:503,error_code:1503}": CounterSink(3),
        "surge_loop_lag": _trend(4),
    })
    types, samples = _parse(_expose(snapshot))
    assert types["surge_http_reqs"] == "counter"
    assert samples[("surge_http_reqs_total", ())] == 120
    assert samples[("surge_http_reqs_total", (("scenario", "purchase"),))] == 100
    assert types["surge_http_req_duration_avg"] == "gauge"
    assert samples[("surge_http_req_duration_avg", ())] == pytest.approx(0.2)
    assert samples[("surge_http_req_duration_avg", (("scenario", "purchase"),))] == pytest.approx(0.15)
    assert ("surge_http_req_duration_p95", ()) in samples
    assert ("surge_http_req_duration_p999", ()) in samples
    assert samples[("surge_http_req_duration_count", ())] == 3  # a count is a count, not seconds
    assert samples[("surge_http_req_failed_rate", ())] == pytest.approx(3 / 120)
    assert samples[("surge_vus", ())] == 7
    assert samples[("surge_data_sent_total", ())] == 2048
    assert samples[("surge_http_failures_total", (("error_code", "1503"), ("status", "503")))] == 3
    assert ("surge_loop_lag_avg", ()) in samples  # surge's own metrics are not prefixed twice
    assert samples[("surge_run_elapsed_seconds", ())] == 12.5
    assert samples[("surge_run_max_duration_seconds", ())] == 40.0


def test_custom_metrics_take_their_unit_from_their_definition() -> None:
    defs = {**BUILTIN_METRICS,
            "checkout": MetricDef("checkout", MetricType.TREND, ValueType.TIME),
            "basket_size": MetricDef("basket_size", MetricType.TREND),
            "payload": MetricDef("payload", MetricType.GAUGE, ValueType.DATA)}
    snapshot = _snapshot({"checkout": _trend(50), "basket_size": _trend(3), "payload": _gauge(10)})
    _, samples = _parse(_expose(snapshot, defs))
    assert samples[("surge_checkout_avg", ())] == pytest.approx(0.05)
    assert samples[("surge_basket_size_avg", ())] == pytest.approx(3)
    assert samples[("surge_payload", ())] == 10  # gauges go as set, as k6's do


def test_thresholds_are_one_while_they_hold_with_the_observed_value_beside() -> None:
    verdicts = (Verdict("http_req_duration{scenario:purchase}", "p(95)<500", True, 230.5),
                Verdict("http_req_failed", "rate<0.01", False, 0.2))
    _, samples = _parse(_expose(_snapshot({}, verdicts=verdicts)))
    held = (("metric", "http_req_duration{scenario:purchase}"), ("threshold", "p(95)<500"))
    crossed = (("metric", "http_req_failed"), ("threshold", "rate<0.01"))
    assert samples[("surge_threshold_ok", held)] == 1
    assert samples[("surge_threshold_observed", held)] == 230.5
    assert samples[("surge_threshold_ok", crossed)] == 0
    assert samples[("surge_threshold_observed", crossed)] == 0.2


def test_per_worker_requests_add_up_over_the_closed_points() -> None:
    points = (Point(1.0, 2, {}, (3.0, 4.0)), Point(2.0, 2, {}, (5.0, 6.0)))
    _, samples = _parse(_expose(_snapshot({}, workers=("w0", "w1"), points=points)))
    assert samples[("surge_worker_http_reqs_total", (("worker", "w0"),))] == 8
    assert samples[("surge_worker_http_reqs_total", (("worker", "w1"),))] == 10


def test_empty_sinks_give_no_sample_rather_than_a_made_up_zero_or_infinity() -> None:
    _, samples = _parse(_expose(_snapshot({"vus": GaugeSink(), "http_req_duration": TrendSink(),
                                           "checks": RateSink(), "iterations": CounterSink()})))
    names = {name for name, _ in samples}
    assert not any(n.startswith(("surge_vus", "surge_http_req_duration", "surge_checks")) for n in names)
    assert samples[("surge_iterations_total", ())] == 0  # nothing counted yet is a true zero


def test_before_the_first_snapshot_the_exposition_is_empty_and_valid() -> None:
    assert _parse(_expose(None)) == ({}, {})


def test_a_metric_mapped_onto_a_taken_name_is_left_out_not_exposed_twice() -> None:
    # a custom gauge "threshold_ok" would be surge_threshold_ok, the thresholds' own family
    defs = {**BUILTIN_METRICS, "threshold_ok": MetricDef("threshold_ok", MetricType.GAUGE)}
    verdicts = (Verdict("vus", "value<10", True, 1.0),)
    types, samples = _parse(_expose(_snapshot({"threshold_ok": _gauge(5)}, verdicts=verdicts), defs))
    assert types["surge_threshold_ok"] == "gauge"
    assert [v for (n, _), v in samples.items() if n == "surge_threshold_ok"] == [1.0]


@pytest.mark.parametrize(("tag", "label"), [
    ("scenario", "scenario"), ("a-b", "a_b"), ("1st", "_1st"), ("__name__", "tag__name__"), ("é", "_"),
])
def test_tag_names_become_valid_label_names(tag: str, label: str) -> None:
    assert label_name(tag) == label


@pytest.mark.parametrize(("stat", "suffix"), [("p(95)", "p95"), ("p(99.9)", "p999"), ("med", "med")])
def test_trend_stat_suffixes(stat: str, suffix: str) -> None:
    assert stat_suffix(stat) == suffix


HOSTILE = ['quote"in', "new\nline", "back\\slash", "ünïcødé ✓", "comma,colon:", "\\n", "tab\there", ""]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_tag_values_are_escaped_and_come_back_intact(value: str) -> None:
    quoted = '"' + value + '"' if ("," in value or "}" in value) else value
    key = f"http_reqs{{scenario:{quoted}}}"
    verdicts = (Verdict(key, 'count<"10"\n', True, 1.0),)
    text = _expose(_snapshot({key: CounterSink(5), "http_reqs": CounterSink(9)}, verdicts=verdicts))
    _, samples = _parse(text)
    assert samples[("surge_http_reqs_total", (("scenario", value),))] == 5
    assert samples[("surge_http_reqs_total", ())] == 9
    assert samples[("surge_threshold_ok", (("metric", key), ("threshold", 'count<"10"\n')))] == 1
    # one sample a line: no value may break a line of the exposition
    assert all(line.startswith(("#", "surge_")) for line in text.splitlines())


def test_a_key_that_does_not_parse_keeps_apart_from_the_untagged_series() -> None:
    _, samples = _parse(_expose(_snapshot({"http_reqs{a:b}}": CounterSink(2), "http_reqs": CounterSink(9)})))
    assert samples[("surge_http_reqs_total", (("series", "http_reqs{a:b}}"),))] == 2
    assert samples[("surge_http_reqs_total", ())] == 9


def test_a_key_whose_name_is_no_prometheus_name_is_left_out() -> None:
    _, samples = _parse(_expose(_snapshot({"bad name": CounterSink(2), "http_reqs": CounterSink(9)})))
    assert samples[("surge_http_reqs_total", ())] == 9
    assert not any("bad" in name for name, _ in samples)


_tag_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(tags=st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,8}", fullmatch=True), _tag_text, max_size=3),
       source=_tag_text)
def test_any_tags_and_threshold_source_give_a_parseable_exposition(tags: dict[str, str], source: str) -> None:
    body = ",".join(f'{k}:"{v}"' for k, v in tags.items() if '"' not in v)
    key = f"http_req_duration{{{body}}}" if body else "http_req_duration"
    text = _expose(_snapshot({key: _trend(10)}, verdicts=(Verdict(key, source, False, 3.0),)))
    _, samples = _parse(text)
    assert any(n == "surge_http_req_duration_avg" for n, _ in samples)
    assert samples[("surge_threshold_ok", (("metric", key), ("threshold", source)))] == 0


@pytest.mark.parametrize(("text", "addr"), [
    ("9464", ("127.0.0.1", 9464)), (":9464", ("127.0.0.1", 9464)), ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:9464", ("::1", 9464)), ("localhost:9464", ("localhost", 9464)),
])
def test_listen_addresses(text: str, addr: tuple[str, int]) -> None:
    assert parse_listen_address(text, flag="--prometheus", allow_zero=False) == addr


@pytest.mark.parametrize("text", ["", "x", "0", "65536", "::1:9464", "host:", "127.0.0.1:-1"])
def test_bad_listen_addresses_are_refused_with_the_form_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"--prometheus"):
        parse_listen_address(text, flag="--prometheus", allow_zero=False)


def test_a_snapshot_is_rendered_once_and_a_new_one_replaces_it() -> None:
    collector = SnapshotCollector(BUILTIN_METRICS)
    first = _snapshot({"http_reqs": CounterSink(1)})
    collector.set(first)
    assert collector.collect() is collector.collect()
    collector.set(_snapshot({"http_reqs": CounterSink(2)}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    assert _parse(generate_latest(registry).decode())[1][("surge_http_reqs_total", ())] == 2

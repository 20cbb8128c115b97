"""The fleet's per-endpoint table: merged from the workers' rows, capped again, told in words."""

from __future__ import annotations

from surge.common.endpoint_stats import (
    DATA_SENT,
    DURATION,
    FAILURES,
    OVERFLOW_NAME,
    OVERFLOW_NAMES,
    EndpointRow,
    failure_tags,
)
from surge.common.metrics import MAX_FAILURE_KINDS, CounterSink, GaugeSink, Sink, TrendSink
from surge.common.protocol import Report
from surge.common.sketch import Sketch
from surge.coordinator.aggregate import Aggregate
from surge.results.endpoints import EndpointTable, endpoint_lines, overflow_hint
from surge.results.timeline import Timeline


def _row_series(row: EndpointRow, durations: list[float], *, failed: int = 0) -> dict[str, Sink]:
    out: dict[str, Sink] = {row.key(DURATION): TrendSink(Sketch.from_samples(durations)),
                            row.key(DATA_SENT): CounterSink(100.0 * len(durations))}
    if failed:
        out[row.key(FAILURES, *failure_tags(503, 1503))] = CounterSink(float(failed))
    return out


def test_rows_from_several_workers_merge_into_one_row_with_exact_counts() -> None:
    table = EndpointTable()
    row = EndpointRow("checkout", "POST", "shoppers", "::checkout")
    for key, sink in {**_row_series(row, [10.0, 20.0], failed=1)}.items():
        table.add(key, sink)
    for key, sink in {**_row_series(row, [30.0, 40.0, 50.0], failed=2)}.items():
        table.add(key, sink)

    (only,) = table.rows(duration_s=5.0)

    assert (only["name"], only["method"], only["scenario"], only["group"]) == ("checkout", "POST", "shoppers", "::checkout")
    assert (only["requests"], only["failures"], only["rate"], only["dataSent"]) == (5, 3, 1.0, 500.0)
    assert only["failuresByKind"] == [{"status": "503", "errorCode": "1503", "count": 3}]
    assert (only["duration"]["min"], only["duration"]["max"], only["duration"]["avg"]) == (10.0, 50.0, 30.0)
    assert table.overflow() is None


def test_workers_that_kept_different_first_names_are_capped_again_on_the_merged_set() -> None:
    table = EndpointTable(max_rows=3)
    for worker in range(2):  # worker 0 kept /a0../a2, worker 1 /a1../a3, each within its own cap
        for i in range(worker, worker + 3):
            for key, sink in _row_series(EndpointRow(f"http://h/items/{i}", "GET"), [1.0]).items():
                table.add(key, sink)
        table.add(EndpointRow(f"http://h/items/{100 + worker}").key(OVERFLOW_NAMES), CounterSink(1.0))

    rows = table.rows(1.0)

    assert [r["name"] for r in rows] == ["http://h/items/0", "http://h/items/1", "http://h/items/2", OVERFLOW_NAME]
    assert rows[-1]["requests"] == 1  # worker 1's /items/3, folded by the coordinator
    assert table.overflow() == {"requests": 1, "examples": ["http://h/items/100", "http://h/items/3", "http://h/items/101"],
                                "suggestions": ["http://h/items/${}"]}


def test_what_is_not_an_endpoint_series_of_the_right_type_is_refused_not_merged() -> None:
    table = EndpointTable()
    table.add("surge_endpoint_duration{method:GET}", TrendSink())
    table.add(EndpointRow("x").key(DURATION), CounterSink(1.0))
    table.add(EndpointRow("x").key(DATA_SENT), GaugeSink())

    assert table.refused == 3 and table.rows(1.0) == []
    row = EndpointRow("x")
    for status in range(100, 600):  # a worker that claims hundreds of kinds of failure
        table.add(row.key(FAILURES, *failure_tags(status, 9)), CounterSink(1.0))
    (only,) = table.rows(1.0)
    assert len(only["failuresByKind"]) == MAX_FAILURE_KINDS + 1 and only["failures"] == 500


def test_the_hint_names_the_cap_examples_and_a_template_and_the_text_shows_every_row() -> None:
    table = EndpointTable(max_rows=1)
    for i in range(3):
        for key, sink in _row_series(EndpointRow(f"http://h/items/{i}", "GET"), [5.0], failed=i).items():
            table.add(key, sink)
    data = table.summary(duration_s=1.0)

    hint = overflow_hint(data)
    assert hint is not None
    assert "2 request(s) went to the '__overflow__' row" in hint and "more than 1 distinct request names" in hint
    assert "http://h/items/1, http://h/items/2" in hint
    assert "vu.http.url('http://h/items/{}', ...)" in hint and "--max-endpoints" in hint
    text = "\n".join(endpoint_lines("  ", data))
    assert "█ ENDPOINTS" in text and "http://h/items/0" in text and OVERFLOW_NAME in text
    assert "failures by kind" in text and hint not in text  # said once, by the coordinator
    assert endpoint_lines("  ", {"rows": []}) == [] and overflow_hint({"maxRows": 1, "overflow": None}) is None


def test_the_aggregate_keeps_endpoint_series_out_of_the_fleet_series_and_the_timeline() -> None:
    timeline = Timeline(1.0, 10.0, ["w0"])
    agg = Aggregate(1, timeline=timeline, max_endpoints=10)
    row = EndpointRow("http://h/x", "GET")
    series: dict[str, Sink] = {"http_reqs": CounterSink(2.0), **_row_series(row, [1.0, 2.0])}

    agg.accept(0, Report("run", 1, 1.0, series, {}, True))
    timeline.finish()

    assert list(agg.series()) == ["http_reqs"]
    assert not any(k.startswith("surge_endpoint") for k in timeline.data().types)
    assert timeline.data().types == {"http_reqs": "counter"}
    assert [(r["name"], r["requests"]) for r in agg.endpoints.rows(1.0)] == [("http://h/x", 2)]

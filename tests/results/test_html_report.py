"""The report document and the page: what goes in, how the JSON is embedded, what a bad file says."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from surge.common.endpoint_stats import DURATION, EndpointRow
from surge.common.metrics import (
    CounterSink,
    MetricDef,
    MetricType,
    RateSink,
    Sink,
    TrendSink,
    ValueType,
    failure_kind_key,
)
from surge.common.sketch import Sketch
from surge.results.endpoints import EndpointTable
from surge.results.html_report import asset, render_html, script_json
from surge.results.live import LiveSnapshot
from surge.results.live_document import LiveDocuments, live_document
from surge.results.report_data import ReportDataError, report_document, trim_timeline
from surge.results.thresholds import Verdict
from surge.results.timeline import Timeline

HOSTILE = "</script><script>alert(1)</script><!--<script>\u2028\u2029&amp;"


def _timeline(scenarios: tuple[str, ...] = ()) -> Timeline:
    tl = Timeline(1.0, 60.0, ["w-0", "w-1"])
    for k in (1, 2, 3):
        for w in (0, 1):
            series: dict[str, Sink] = {
                "http_reqs": CounterSink(10),
                "http_req_duration": TrendSink(Sketch.from_samples([10.0 * k, 20.0, 30.0])),
                "http_req_failed": RateSink(1, 10),
                failure_kind_key(503, 1503): CounterSink(1),
                "http_req_waiting": TrendSink(Sketch.from_samples([5.0])),
                "surge_loop_lag": TrendSink(Sketch.from_samples([1.0])),  # not charted
            }
            for s in scenarios:
                series[f"http_reqs{{scenario:{s}}}"] = CounterSink(5)
                series[f"http_req_failed{{scenario:{s}}}"] = RateSink(1, 5)
                series[f"http_req_duration{{scenario:{s}}}"] = TrendSink(Sketch.from_samples([10.0, 20.0 * k]))
            tl.add(w, float(k), series)
    tl.finish()
    return tl


def _summary(tl: Timeline, **metrics: Any) -> dict[str, Any]:
    return {
        "root_group": {"name": "", "path": "", "id": "", "groups": [
            {"name": "g", "path": "::g", "id": "", "groups": [],
             "checks": [{"name": "inner", "path": "::g::inner", "id": "", "passes": 3, "fails": 1}]}],
            "checks": [{"name": "status is 200", "path": "::status is 200", "id": "", "passes": 60, "fails": 0}]},
        "options": {}, "state": {"testRunDurationMs": 3000.0, "workers": [{"name": "w-0", "requests": 30}]},
        "metrics": {
            "http_reqs": {"type": "counter", "contains": "default", "values": {"count": 60, "rate": 20.0},
                          "thresholds": {"count>100": {"ok": False}}},
            "http_req_duration": {"type": "trend", "contains": "time",
                                  "values": {"med": 20.0, "p(95)": 29.0}, "thresholds": {"p(95)<500": {"ok": True},
                                                                                        "p(99.9)<900": {"ok": True}}},
            "http_req_failed": {"type": "rate", "contains": "default", "values": {"rate": 0.1, "passes": 6, "fails": 54},
                                "thresholds": {"rate<0.01": {"ok": False}}},
            **metrics,
        },
        "timeline": tl.to_json(),
    }


def test_the_document_names_each_threshold_with_its_observed_value_and_unit() -> None:
    doc = report_document(_summary(_timeline()), title="t")
    rows = {(t["metric"], t["source"]): (t["ok"], t["observed"], t["unit"]) for t in doc["thresholds"]}
    assert rows == {
        ("http_reqs", "count>100"): (False, 60.0, ""),
        ("http_req_duration", "p(95)<500"): (True, 29.0, "ms"),
        ("http_req_duration", "p(99.9)<900"): (True, None, "ms"),  # not among the summary's trend stats
        ("http_req_failed", "rate<0.01"): (False, 0.1, "share"),
    }
    assert [c["path"] for c in doc["checks"]] == ["::status is 200", "::g::inner"]
    assert doc["stats"]["requests"] == 60 and doc["stats"]["p95Ms"] == 29.0
    assert doc["workers"] == [{"name": "w-0", "requests": 30}]


def test_the_document_carries_failure_kinds_and_only_the_charted_series() -> None:
    doc = report_document(_summary(_timeline()), title="t")
    assert doc["failureKinds"] == [{"key": "surge_http_failures{status:503,error_code:1503}", "status": "503",
                                    "errorCode": "1503", "total": 6.0}]
    series = doc["timeline"]["series"]
    assert "surge_loop_lag" not in series and "http_req_waiting" in series
    assert set(series["http_req_duration"]["values"]) == {"count", "avg", "med", "p(90)", "p(95)", "p(99)", "max"}
    assert doc["timeline"]["workers"]["names"] == ["w-0", "w-1"]
    assert doc["scenarios"] == []  # a single-scenario run: no per-scenario section


def test_scenarios_come_from_the_per_scenario_request_series() -> None:
    summary = _summary(_timeline(("browse", "buy")),
                       **{"http_reqs{scenario:buy}": {"type": "counter", "contains": "default",
                                                      "values": {"count": 15, "rate": 5.0}}})
    doc = report_document(summary, title="t")
    assert doc["scenarios"] == ["browse", "buy"]
    assert doc["scenarioRows"][0]["failedShare"] == pytest.approx(0.2)
    assert doc["scenarioRows"][0]["avgMs"] == pytest.approx((15 + 25 + 35) / 3)  # exact: weighted by count
    # totals are sums over the timeline's points (2 workers x 3 intervals x 5); p95 from the summary only
    assert doc["scenarioRows"][1] == {"scenario": "buy", "requests": 30.0, "failedShare": 0.2, "avgMs": 25.0,
                                      "p95Ms": None, "iterations": None}


def test_trim_keeps_per_scenario_series_but_not_other_tags() -> None:
    tl = {"series": {"http_reqs{scenario:a}": {"type": "counter", "values": {}},
                     "http_req_duration{flow:x}": {"type": "trend", "values": {}},
                     "http_reqs{scenario:a,flow:x}": {"type": "counter", "values": {}}}}
    assert list(trim_timeline(tl)["series"]) == ["http_reqs{scenario:a}"]


@pytest.mark.parametrize(("summary", "message"), [
    ([], "expected a JSON object"),
    ({"metrics": {}}, "no 'timeline' key"),
    ({"metrics": {}, "timeline": {"version": 2}}, "timeline.version: expected 1"),
    ({"metrics": {}, "timeline": {"version": 1, "intervalS": 1, "bucketS": 1, "t": [1], "vus": [1], "series": {}},
      "state": []}, None),
    ({"metrics": [], "timeline": {"version": 1, "intervalS": 1, "bucketS": 1, "t": [], "vus": [], "series": {}}},
     "'metrics': expected an object"),
    ({"metrics": {"x": {"thresholds": ["p(95)<1"]}},
      "timeline": {"version": 1, "intervalS": 1, "bucketS": 1, "t": [], "vus": [], "series": {}}},
     "malformed summary data"),
])
def test_a_file_that_is_not_a_summary_export_is_named_with_its_key(summary: object, message: str | None) -> None:
    if message is None:
        report_document(summary, title="t", source="run.json")  # a minimal export renders
        return
    with pytest.raises(ReportDataError, match=re.escape(message)) as err:
        report_document(summary, title="t", source="run.json")
    assert str(err.value).startswith("run.json")


def test_script_json_cannot_end_the_script_element_and_reads_back_the_same() -> None:
    doc = {"title": HOSTILE, "nested": [{HOSTILE: HOSTILE}], "nan": float("nan")}
    text = script_json(doc)
    assert "</" not in text and "<!--" not in text and "<" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"title": HOSTILE, "nested": [{HOSTILE: HOSTILE}], "nan": None}


def test_the_page_inlines_everything_and_a_hostile_title_stays_text() -> None:
    doc = report_document(_summary(_timeline()), title=HOSTILE)
    page = render_html(doc)
    # three script elements (data, uPlot, report.js), each closed once: nothing in the data closed one
    assert page.count("<script") == 3 and page.count("</script>") == 3
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(1)" in page
    data = page.split('<script type="application/json" id="surge-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["title"] == HOSTILE
    # offline: no src= or stylesheet links, uPlot and the page script inlined
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", page)
    assert asset("uPlot.iife.min.js")[:200] in page and asset("report.js")[:200] in page
    assert '<body data-events' not in page and '<body>' in page
    assert 'data-events="/events"' in render_html(doc, events_url="/events")


def test_report_js_writes_run_strings_only_as_text() -> None:
    js = asset("report.js")
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js


def test_the_live_document_judges_thresholds_from_the_snapshot() -> None:
    tl = _timeline()
    snap = LiveSnapshot(
        elapsed_s=3.0, max_duration_s=10.0,
        series={"http_reqs": CounterSink(60), "http_req_failed": RateSink(6, 60),
                "http_req_duration": TrendSink(Sketch.from_samples([10.0, 20.0]))},
        timeline=tl.data(),
        verdicts=[Verdict("http_req_failed", "rate<0.01", False, 0.1), Verdict("http_req_duration", "p(95)<5", False, 19.5),
                  Verdict("checkout_duration", "p(95)<5", False, 7.0), Verdict("plain", "p(95)<5", False, 7.0)],
        options=None,  # type: ignore[arg-type]  # the document does not read the options
        workers=("w-0", "w-1"),
    )
    doc = json.loads(LiveDocuments("t", {"checkout_duration": MetricDef("checkout_duration", MetricType.TREND,
                                                                        ValueType.TIME)}).payload(snap))
    assert doc == live_document(snap, title="t") | {"thresholds": doc["thresholds"]}
    assert doc["live"] and not doc["finished"] and doc["maxDurationS"] == 10.0
    assert [(t["observed"], t["unit"]) for t in doc["thresholds"]] == [(0.1, "share"), (19.5, "ms"), (7.0, "ms"),
                                                                       (7.0, "")]
    assert doc["stats"]["requests"] == 60 and doc["stats"]["requestRate"] == 20.0
    assert "surge_loop_lag" not in doc["timeline"]["series"]
    assert doc["timeline"]["t"] == [1.0, 2.0, 3.0]


def test_the_incremental_live_document_is_the_one_built_from_scratch() -> None:
    tl = Timeline(1.0, 60.0, ["w-0", "w-1"])
    docs = LiveDocuments("t")
    for k in range(1, 7):
        for w in (0, 1):
            series: dict[str, Sink] = {"http_reqs": CounterSink(10 + k),
                                       "http_req_duration": TrendSink(Sketch.from_samples([float(k), 2.0 * k]))}
            if k >= 4:  # series that appear mid-run get their column back to the first point
                series[failure_kind_key(0, 1211)] = CounterSink(k)
                series["http_reqs{scenario:" + HOSTILE + "}"] = CounterSink(1)
                series["http_req_duration{scenario:" + HOSTILE + "}"] = TrendSink(Sketch.from_samples([1.0, 3.0]))
            if w == 1 and k % 2:
                series["http_req_failed"] = RateSink(1, 3)
            tl.add(w, float(k), series)
        snap = LiveSnapshot(elapsed_s=float(k), max_duration_s=60.0, series={}, timeline=tl.data(), verdicts=(),
                            options=None, workers=("w-0", "w-1"))  # type: ignore[arg-type]
        text = docs.payload(snap)
        assert "<" not in text and "\u2028" not in text  # script-safe, hostile keys included
        incremental = json.loads(text)
        assert incremental == live_document(snap, title="t")
        assert incremental["timeline"] == trim_timeline(tl.to_json())  # what the report file holds
    assert incremental["failureKinds"] == [{"key": failure_kind_key(0, 1211), "status": "0", "errorCode": "1211",
                                            "total": 2 * (4 + 5 + 6)}]


def _endpoint_table(max_rows: int = 10) -> EndpointTable:
    table = EndpointTable(max_rows)
    for i in range(3):
        row = EndpointRow(f"http://h/items/{i}" if i else HOSTILE, "GET", "browse", "::shop")
        table.add(row.key(DURATION), TrendSink(Sketch.from_samples([5.0, 10.0])))
    return table


def test_the_report_and_the_live_document_carry_the_endpoint_rows_and_the_overflow_hint() -> None:
    summary = _summary(_timeline()) | {"endpoints": _endpoint_table(max_rows=2).summary(3.0)}
    doc = report_document(summary, title="t")
    assert [r["name"] for r in doc["endpoints"]["rows"]] == [HOSTILE, "http://h/items/1", "__overflow__"]
    assert "'__overflow__' row" in doc["endpoints"]["hint"]
    assert report_document(_summary(_timeline()) | {"endpoints": "nonsense"}, title="t")["endpoints"] == {
        "rows": [], "hint": None}
    page = render_html(doc)
    assert HOSTILE not in page  # embedded as data, escaped, like every name from the run

    table = _endpoint_table()
    snap = LiveSnapshot(elapsed_s=2.0, max_duration_s=10.0, series={}, timeline=_timeline().data(), verdicts=[],
                        options=None,  # type: ignore[arg-type]  # the document does not read the options
                        workers=(), endpoints=lambda: table.summary(2.0))
    live = live_document(snap, title="t")
    assert [(r["name"], r["requests"], r["rate"]) for r in live["endpoints"]["rows"]][1:] == [
        ("http://h/items/1", 2, 1.0), ("http://h/items/2", 2, 1.0)]
    assert live["endpoints"]["hint"] is None

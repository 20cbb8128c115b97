"""``--out json|csv`` and ``--junit``: golden files from a fixed timeline and fixed verdicts, and the files' I/O.

The goldens are under ``tests/results/golden/``. After an intended change of format,
regenerate them and review the diff::

    SURGE_REGEN_GOLDEN=1 python -m pytest -q -p no:cacheprovider tests/results/test_file_outputs.py

A regenerating run fails on purpose (so that it is never mistaken for a passing one).
"""

from __future__ import annotations

import csv
import io
import json
import os
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from surge.common.metrics import BUILTIN_METRICS, MetricDef, MetricType
from surge.common.options import Options
from surge.results.csv_out import CSV_HEADER, csv_header, csv_rows
from surge.results.junit import junit_xml
from surge.results.live import LiveSnapshot
from surge.results.ndjson import catalog, ndjson_lines, rfc3339
from surge.results.outfiles import IntervalFile, OutputError, OutSpec, check_writable, open_outputs, parse_out
from surge.results.thresholds import Verdict, parse_thresholds
from surge.results.timeline import Point, TimelineData

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("SURGE_REGEN_GOLDEN") == "1"

START = datetime(2026, 12, 2, 12, 0, 0, 250000, tzinfo=timezone.utc)
METRICS: dict[str, MetricDef] = {**BUILTIN_METRICS, "queue_depth": MetricDef("queue_depth", MetricType.GAUGE)}
THRESHOLDS, _problems = parse_thresholds(
    {"http_req_duration": ["p(95)<500", "avg<200"], "http_req_duration{expected_response:true}": ["p(99)<900"],
     "http_req_failed": ["rate<0.01"]}, METRICS)
assert not _problems

TYPES = {
    "http_reqs": "counter", "http_reqs{scenario:purchase}": "counter",
    "http_req_duration": "trend", "http_req_duration{expected_response:true}": "trend",
    "http_req_failed": "rate", "surge_http_failures{status:503,error_code:1503}": "counter",
    "queue_depth": "gauge", "custom_unknown": "counter",
}


def _trend(count: float, avg: float) -> dict[str, float]:
    return {"count": count, "avg": avg, "min": avg / 2, "med": avg, "max": avg * 3,
            "p(90)": avg * 2, "p(95)": avg * 2.5, "p(99)": avg * 2.9}


POINTS = (
    Point(1.0, 0, {"http_reqs": {"count": 4, "rate": 4.0},
                   "http_reqs{scenario:purchase}": {"count": 4, "rate": 4.0},
                   "http_req_duration": _trend(4, 41.5),
                   "http_req_duration{expected_response:true}": _trend(4, 41.5),
                   "http_req_failed": {"passes": 0, "fails": 4, "rate": 0.0},
                   "queue_depth": {"value": 3, "min": 1, "max": 3}}, (2.0, 2.0)),
    Point(2.0, 10, {"http_reqs": {"count": 9, "rate": 9.0},
                    "http_reqs{scenario:purchase}": {"count": 9, "rate": 9.0},
                    "http_req_duration": _trend(9, 612.3125),
                    "http_req_duration{expected_response:true}": _trend(7, 580.0),
                    "http_req_failed": {"passes": 2, "fails": 7, "rate": 2 / 9},
                    "surge_http_failures{status:503,error_code:1503}": {"count": 2, "rate": 2.0},
                    "custom_unknown": {"count": 1, "rate": 1.0}}, (5.0, 4.0)),
    Point(3.0, None, {}, (0.0, 0.0)),  # an interval with no data (the timeline has no holes)
    Point(4.0, 5, {"http_reqs": {"count": 1, "rate": 1.0},
                   "http_reqs{scenario:purchase}": {"count": 1, "rate": 1.0},
                   "http_req_duration": _trend(1, 12.0)}, (1.0, 0.0)),
)
TIMELINE = TimelineData(1.0, 1.0, POINTS, TYPES, ("w-0", "w-1"))


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        pytest.fail(f"regenerated {path}; review the diff and run again without SURGE_REGEN_GOLDEN")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden (see this module's docstring)"


def _ndjson(points: tuple[Point, ...] = POINTS) -> str:
    return "".join(line + "\n" for line in ndjson_lines(points, TYPES, START, catalog(METRICS, THRESHOLDS), set()))


# --------------------------------------------------------------------------- NDJSON


def test_ndjson_golden() -> None:
    _check_golden("outputs.ndjson", _ndjson())


def test_ndjson_has_k6s_envelopes_a_metric_line_before_each_metrics_first_point() -> None:
    lines = [json.loads(line) for line in _ndjson().splitlines()]
    announced: set[str] = set()
    for obj in lines:
        assert list(obj) == ["type", "data", "metric"]  # k6's key order
        if obj["type"] == "Metric":
            assert list(obj["data"]) == ["name", "type", "contains", "thresholds", "submetrics"]
            assert obj["metric"] not in announced
            announced.add(obj["metric"])
        else:
            assert obj["type"] == "Point" and obj["metric"] in announced
            assert list(obj["data"]) == ["time", "value", "tags", "stats"]
    metric = {o["metric"]: o["data"] for o in lines if o["type"] == "Metric"}
    assert metric["http_req_duration"]["thresholds"] == ["p(95)<500", "avg<200"]
    assert metric["http_req_duration"]["contains"] == "time"
    assert metric["http_req_duration"]["submetrics"] == [{"name": "http_req_duration{expected_response:true}",
                                                         "suffix": "expected_response:true",
                                                         "tags": {"expected_response": "true"}}]
    assert metric["http_reqs"]["submetrics"] is None and metric["http_reqs"]["thresholds"] == []
    assert metric["custom_unknown"] == {"name": "custom_unknown", "type": "counter", "contains": "default",
                                        "thresholds": [], "submetrics": None}


def test_ndjson_points_values_times_and_tags() -> None:
    points = [json.loads(line) for line in _ndjson().splitlines() if '"Point"' in line]
    reqs = [p["data"] for p in points if p["metric"] == "http_reqs" and not p["data"]["tags"]]
    assert [p["value"] for p in reqs] == [4, 9, 1]  # counter: the interval's count
    assert [p["time"] for p in reqs] == ["2026-12-02T12:00:01.25Z", "2026-12-02T12:00:02.25Z", "2026-12-02T12:00:04.25Z"]
    dur = [p["data"] for p in points if p["metric"] == "http_req_duration" and not p["data"]["tags"]]
    assert dur[1]["value"] == 612.3125 and dur[1]["stats"]["p(95)"] == 612.3125 * 2.5  # trend: the avg, all stats
    failed = [p["data"] for p in points if p["metric"] == "http_req_failed"]
    assert failed[1]["value"] == pytest.approx(2 / 9) and failed[1]["stats"] == {"passes": 2, "fails": 7, "rate": 2 / 9}
    kinds = [p["data"]["tags"] for p in points if p["metric"] == "surge_http_failures"]
    assert kinds == [{"status": "503", "error_code": "1503"}]
    vus = [(p["data"]["time"][-6:], p["data"]["value"]) for p in points if p["metric"] == "vus"]
    assert vus == [("01.25Z", 0), ("02.25Z", 10), ("04.25Z", 5)]  # none where no VU sample came
    assert not any(p["data"]["time"].startswith("2026-12-02T12:00:03") for p in points)  # the empty interval


def test_ndjson_written_in_pieces_is_the_same_as_in_one_go() -> None:
    metrics, seen = catalog(METRICS, THRESHOLDS), set[str]()
    pieces = [list(ndjson_lines(POINTS[i:i + 1], TYPES, START, metrics, seen)) for i in range(len(POINTS))]
    assert "".join(line + "\n" for piece in pieces for line in piece) == _ndjson()


def test_rfc3339_is_gos_time_format() -> None:
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05Z"
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.12Z"


# --------------------------------------------------------------------------- CSV


def _csv(points: tuple[Point, ...] = POINTS) -> str:
    return csv_header() + "".join(csv_rows(points, TYPES, START))


def test_csv_golden() -> None:
    _check_golden("outputs.csv", _csv())


def test_csv_starts_with_k6s_default_header_and_rows_carry_every_stat() -> None:
    # k6's csv header with its default systemTags (internal/output/csv: MakeHeader)
    k6 = ("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,"
          "scenario,service,status,subproto,tls_version,url,extra_tags,metadata")
    assert csv_header().startswith(k6 + ",")
    rows = list(csv.DictReader(io.StringIO(_csv())))
    assert all(len(r) == len(CSV_HEADER) for r in rows)
    whole = [r for r in rows if r["metric_name"] == "http_reqs" and not r["scenario"]]
    assert [r["metric_value"] for r in whole] == ["4.000000", "9.000000", "1.000000"]  # Go's %f
    assert [r["timestamp"] for r in whole] == [str(int(START.timestamp()) + s) for s in (1, 2, 4)]  # whole unix seconds
    assert [r["elapsed_s"] for r in whole] == ["1", "2", "4"]
    assert sum(float(r["count"]) for r in whole) == 14
    kind = next(r for r in rows if r["metric_name"] == "surge_http_failures")
    assert (kind["status"], kind["error_code"], kind["extra_tags"]) == ("503", "1503", "")
    dur = next(r for r in rows if r["metric_name"] == "http_req_duration" and r["elapsed_s"] == "2" and not r["expected_response"])
    assert (dur["type"], dur["count"], dur["avg"], dur["p(95)"], dur["rate"]) == ("trend", "9", "612.3125", "1530.78125", "")


def test_csv_puts_tags_without_a_column_in_extra_tags() -> None:
    point = Point(1.0, None, {"iterations{scenario:a,shard:7,zone:eu}": {"count": 2, "rate": 2.0}})
    row = next(csv.DictReader(io.StringIO(csv_header() + "".join(
        csv_rows([point], {"iterations{scenario:a,shard:7,zone:eu}": "counter"}, START)))))
    assert (row["scenario"], row["extra_tags"]) == ("a", "shard=7&zone=eu")


# --------------------------------------------------------------------------- JUnit

VERDICTS = [
    Verdict("http_req_duration", "p(95)<500", False, 612.3125),
    Verdict("http_req_duration", "avg<200", True, 150.25),
    Verdict("http_req_failed", "rate<0.01", False, 0.2222222, abort_on_fail=True),
    Verdict("http_reqs", "rate>100", False, 14.5),
    Verdict("checks{scenario:purchase}", "rate>0.99", True, 1.0),
    Verdict("checkout_duration", "p(99)<900", False, float("nan")),
]
KINDS = {"http_req_duration": ("trend", "time"), "http_req_failed": ("rate", "default"),
         "http_reqs": ("counter", "default"), "checks": ("rate", "default"), "checkout_duration": ("trend", "time")}


def test_junit_golden() -> None:
    _check_golden("junit.xml", junit_xml(VERDICTS, suite="scenarios/ticket_purchase.py", duration_s=12.5034, metrics=KINDS))


def test_junit_has_the_shape_ci_servers_read() -> None:
    root = ET.fromstring(junit_xml(VERDICTS, suite="s.py", duration_s=12.5, metrics=KINDS))
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("time")) == ("6", "4", "12.500")
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("s.py", "6", "4", "0")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [(v.key, v.source) for v in VERDICTS]
    messages = {c.get("name"): f.get("message") for c in cases for f in c.findall("failure")}
    assert messages == {
        "p(95)<500": "p(95)=612.3ms, expected p(95)<500",
        "rate<0.01": "rate=0.2222, expected rate<0.01",
        "rate>100": "rate=14.5/s, expected rate>100",
        "p(99)<900": "p(99)=no data, expected p(99)<900",
    }
    assert [len(c.findall("failure")) for c in cases] == [0 if v.ok else 1 for v in VERDICTS]


def test_junit_validates_against_the_schema_ci_servers_read() -> None:
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is in the test extras (pip install -e .[test])")
    schema = xmlschema.XMLSchema(str(Path(__file__).parent / "schema" / "junit.xsd"))
    for doc in (junit_xml(VERDICTS, suite="s.py", duration_s=12.5, metrics=KINDS), junit_xml([], suite="s.py", duration_s=0.0),
                junit_xml(VERDICTS, suite="s.py", duration_s=float("nan"))):
        schema.validate(doc)
    with pytest.raises(xmlschema.XMLSchemaValidationError):  # the schema is not a rubber stamp
        schema.validate('<testsuites><testsuite name="s" tests="1" failures="0"><testcase name="x" /></testsuite></testsuites>')


def test_junit_all_passing_and_none() -> None:
    ok = ET.fromstring(junit_xml([Verdict("http_reqs", "count>1", True, 5.0)], suite="s.py", duration_s=1.0))
    assert ok.get("failures") == "0" and not ok.findall(".//failure")
    empty = ET.fromstring(junit_xml([], suite="s.py", duration_s=1.0))
    assert empty.get("tests") == "0" and empty.find("testsuite") is not None


# --------------------------------------------------------------------------- --out values and files


@pytest.mark.parametrize("value, kind, path", [("json=a.ndjson", "json", "a.ndjson"), ("csv=out/b.csv", "csv", "out/b.csv"),
                                               ("json=x=y.json", "json", "x=y.json")])
def test_parse_out(value: str, kind: str, path: str) -> None:
    assert parse_out(value) == OutSpec(kind, Path(path))


@pytest.mark.parametrize("value, says", [("xml=a.xml", "'xml' is not a known output"), ("json", "'json' names no FILE"),
                                         ("json=", "'json=' names no FILE"), ("", "got ''"),
                                         ("=a.json", "got '=a.json'")])
def test_parse_out_says_what_was_expected(value: str, says: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_out(value)
    assert "expected KIND=FILE with KIND one of json, csv" in str(err.value) and says in str(err.value)


class FakeWallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _snapshot(points: tuple[Point, ...], elapsed_s: float) -> LiveSnapshot:
    return LiveSnapshot(elapsed_s=elapsed_s, max_duration_s=10.0, series={},
                        timeline=TimelineData(1.0, 1.0, points, TYPES, ()), verdicts=(), options=Options(scenarios=()),
                        workers=())


def _summary(points: tuple[Point, ...]) -> dict[str, Any]:
    return {"state": {"testRunDurationMs": 4500.0}, "timeline": TimelineData(1.0, 1.0, points, TYPES, ()).to_json()}


@pytest.mark.parametrize("kind, whole", [("json", _ndjson), ("csv", _csv)])
def test_a_file_grows_at_each_update_and_close_adds_the_rest(tmp_path: Path, kind: str, whole: Any) -> None:
    path = tmp_path / "deep" / f"out.{kind}"
    clock = FakeWallClock(START.timestamp() + 1.5)
    (view,) = open_outputs([OutSpec(kind, path)], METRICS, THRESHOLDS, wall_clock=clock)
    view.update(_snapshot(POINTS[:1], elapsed_s=1.5))  # start = now - elapsed: START
    after_one = path.read_text()  # flushed: readable while the run goes
    assert after_one == whole(POINTS[:1])
    clock.now += 1.0
    view.update(_snapshot(POINTS[:1], elapsed_s=2.5))  # nothing new closed: nothing written
    assert path.read_text() == after_one
    view.update(_snapshot(POINTS[:2], elapsed_s=2.5))
    assert path.read_text() == whole(POINTS[:2])
    view.close(_summary(POINTS))  # the points closed by the run's end come from the summary's timeline
    assert path.read_text() == whole(POINTS)


def test_a_run_without_a_summary_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    (view,) = open_outputs([OutSpec("json", path)], METRICS, THRESHOLDS, wall_clock=FakeWallClock(START.timestamp() + 2))
    view.update(_snapshot(POINTS[:2], elapsed_s=2.0))
    view.close(None)
    assert path.read_text() == _ndjson(POINTS[:2])


def test_a_run_too_short_for_a_snapshot_dates_points_from_the_summarys_duration(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    view = IntervalFile(OutSpec("json", path), catalog(METRICS, THRESHOLDS),
                        wall_clock=FakeWallClock(START.timestamp() + 4.5))  # the duration: 4.5 s
    view.close(_summary(POINTS))
    assert path.read_text() == _ndjson()


def test_an_unwritable_out_is_an_error_before_the_run_naming_the_flag(tmp_path: Path) -> None:
    good = tmp_path / "good.ndjson"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputError) as err:
        open_outputs([OutSpec("json", good), OutSpec("csv", tmp_path / "a-file" / "b.csv")], METRICS, THRESHOLDS)
    assert f"--out csv={tmp_path / 'a-file' / 'b.csv'}: cannot write" in str(err.value)
    assert err.value.exit_code == 104
    with pytest.raises(OutputError, match="it is a directory"):
        open_outputs([OutSpec("json", tmp_path)], METRICS, THRESHOLDS)


def test_one_file_for_two_outputs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="one file given twice"):
        open_outputs([OutSpec("json", tmp_path / "x"), OutSpec("csv", tmp_path / "." / "x")], METRICS, THRESHOLDS)
    assert not (tmp_path / "x").exists()


def test_check_writable_leaves_no_file_and_keeps_an_existing_one(tmp_path: Path) -> None:
    check_writable(tmp_path / "new" / "j.xml", "--junit")
    assert not (tmp_path / "new" / "j.xml").exists()
    old = tmp_path / "old.xml"
    old.write_text("kept")
    check_writable(old, "--junit")
    assert old.read_text() == "kept"
    with pytest.raises(OutputError, match="--junit: cannot write"):
        check_writable(old / "x.xml", "--junit")



"""The dashboard's report documents, one per live snapshot, built incrementally.

The live dashboard sends the whole report document (:mod:`surge.results.report_data`) about
once a second. Built from scratch, that is every charted column of every point, serialized:
about 0.2 s of the coordinator's loop per second at the timeline's bound (1,000 points, 32
worker series), which is what the coordinator must not pay. But a timeline's points never
change once closed (:class:`~surge.results.timeline.Timeline` only appends), so
:class:`LiveDocuments` keeps each column's JSON text and appends the new points' values; each
second costs the new points plus one join of the cached text. A series that appears late (a
new kind of failure) gets its column built once, back to the first point.

The result is the same document :func:`surge.results.report_data.report_document` would give
for the same timeline (:func:`live_document` reads it back, for tests), as JSON text already
safe inside ``<script>`` (:func:`surge.results.html_report.script_json`; the cached number
columns hold nothing to escape, series keys are escaped as they are added).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from surge.common.metrics import MetricDef, Sink, TrendSink, parse_series_name
from surge.results.html_report import script_json
from surge.results.live import LiveSnapshot
from surge.results.report_data import (
    CHARTED_TREND_STATS,
    DOCUMENT_VERSION,
    SCENARIO_SUMS,
    finite,
    endpoint_section,
    is_charted,
    scenario_names,
    scenario_row,
    threshold_unit,
)
from surge.results.timeline import STATS_BY_TYPE, TIMELINE_VERSION, Point, TimelineData


def _num(x: float | None) -> str:
    return "null" if x is None or not math.isfinite(x) else repr(float(x))


def _sum_cell(p: Point, key: str, stat: str) -> float:
    v = p.values.get(key) or {}
    if stat == "avg*count":
        return v.get("avg", 0.0) * v.get("count", 0.0) if math.isfinite(v.get("avg", 0.0)) else 0.0
    x = v.get(stat, 0.0)
    return x if math.isfinite(x) else 0.0


def _joined(text: str, cells: list[str]) -> str:
    """``text`` (cells joined by commas) with ``cells`` appended."""
    if not cells:
        return text
    more = ",".join(cells)
    return text + "," + more if text else more


class _Columns:
    """One timeline's charted columns as JSON text, extended point by point.

    Each column is kept as its cells joined by commas: appending a point copies the column's
    text once (memory speed), instead of joining every cell again each second.
    """

    def __init__(self, data: TimelineData) -> None:
        self.interval_s, self.bucket_s = data.interval_s, data.bucket_s
        self.n = 0
        self.t = ""
        self.vus = ""
        self.series: dict[str, tuple[str, str, dict[str, str]]] = {}  # key -> (escaped key, type, stat -> text)
        self.names: tuple[str, ...] = ()
        self.workers: list[str] = []
        self.failure_totals: dict[str, float] = {}
        self.sums: dict[tuple[str, str], float] = {}  # the per-scenario totals (report_data.SCENARIO_SUMS)

    def fits(self, data: TimelineData) -> bool:
        return (data.interval_s, data.bucket_s) == (self.interval_s, self.bucket_s) and len(data.points) >= self.n

    @staticmethod
    def _cell(p: Point, key: str, stat: str, type_: str) -> str:
        v = p.values.get(key)
        if v is None or stat not in v:
            return "0.0" if type_ == "counter" else "null"
        return _num(v[stat])

    @staticmethod
    def _worker_cell(p: Point, i: int) -> str:
        return _num(p.worker_requests[i] if i < len(p.worker_requests) else 0.0)

    def extend(self, data: TimelineData) -> None:
        old, new = data.points[: self.n], data.points[self.n:]
        for key, type_ in data.types.items():
            if key in self.series or not is_charted(key):
                continue
            stats = CHARTED_TREND_STATS if type_ == "trend" else STATS_BY_TYPE[type_]
            self.series[key] = (script_json({"k": key})[5:-1], type_,
                                {stat: ",".join(self._cell(p, key, stat, type_) for p in old) for stat in stats})
            if parse_series_name(key).metric == "surge_http_failures":
                self.failure_totals[key] = sum(p.values.get(key, {}).get("count", 0.0) for p in old)
            for metric, stat in SCENARIO_SUMS:
                if key.startswith(metric + "{scenario:"):
                    self.sums[key, stat] = sum(_sum_cell(p, key, stat) for p in old)
        if data.worker_names != self.names:
            self.names = data.worker_names
            self.workers = [",".join(self._worker_cell(p, i) for p in old) for i in range(len(self.names))]
        if new:
            self.t = _joined(self.t, [_num(round(p.t_s, 6)) for p in new])
            self.vus = _joined(self.vus, ["null" if p.vus is None else str(int(p.vus)) for p in new])
            for key, (_, type_, columns) in self.series.items():
                for stat in columns:
                    columns[stat] = _joined(columns[stat], [self._cell(p, key, stat, type_) for p in new])
            for i in range(len(self.workers)):
                self.workers[i] = _joined(self.workers[i], [self._worker_cell(p, i) for p in new])
            for key in self.failure_totals:
                self.failure_totals[key] += sum(p.values.get(key, {}).get("count", 0.0) for p in new)
            for (key, stat) in self.sums:
                self.sums[key, stat] += sum(_sum_cell(p, key, stat) for p in new)
        self.n = len(data.points)

    def text(self) -> str:
        series = ",".join(
            f'{escaped}:{{"type":"{type_}","values":{{'
            + ",".join(f'"{stat}":[{col}]' for stat, col in columns.items()) + "}}"
            for escaped, type_, columns in self.series.values()
        )
        return (
            f'{{"version":{TIMELINE_VERSION},"intervalS":{_num(self.interval_s)},"bucketS":{_num(self.bucket_s)},'
            f'"t":[{self.t}],"vus":[{self.vus}],"series":{{{series}}},'
            f'"workers":{{"names":{script_json({"n": list(self.names)})[5:-1]},'
            f'"requests":[{",".join("[" + col + "]" for col in self.workers)}]}}}}'
        )


def _sink_value(series: Mapping[str, Sink], key: str, stat: str, elapsed_s: float) -> float | None:
    sink = series.get(key)
    if sink is None:
        return None
    if isinstance(sink, TrendSink) and sink.sketch.count == 0:
        return None
    stats = (stat,) if isinstance(sink, TrendSink) else ()
    return finite(sink.values(elapsed_s, stats).get(stat))


class LiveDocuments:
    """Report documents of one run as it goes, each as script-safe JSON text (see the module docstring)."""

    def __init__(self, title: str, metric_defs: Mapping[str, MetricDef] | None = None) -> None:
        self.title = title
        self._columns: _Columns | None = None
        # the scenario's own metrics too (a Trend("checkout_duration", is_time=True) is in ms)
        self._contains = {name: m.contains.value for name, m in (metric_defs or {}).items()}

    def payload(self, snapshot: LiveSnapshot) -> str:
        data = snapshot.timeline
        if self._columns is None or not self._columns.fits(data):
            self._columns = _Columns(data)
        cols = self._columns
        cols.extend(data)
        el, s = snapshot.elapsed_s, snapshot.series
        scenarios = scenario_names(list(cols.series))
        kinds: list[dict[str, Any]] = []
        for key, total in cols.failure_totals.items():
            tags = dict(parse_series_name(key).tags)
            kinds.append({"key": key, "status": tags.get("status", ""), "errorCode": tags.get("error_code", ""),
                          "total": total})
        kinds.sort(key=lambda k: -k["total"])
        doc: dict[str, Any] = {
            "version": DOCUMENT_VERSION, "title": self.title, "live": True, "finished": False,
            "elapsedS": el, "maxDurationS": finite(snapshot.max_duration_s),
            "failureKinds": kinds, "workerNames": list(cols.names),
            "thresholds": [
                {"metric": v.key, "source": v.source, "ok": v.ok, "observed": finite(v.observed),
                 "unit": threshold_unit(parse_series_name(v.key).metric,
                                        None if s.get(v.key) is None else s[v.key].type.value, v.source,
                                        self._contains.get(parse_series_name(v.key).metric))}
                for v in snapshot.verdicts],
            "checks": [],  # each check's counts come with the summary; live, the overall rate (stats)
            "stats": {
                "requests": _sink_value(s, "http_reqs", "count", el),
                "requestRate": _sink_value(s, "http_reqs", "rate", el),
                "failedShare": _sink_value(s, "http_req_failed", "rate", el),
                "p95Ms": _sink_value(s, "http_req_duration", "p(95)", el),
                "checksShare": _sink_value(s, "checks", "rate", el),
                "iterations": _sink_value(s, "iterations", "count", el),
                "vusMax": _sink_value(s, "vus_max", "max", el),
                "dataReceived": _sink_value(s, "data_received", "count", el),
                "dataSent": _sink_value(s, "data_sent", "count", el),
            },
            "scenarios": scenarios,
            "scenarioRows": [
                scenario_row(sc, cols.sums, _sink_value(s, f"http_req_duration{{scenario:{sc}}}", "p(95)", el))
                for sc in scenarios],
            "workers": [],
            "metrics": [],
            "endpoints": endpoint_section(snapshot.endpoints() if snapshot.endpoints is not None else None),
        }
        head = script_json(doc)
        return head[:-1] + ',"timeline":' + cols.text() + "}"


def live_document(snapshot: LiveSnapshot, *, title: str) -> dict[str, Any]:
    """One snapshot's document as a dict (what :meth:`LiveDocuments.payload` sends, read back)."""
    doc: dict[str, Any] = json.loads(LiveDocuments(title).payload(snapshot))
    return doc

"""``--out json=FILE``: the timeline's points as k6's JSON output lines (NDJSON).

k6's json output (``internal/output/json`` in k6's source) writes one line per metric, the
first time the metric appears, then one line per sample::

    {"type":"Metric","data":{"name":"http_reqs","type":"counter","contains":"default",
     "thresholds":[],"submetrics":null},"metric":"http_reqs"}
    {"type":"Point","data":{"time":"2026-12-02T12:40:01.5Z","value":17,"tags":{}},"metric":"http_reqs"}

surge writes the same two kinds of line, with the same keys in the same order, but a Point
is **one interval of the fleet, not one sample**: surge's workers send interval aggregates
(t-digests, counts), never single samples, so that a run of any size costs the same to
report. One Point per series per interval point of the timeline (:mod:`surge.results.timeline`):

- ``time`` is the interval's *end*, the run's wall-clock start plus the point's ``t_s``
  (RFC 3339, UTC, as Go writes ``time.Time``: fractional seconds without trailing zeros);
- ``value`` is the interval's count for a counter, its rate (passes / total) for a rate, the
  gauge's value, and the average for a trend;
- ``tags`` are the series' tags: ``http_reqs`` (no tags) is the whole fleet, and a tagged
  series (``http_reqs{scenario:purchase}``, a threshold's ``http_req_duration{expected_response:true}``,
  ``surge_http_failures{status:503,error_code:1503}``) is a *subset* of it in the same
  interval. Sum only the untagged points for totals;
- ``stats`` (surge's own key, absent in k6) has every statistic of the point: for a trend
  ``count, avg, min, med, max, p(90), p(95), p(99)``; for a counter ``count, rate`` (per
  second); for a rate ``passes, fails, rate``; for a gauge ``value, min, max``.

``vus`` Points come from the timeline's VU samples (the fleet's VUs at the interval's last
whole second), with ``stats`` ``{"value": n}``.

A Metric line's ``thresholds`` are the threshold sources on the bare metric name and its
``submetrics`` the tagged keys thresholds name (``null`` if none), as k6 fills them.

Pure: this module formats lines; :mod:`surge.results.outfiles` writes them as the run goes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from surge.common.metrics import MetricDef, parse_series_name
from surge.results.thresholds import MetricThresholds
from surge.results.timeline import Point

__all__ = ["IntervalRow", "MetricInfo", "catalog", "interval_rows", "json_number", "metric_line", "ndjson_lines",
           "point_line", "rfc3339"]

# The stat a Point's ``value`` (and a csv row's ``metric_value``) carries, per type.
VALUE_STAT = {"counter": "count", "rate": "rate", "gauge": "value", "trend": "avg"}


@dataclass(frozen=True)
class MetricInfo:
    """What a Metric line says of one metric."""

    name: str
    type: str  # counter | rate | gauge | trend
    contains: str  # default | time | data
    thresholds: tuple[str, ...] = ()  # sources on the bare name, e.g. ("p(95)<500",)
    submetrics: tuple[str, ...] = ()  # tagged keys named by thresholds, e.g. ("http_req_duration{expected_response:true}",)


def catalog(metric_defs: Mapping[str, MetricDef], thresholds: Sequence[MetricThresholds]) -> dict[str, MetricInfo]:
    """Every known metric's Metric-line facts, from the scenario's metric definitions and thresholds."""
    sources: dict[str, list[str]] = {}
    subs: dict[str, list[str]] = {}
    for mt in thresholds:
        name = mt.series.metric
        if mt.series.tags:
            key = str(mt.series)
            if key not in subs.setdefault(name, []):
                subs[name].append(key)
        else:
            sources.setdefault(name, []).extend(t.source for t in mt.thresholds)
    return {
        name: MetricInfo(name, d.type.value, d.contains.value, tuple(sources.get(name, ())), tuple(subs.get(name, ())))
        for name, d in metric_defs.items()
    }


def rfc3339(at: datetime) -> str:
    """``at`` in UTC as Go's ``time.Time`` marshals to JSON (RFC 3339, trailing zeros of the fraction dropped)."""
    at = at.astimezone(timezone.utc)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond:
        text += ("." + f"{at.microsecond:06d}").rstrip("0")
    return text + "Z"


def json_number(x: float) -> float | int | None:
    """As Go's encoder writes a float64: whole numbers without ``.0``; None (null) for non-finite."""
    if not math.isfinite(x):
        return None
    if x == int(x) and abs(x) < 1e15:
        return int(x)
    return x


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def metric_line(info: MetricInfo) -> str:
    """The Metric line announcing ``info`` (no newline)."""
    submetrics: list[dict[str, Any]] | None = None
    if info.submetrics:
        submetrics = []
        for key in info.submetrics:
            sn = parse_series_name(key)
            suffix = ",".join(f"{k}:{v}" for k, v in sn.tags)
            submetrics.append({"name": str(sn), "suffix": suffix, "tags": dict(sn.tags)})
    data = {"name": info.name, "type": info.type, "contains": info.contains,
            "thresholds": list(info.thresholds), "submetrics": submetrics}
    return _dumps({"type": "Metric", "data": data, "metric": info.name})


@dataclass(frozen=True)
class IntervalRow:
    """One series in one interval: what a Point line or a csv row says."""

    metric: str
    tags: tuple[tuple[str, str], ...]
    type: str
    t_s: float  # the interval's end, seconds after the start
    value: float
    stats: Mapping[str, float]


def _series_order(key: str) -> tuple[str, int, str]:
    sn = parse_series_name(key)
    return (sn.metric, 1 if sn.tags else 0, key)  # a metric's whole series before its subsets


def interval_rows(point: Point, types: Mapping[str, str]) -> Iterator[IntervalRow]:
    """The rows of one interval point: ``vus`` first, then every series with data, by metric name.

    A series whose value is not a finite number (no data) is left out, and so is a counter
    that counted nothing in the interval (k6 writes no sample then; and the saved timeline's
    columns hold 0 for it, so live points and points read back give the same rows).
    """
    if point.vus is not None:
        yield IntervalRow("vus", (), "gauge", point.t_s, float(point.vus), {"value": float(point.vus)})
    for key in sorted(point.values, key=_series_order):
        type_ = types.get(key)
        if type_ is None:
            continue
        stats = point.values[key]
        value = stats.get(VALUE_STAT[type_], math.nan)
        if not math.isfinite(value) or (type_ == "counter" and value == 0):
            continue
        sn = parse_series_name(key)
        yield IntervalRow(sn.metric, sn.tags, type_, point.t_s, value, stats)


def point_line(row: IntervalRow, start: datetime) -> str:
    """The Point line of one row (no newline); ``start`` is the run's wall-clock start."""
    data = {
        "time": rfc3339(start + timedelta(seconds=row.t_s)),
        "value": json_number(row.value),
        "tags": dict(row.tags),
        "stats": {stat: json_number(v) for stat, v in row.stats.items()},
    }
    return _dumps({"type": "Point", "data": data, "metric": row.metric})


def ndjson_lines(points: Iterable[Point], types: Mapping[str, str], start: datetime,
                 metrics: Mapping[str, MetricInfo], seen: set[str]) -> Iterator[str]:
    """The lines for ``points``: a Metric line before a metric's first Point (``seen`` is updated).

    A metric missing from ``metrics`` (not in the scenario's definitions) is announced from
    the series' own type, ``contains`` "default".
    """
    for point in points:
        for row in interval_rows(point, types):
            if row.metric not in seen:
                seen.add(row.metric)
                yield metric_line(metrics.get(row.metric) or MetricInfo(row.metric, row.type, "default"))
            yield point_line(row, start)

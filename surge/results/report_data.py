"""What the HTML report and the live dashboard show, as one JSON document.

The page (``surge/results/assets/report.js``) draws everything from one *report document*;
this module builds it, from either source:

- :func:`report_document`: a finished run's summary data (what ``--summary-export`` writes and
  ``handle_summary`` gets, with surge's ``timeline`` key), for ``--report FILE.html`` and
  ``surge report RESULTS.json``;
- :mod:`surge.results.live_document`: a :class:`~surge.results.live.LiveSnapshot`, for
  ``--dashboard`` (the same shape, built incrementally).

So the file and the dashboard are the same page with the same code path; the dashboard only
swaps the document once a second. The document's shape (version 1)::

    {"version": 1, "title": "...", "live": false, "finished": true,
     "elapsedS": 11.6, "maxDurationS": 40.0 | null,
     "stats": {"requests", "requestRate", "failedShare", "p95Ms", "checksShare", "iterations",
               "vusMax", "dataReceived", "dataSent"},          # each a number or null
     "thresholds": [{"metric", "source", "ok", "observed" (null: not in the values), "unit"}],
     "checks": [{"path", "name", "passes", "fails"}],           # every check, groups flattened
     "failureKinds": [{"key", "status", "errorCode", "total"}], # surge_http_failures series
     "scenarios": ["purchase", ...],                            # with per-scenario series, else []
     "scenarioRows": [{"scenario", "requests", "failedShare", "avgMs", "p95Ms", "iterations"}],
     "endpoints": {"rows": [...], "hint": str | null},          # the summary's endpoints (surge/results/endpoints.py)
     "workers": [state.workers entries],                        # [] while live
     "workerNames": [...],
     "metrics": [{"key", "type", "contains", "values"}],        # the summary's metrics (finished only)
     "timeline": <the timeline's JSON, trimmed to the charted series and stats>}

Units: times are milliseconds (k6's), data bytes, shares 0..1. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from surge.common.metrics import BUILTIN_METRICS, parse_series_name
from surge.results.endpoints import overflow_hint
from surge.results.thresholds import parse_expression
from surge.results.timeline import TimelineData, TimelineFormatError, timeline_from_json

DOCUMENT_VERSION = 1

# The series the page charts, and of a trend the stats it draws: the rest of the timeline
# stays in the summary export (the page would carry it for nothing, and the dashboard would
# serialize it every second).
_CHARTED = frozenset({
    "http_reqs", "http_req_duration", "http_req_failed", "iterations", "iteration_duration",
    "data_sent", "data_received", "checks", "http_req_waiting", "http_req_connecting",
    "http_req_tls_handshaking", "http_req_blocked", "http_req_sending", "http_req_receiving",
    "surge_http_failures",
})
CHARTED_TREND_STATS = ("count", "avg", "med", "p(90)", "p(95)", "p(99)", "max")
_PER_SCENARIO = frozenset({"http_reqs", "http_req_duration", "http_req_failed", "iterations"})


class ReportDataError(ValueError):
    """A file that is not a surge summary export: says which key is wrong and what was expected."""


def finite(x: object) -> float | None:
    """``x`` as a float if it is a finite number, else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def is_charted(key: str) -> bool:
    try:
        name = parse_series_name(key)
    except ValueError:
        return False
    if name.metric == "surge_http_failures":
        return True
    if not name.tags:
        return name.metric in _CHARTED
    return len(name.tags) == 1 and name.tags[0][0] == "scenario" and name.metric in _PER_SCENARIO


def trim_timeline(timeline: Mapping[str, Any]) -> dict[str, Any]:
    """The timeline JSON with only the charted series, and of trends only the charted stats."""
    series: dict[str, Any] = {}
    for key, entry in (timeline.get("series") or {}).items():
        if not is_charted(key):
            continue
        if entry.get("type") == "trend":
            values = entry.get("values") or {}
            entry = {"type": "trend", "values": {s: values[s] for s in CHARTED_TREND_STATS if s in values}}
        series[key] = entry
    return {**timeline, "series": series}


def scenario_names(keys: Sequence[str]) -> list[str]:
    """Scenario names of the ``http_reqs{scenario:X}`` series (multi-scenario runs), in first-seen order.

    Not of any ``{scenario:X}`` series: a single-scenario run has some too, for its thresholds.
    """
    out: list[str] = []
    for key in keys:
        try:
            name = parse_series_name(key)
        except ValueError:
            continue
        if name.metric == "http_reqs" and len(name.tags) == 1 and name.tags[0][0] == "scenario" \
                and name.tags[0][1] not in out:
            out.append(name.tags[0][1])
    return out


def failure_kinds(timeline: Mapping[str, Any]) -> list[dict[str, Any]]:
    kinds = []
    for key, entry in (timeline.get("series") or {}).items():
        try:
            name = parse_series_name(key)
        except ValueError:
            continue
        if name.metric != "surge_http_failures":
            continue
        tags = dict(name.tags)
        counts = (entry.get("values") or {}).get("count") or []
        kinds.append({"key": key, "status": tags.get("status", ""), "errorCode": tags.get("error_code", ""),
                      "total": sum(c for c in counts if isinstance(c, (int, float)))})
    kinds.sort(key=lambda k: -k["total"])
    return kinds


SCENARIO_SUMS = (("http_reqs", "count"), ("iterations", "count"), ("http_req_failed", "passes"),
                 ("http_req_failed", "fails"), ("http_req_duration", "count"), ("http_req_duration", "avg*count"))


def _column_sums(timeline: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """Per-scenario totals over the points (see :func:`scenario_row`) from the timeline's JSON."""
    out: dict[tuple[str, str], float] = {}
    for key, entry in (timeline.get("series") or {}).items():
        values = entry.get("values") or {}
        for metric, stat in SCENARIO_SUMS:
            if not key.startswith(metric + "{scenario:"):
                continue
            if stat == "avg*count":
                pairs = zip(values.get("avg") or [], values.get("count") or [])
                out[key, stat] = sum(a * n for a, n in pairs if a is not None and n is not None)
            else:
                out[key, stat] = sum(x for x in values.get(stat) or [] if x is not None)
    return out


def scenario_row(scenario: str, sums: Mapping[tuple[str, str], float], p95_ms: float | None) -> dict[str, Any]:
    """One scenario's totals, from sums over the timeline's points of its ``{scenario:X}`` series.

    Sums of counts are exact, and so is the average (each point's exact average weighted by its
    count); a percentile is not a sum, so ``p95_ms`` comes from the summary (the series has one
    only when a threshold names it) or the live sinks.
    """
    def total(metric: str, stat: str) -> float | None:
        return sums.get((f"{metric}{{scenario:{scenario}}}", stat))

    failed, passed = total("http_req_failed", "passes"), total("http_req_failed", "fails")
    n, weighted = total("http_req_duration", "count"), total("http_req_duration", "avg*count")
    return {
        "scenario": scenario, "requests": total("http_reqs", "count"),
        "failedShare": failed / (failed + (passed or 0.0)) if failed is not None and failed + (passed or 0.0) else None,
        "avgMs": weighted / n if n and weighted is not None else None, "p95Ms": p95_ms,
        "iterations": total("iterations", "count"),
    }


def _unit(metric: str, contains: str | None = None) -> str:
    if contains is None:
        base = BUILTIN_METRICS.get(metric)
        contains = base.contains.value if base is not None else "default"
    return {"time": "ms", "data": "bytes"}.get(contains, "")


def _aggregation(source: str) -> str | None:
    try:
        return parse_expression(source)[0]
    except ValueError:
        return None


def threshold_unit(metric: str, type_: str | None, source: str, contains: str | None = None) -> str:
    """How to show a threshold's observed value: a rate's rate is a share, a count has no unit."""
    aggregation = _aggregation(source)
    if type_ == "rate" and aggregation == "rate":
        return "share"
    if aggregation in ("count", "rate"):
        return ""
    return _unit(metric, contains)


def _flat_checks(group: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = [{"path": str(c.get("path", "")), "name": str(c.get("name", "")),
            "passes": int(c.get("passes", 0)), "fails": int(c.get("fails", 0))}
           for c in group.get("checks") or []]
    for sub in group.get("groups") or []:
        if isinstance(sub, Mapping):
            out.extend(_flat_checks(sub))
    return out


def _value(metrics: Mapping[str, Any], key: str, stat: str) -> float | None:
    entry = metrics.get(key)
    if not isinstance(entry, Mapping):
        return None
    return finite((entry.get("values") or {}).get(stat))


def _base(title: str, timeline: Mapping[str, Any], *, live: bool, finished: bool, elapsed_s: float,
          max_duration_s: float | None) -> dict[str, Any]:
    trimmed = trim_timeline(timeline)
    return {
        "version": DOCUMENT_VERSION, "title": title, "live": live, "finished": finished,
        "elapsedS": elapsed_s, "maxDurationS": max_duration_s,
        "failureKinds": failure_kinds(trimmed),
        "workerNames": list((trimmed.get("workers") or {}).get("names") or []),
        "timeline": trimmed,
    }


def report_document(summary: object, *, title: str, source: str = "summary") -> dict[str, Any]:
    """The document of a finished run, from its summary data; ``source`` names it in errors.

    Raises :class:`ReportDataError` naming the key that is missing or malformed.
    """
    try:
        return _report_document(summary, title=title, source=source)
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ReportDataError):
            raise
        raise ReportDataError(f"{source}: malformed summary data ({type(exc).__name__}: {exc})") from None


def _report_document(summary: object, *, title: str, source: str) -> dict[str, Any]:
    if not isinstance(summary, Mapping):
        raise ReportDataError(f"{source}: expected a JSON object (a --summary-export file), got {type(summary).__name__}")
    if "timeline" not in summary:
        raise ReportDataError(f"{source}: no 'timeline' key: not a surge --summary-export file "
                              "(k6's exports and handle_summary's own files have none)")
    try:
        timeline_from_json(summary["timeline"])  # validates; the page reads the JSON form
    except TimelineFormatError as exc:
        raise ReportDataError(f"{source}: {exc}") from None
    metrics = summary.get("metrics")
    if not isinstance(metrics, Mapping):
        raise ReportDataError(f"{source}: 'metrics': expected an object of metrics")
    state = summary.get("state") if isinstance(summary.get("state"), Mapping) else {}
    assert isinstance(state, Mapping)
    duration_s = (finite(state.get("testRunDurationMs")) or 0.0) / 1000.0
    doc = _base(title, summary["timeline"], live=False, finished=True, elapsed_s=duration_s, max_duration_s=None)

    thresholds = []
    for key, entry in metrics.items():
        if not isinstance(entry, Mapping):
            raise ReportDataError(f"{source}: 'metrics'[{key!r}]: expected an object")
        values = entry.get("values") or {}
        for expr, verdict in (entry.get("thresholds") or {}).items():
            thresholds.append({"metric": key, "source": expr,
                               "ok": bool(verdict.get("ok")) if isinstance(verdict, Mapping) else False,
                               "observed": finite(values.get(_aggregation(expr) or "")),
                               "unit": threshold_unit(parse_series_name(key).metric, entry.get("type"), expr,
                                                       entry.get("contains"))})
    root = summary.get("root_group")
    doc["thresholds"] = thresholds
    doc["checks"] = _flat_checks(root) if isinstance(root, Mapping) else []
    doc["stats"] = {
        "requests": _value(metrics, "http_reqs", "count"),
        "requestRate": _value(metrics, "http_reqs", "rate"),
        "failedShare": _value(metrics, "http_req_failed", "rate"),
        "p95Ms": _value(metrics, "http_req_duration", "p(95)"),
        "checksShare": _value(metrics, "checks", "rate"),
        "iterations": _value(metrics, "iterations", "count"),
        "vusMax": _value(metrics, "vus_max", "max"),
        "dataReceived": _value(metrics, "data_received", "count"),
        "dataSent": _value(metrics, "data_sent", "count"),
    }
    scenarios = scenario_names(list(doc["timeline"]["series"]))
    doc["scenarios"] = scenarios
    sums = _column_sums(doc["timeline"])
    doc["scenarioRows"] = [
        scenario_row(sc, sums, _value(metrics, f"http_req_duration{{scenario:{sc}}}", "p(95)")) for sc in scenarios
    ]
    doc["endpoints"] = endpoint_section(summary.get("endpoints"))
    workers = state.get("workers")
    doc["workers"] = [dict(w) for w in workers if isinstance(w, Mapping)] if isinstance(workers, list) else []
    doc["metrics"] = [{"key": key, "type": entry.get("type"), "contains": entry.get("contains"),
                       "values": entry.get("values") or {}} for key, entry in metrics.items()]
    return doc


def endpoint_section(endpoints: object) -> dict[str, Any]:
    """The page's ``endpoints``: the summary's rows (those that are objects) and the overflow hint, if any."""
    if not isinstance(endpoints, Mapping):
        return {"rows": [], "hint": None}
    rows = endpoints.get("rows")
    return {"rows": [dict(r) for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else [],
            "hint": overflow_hint(endpoints)}


def waiting_document(*, title: str, interval_s: float = 1.0) -> dict[str, Any]:
    """The dashboard's document before the first snapshot: the fleet is still gathering."""
    doc = _base(title, TimelineData(interval_s, interval_s, (), {}, ()).to_json(), live=True, finished=False,
                elapsed_s=0.0, max_duration_s=None)
    doc.update(thresholds=[], checks=[], stats={}, scenarios=[], scenarioRows=[], workers=[], metrics=[],
               endpoints=endpoint_section(None))
    return doc

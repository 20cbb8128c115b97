"""``--junit FILE``: the run's thresholds as JUnit XML, for CI servers.

One test case per threshold expression, in the order the scenario declares them::

    <testsuites name="surge" tests="3" failures="1" errors="0" time="12.503">
      <testsuite name="scenarios/ticket_purchase.py" tests="3" failures="1" errors="0" skipped="0" time="12.503">
        <testcase classname="http_req_duration" name="p(95)&lt;500" time="0" />
        <testcase classname="checkout_duration" name="p(95)&lt;500" time="0">
          <failure type="threshold" message="p(95)=612.3ms, expected p(95)&lt;500">...</failure>
        </testcase>

``classname`` is the metric key as written (``http_req_duration{scenario:purchase}``), ``name``
the threshold's source, ``time`` 0 (a threshold is judged once, at the end), the suites'
``time`` the run's duration in seconds. A crossed threshold's ``failure`` names the value the
fleet observed (the same number the exit code was decided on): milliseconds for a time
metric's ``avg``/``min``/``med``/``max``/``p(N)``, per second for a counter's ``rate``.

This is the shape Jenkins' JUnit plugin and GitLab's ``artifacts:reports:junit`` read
(``testsuites/testsuite/testcase/failure``, counts as attributes). Pure: the caller writes it.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from surge.common.metrics import parse_series_name
from surge.results.thresholds import Verdict, parse_expression

__all__ = ["junit_xml", "observed_text"]

_TIME_AGGREGATIONS = ("avg", "min", "med", "max")


def _number(x: float) -> str:
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.4g}"


def observed_text(verdict: Verdict, contains: str = "default", metric_type: str = "") -> str:
    """``p(95)=612.3ms``: the verdict's aggregation and the value observed, with its unit."""
    try:
        aggregation = parse_expression(verdict.source)[0]
    except ValueError:
        aggregation = "value"
    if not math.isfinite(verdict.observed):
        return f"{aggregation}=no data"
    unit = ""
    if contains == "time" and (aggregation in _TIME_AGGREGATIONS or aggregation.startswith("p(")):
        unit = "ms"
    elif metric_type == "counter" and aggregation == "rate":
        unit = "/s"
    return f"{aggregation}={_number(verdict.observed)}{unit}"


def _seconds(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) and x >= 0 else "0"


def junit_xml(verdicts: Sequence[Verdict], *, suite: str, duration_s: float,
              metrics: Mapping[str, tuple[str, str]] | None = None) -> str:
    """JUnit XML of ``verdicts`` (one ``testcase`` each), as a UTF-8 document string.

    ``metrics`` maps a metric name to its ``(type, contains)`` (e.g. ``("trend", "time")``),
    for the observed value's unit.
    """
    metrics = metrics or {}
    failures = sum(1 for v in verdicts if not v.ok)
    attrs = {"tests": str(len(verdicts)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "surge", **attrs, "time": _seconds(duration_s)})
    ts = ET.SubElement(root, "testsuite", {"name": suite, **attrs, "skipped": "0", "time": _seconds(duration_s)})
    for v in verdicts:
        case = ET.SubElement(ts, "testcase", {"classname": v.key, "name": v.source, "time": "0"})
        if v.ok:
            continue
        try:
            metric = parse_series_name(v.key).metric
        except ValueError:
            metric = v.key
        type_, contains = metrics.get(metric, ("", "default"))
        message = f"{observed_text(v, contains, type_)}, expected {v.source}"
        failure = ET.SubElement(case, "failure", {"type": "threshold", "message": message})
        why = " (abortOnFail)" if v.abort_on_fail else ""
        failure.text = f"threshold {v.source} on {v.key} crossed: {message}{why}"
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

"""The run as Prometheus metric families: one :class:`LiveSnapshot` in, the exposition's families out.

``surge run --prometheus [ADDR:]PORT`` serves these (:mod:`surge.results.prometheus_server`
owns the socket; this module only maps). The names are those of k6's Prometheus remote-write
output (``experimental-prometheus-rw``, ``pkg/remotewrite`` in xk6-output-prometheus-remote: its
trend-as-gauges mapping), with ``surge_`` where k6 has ``k6_``, so a k6 dashboard carries over by
renaming the prefix:

=========  ===========  =========================================================================
k6 type    Prometheus   name and value
=========  ===========  =========================================================================
counter    counter      ``surge_<metric>_total``, as counted (bytes for ``data_sent``)
gauge      gauge        ``surge_<metric>``, as set (``surge_vus``)
rate       gauge        ``surge_<metric>_rate``, the share of non-zero values (0..1)
trend      gauges       ``surge_<metric>_<stat>`` per stat; a time in *seconds* (k6 divides too)
=========  ===========  =========================================================================

A trend's stats are the run's ``summaryTrendStats`` (``--summary-trend-stats``), named as k6 names
them: ``p(95)`` is ``p95``, ``p(99.9)`` ``p999``; ``count`` stays a count. A metric whose name
already starts with ``surge_`` (surge's own: ``surge_loop_lag``, ``surge_http_failures``...) is
not prefixed twice. k6's docs promise a base-unit suffix (``_seconds``); its gauge and
trend-as-gauges mapping add none, and surge follows the code, which is what dashboards query.

Every number is the fleet's, cumulative since the start (what the end-of-test summary would say
if the run ended now): a trend's p95 is over the whole run so far, not the last scrape interval;
take ``rate()`` of a counter for per-second values.

A series key's tags become labels: ``http_req_duration{scenario:purchase}`` is
``surge_http_req_duration_p95{scenario="purchase"}`` beside the untagged fleet-wide
``surge_http_req_duration_p95`` (select it with ``{scenario=""}``; do not ``sum`` a
family over its label sets, the untagged series already holds them all). A tag name that is no
valid label name is rewritten (``[^A-Za-z0-9_]`` to ``_``); values pass as they are and the
exposition escapes them.

Besides the metrics:

* ``surge_threshold_ok{metric="http_req_duration{scenario:purchase}",threshold="p(95)<500"}``: 1
  while the threshold holds, 0 once crossed; ``surge_threshold_observed{...}`` the value it was
  judged on, in the threshold's own units (milliseconds for a time);
* ``surge_run_elapsed_seconds``, ``surge_run_max_duration_seconds``;
* ``surge_worker_http_reqs_total{worker="..."}``: requests per worker (the first 32, over the
  timeline's closed intervals).

The collector is a custom one over the latest snapshot, registered in a registry of its own,
never prometheus_client's global one: nothing carries over between two runs in one process.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from surge.common.metrics import METRIC_NAME_RE, MetricDef, MetricType, Sink, ValueType, parse_series_name
from surge.results.live import LiveSnapshot

PREFIX = "surge_"

_LABEL_BAD = re.compile(r"[^A-Za-z0-9_]")


def label_name(tag: str) -> str:
    """A tag name as a valid Prometheus label name (``[A-Za-z_][A-Za-z0-9_]*``, no leading ``__``)."""
    name = _LABEL_BAD.sub("_", tag)
    if not name or name[0].isdigit():
        name = "_" + name
    if name.startswith("__"):  # reserved for Prometheus's own labels
        name = "tag" + name
    return name


def stat_suffix(stat: str) -> str:
    """A trend stat as k6 names it in a series: ``p(95)`` -> ``p95``, ``p(99.9)`` -> ``p999``, ``avg`` -> ``avg``."""
    if stat.startswith("p(") and stat.endswith(")"):
        return "p" + stat[2:-1].replace(".", "")
    return _LABEL_BAD.sub("_", stat)


def _base(metric: str) -> str:
    return metric if metric.startswith(PREFIX) else PREFIX + metric


def _trend_factor(contains: ValueType) -> float:
    """From a trend's unit to Prometheus's base unit: milliseconds to seconds, as k6's ``adaptUnit``."""
    return 1e-3 if contains is ValueType.TIME else 1.0


class _Families:
    """Families by name, in first-seen order, each owned by the one source that named it first.

    Two sources can map onto one name (a custom gauge ``threshold_ok`` is ``surge_threshold_ok``,
    the thresholds' family): the later one is left out rather than mixed in. Within a family a
    label set already there is dropped too, so the exposition never holds a sample twice.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[str, Metric]] = {}
        self._labels_seen: dict[str, set[tuple[tuple[str, str], ...]]] = {}

    def add(self, owner: str, kind: Callable[[str, str], Metric], name: str, doc: str,
            labels: Sequence[tuple[str, str]], value: float) -> None:
        if not math.isfinite(value):
            return  # an empty gauge's min/max: no sample says more than a bogus one
        entry = self._by_name.get(name)
        if entry is None:
            entry = self._by_name[name] = (owner, kind(name, doc))
            self._labels_seen[name] = set()
        elif entry[0] != owner:
            return
        family = entry[1]
        key = tuple(sorted(labels))
        if key in self._labels_seen[name]:
            return
        self._labels_seen[name].add(key)
        # Not add_metric: it pairs values with one list of label names for the whole family, and a
        # family's series carry different tags (none, scenario, scenario and status...).
        sample_name = family.name + "_total" if family.type == "counter" else family.name
        family.samples.append(Sample(sample_name, dict(labels), value, None, None))

    def __iter__(self) -> Iterator[Metric]:
        return iter(family for _, family in self._by_name.values())


def _labels(key: str) -> list[tuple[str, str]]:
    try:
        tags = parse_series_name(key).tags
    except ValueError:
        return [("series", key)]  # not a key surge makes; kept apart from the untagged series all the same
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for tag, value in tags:
        name = label_name(tag)
        if name not in seen:  # "a-b" and "a.b" both become a_b: the first one keeps it
            seen.add(name)
            out.append((name, value))
    return out


def _metric_families(out: _Families, key: str, sink: Sink, metric: MetricDef, elapsed_s: float,
                     trend_stats: tuple[str, ...]) -> None:
    base = _base(metric.name)
    labels = _labels(key)
    owner = "metric:" + metric.name
    doc = f"{metric.name} ({metric.type.value}, fleet-wide since the start)"
    if sink.type is MetricType.COUNTER:
        out.add(owner, CounterMetricFamily, base, doc, labels, sink.values(elapsed_s)["count"])
    elif sink.type is MetricType.GAUGE:
        if sink.is_empty():
            return
        out.add(owner, GaugeMetricFamily, base, doc, labels, sink.values(elapsed_s)["value"])
    elif sink.type is MetricType.RATE:
        if sink.is_empty():
            return
        out.add(owner, GaugeMetricFamily, base + "_rate", doc, labels, sink.values(elapsed_s)["rate"])
    else:
        if sink.is_empty():
            return
        values = sink.values(elapsed_s, trend_stats)
        factor = _trend_factor(metric.contains)
        for stat in trend_stats:
            if stat == "count":
                out.add(owner, GaugeMetricFamily, base + "_count", doc, labels, values[stat])
            else:
                out.add(owner, GaugeMetricFamily, f"{base}_{stat_suffix(stat)}", f"{doc}: {stat}", labels,
                        values[stat] * factor)


def families(snapshot: LiveSnapshot, metric_defs: Mapping[str, MetricDef]) -> list[Metric]:
    """Every family of one snapshot, in a stable order: the run, the thresholds, then the metrics by key."""
    out = _Families()
    out.add("run", GaugeMetricFamily, "surge_run_elapsed_seconds", "Seconds since the fleet's start.", [],
            snapshot.elapsed_s)
    out.add("run", GaugeMetricFamily, "surge_run_max_duration_seconds",
            "The plan's longest possible run, graceful stops included.", [], snapshot.max_duration_s)
    for v in snapshot.verdicts:
        labels = [("metric", v.key), ("threshold", v.source)]
        out.add("threshold", GaugeMetricFamily, "surge_threshold_ok", "1 while the threshold holds, 0 once crossed.",
                labels, 1.0 if v.ok else 0.0)
        out.add("threshold", GaugeMetricFamily, "surge_threshold_observed",
                "The value the threshold was judged on (in the threshold's units).", labels, v.observed)
    trend_stats = tuple(dict.fromkeys(snapshot.options.summary_trend_stats))
    for key in sorted(snapshot.series):
        sink = snapshot.series[key]
        name = key.partition("{")[0].strip()
        if not METRIC_NAME_RE.match(name):
            continue  # no key surge makes; a name the classic text format cannot hold breaks older scrapers
        metric = metric_defs.get(name) or MetricDef(name, sink.type)
        if metric.type is not sink.type:
            metric = MetricDef(name, sink.type)
        _metric_families(out, key, sink, metric, snapshot.elapsed_s, trend_stats)
    per_worker = _worker_requests(snapshot)
    for worker, total in zip(snapshot.workers, per_worker):
        out.add("worker", CounterMetricFamily, "surge_worker_http_reqs", "Requests per worker over closed intervals.",
                [("worker", worker)], total)
    return list(out)


def _worker_requests(snapshot: LiveSnapshot) -> list[float]:
    totals: list[float] = []
    for point in snapshot.timeline.points:
        for i, n in enumerate(point.worker_requests):
            if i == len(totals):
                totals.append(0.0)
            totals[i] += n
    return totals


class SnapshotCollector(Collector):
    """A prometheus_client collector that renders the latest snapshot it was given, on each scrape.

    ``set`` is called from the coordinator's loop, ``collect`` from the HTTP server's threads: one
    reference assignment hands the snapshot over (snapshots are never changed once built). A
    snapshot is rendered once, however many scrapers ask for it in its second.
    """

    def __init__(self, metric_defs: Mapping[str, MetricDef]) -> None:
        self._metric_defs = dict(metric_defs)
        self._snapshot: LiveSnapshot | None = None
        self._rendered: tuple[LiveSnapshot, list[Metric]] | None = None

    def set(self, snapshot: LiveSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snapshot = self._snapshot
        if snapshot is None:
            return []  # before the first second of the run: an empty, valid exposition
        rendered = self._rendered
        if rendered is None or rendered[0] is not snapshot:
            rendered = self._rendered = (snapshot, families(snapshot, self._metric_defs))
        return rendered[1]

"""The run over time: the fleet's interval reports merged into points, bounded for long runs.

Every worker reports at whole multiples of the report interval after the shared start
instant (``surge/worker/agent.py``), so a report whose ``elapsed_s`` is about ``k`` intervals
covers the ``k``-th interval of the fleet's one timeline. The coordinator hands every report
it applies to :meth:`Timeline.add`; the timeline folds it into the *bucket* of that interval
and, once every live worker has reported past a bucket's end, *closes* the bucket: it turns
its sinks into a :class:`Point` of plain numbers (counts, rates, a trend's avg/min/med/max and
percentiles) and drops the sinks. Everything downstream (``--out json|csv``, ``--junit``'s
context, the HTML report, the live dashboard, Prometheus) reads points, never reports.

**Bounded.** A bucket is ``per`` report intervals wide, ``per`` chosen from the run's longest
possible duration so that a run never has more than about :data:`MAX_POINTS` points (a
3-hour soak at 1 s reports: 11-second buckets). Open buckets are few: a bucket also closes
when it is :data:`CLOSE_AFTER_INTERVALS` intervals behind the newest report, so a worker that
stops reporting (before it is declared lost) cannot hold the timeline open. Per-worker request
counts over time are kept for the first :data:`MAX_WORKER_SERIES` workers only; the summary's
per-worker table has every worker's totals.

**Nothing is lost.** A report for a bucket that has already closed (a worker far behind) is
folded into the oldest bucket still open, or a new one after the last closed: the point's
time is then late by that much, its counts are kept. Counts summed over all points equal the
summary's totals.

**Exact and not.** Counts and rates are sums. A trend point's percentiles come from the
t-digests of every report in the bucket, merged (t-digest accuracy, as the summary's);
``count``, ``avg``, ``min`` and ``max`` are exact. ``vus`` is the fleet's count at the
bucket's last whole-second tick (the sum of the workers' ``vus_samples`` for it).

The serialized form (:meth:`Timeline.to_json`, read back by :func:`timeline_from_json`) is
columnar, as chart libraries want it::

    {"version": 1, "intervalS": 1.0, "bucketS": 1.0,
     "t": [1.0, 2.0, ...],                 # each point's end, seconds after the start
     "vus": [10, 20, ...],                 # null where no worker sent a sample
     "series": {"http_req_duration": {"type": "trend",
                                       "values": {"count": [...], "p(95)": [...], ...}}, ...},
     "workers": {"names": ["w-0", ...], "requests": [[...], ...]}}

A value is ``null`` in an interval where the series had no data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from surge.common.metrics import (
    FLEET_SUMMED_GAUGES,
    CounterSink,
    GaugeSink,
    RateSink,
    Sink,
    TrendSink,
    trend_stat,
)
from surge.results.stat_row import Layout, PointValues, StatRow

MAX_POINTS = 1000
MAX_WORKER_SERIES = 32
CLOSE_AFTER_INTERVALS = 10
TIMELINE_VERSION = 1

TREND_STATS = ("count", "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)")
COUNTER_STATS = ("count", "rate")
RATE_STATS = ("passes", "fails", "rate")
GAUGE_STATS = ("value", "min", "max")
STATS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "counter": COUNTER_STATS,
    "rate": RATE_STATS,
    "gauge": GAUGE_STATS,
    "trend": TREND_STATS,
}


def _type_name(sink: Sink) -> str:
    if isinstance(sink, TrendSink):
        return "trend"
    if isinstance(sink, CounterSink):
        return "counter"
    if isinstance(sink, RateSink):
        return "rate"
    return "gauge"


def _stats(sink: Sink, width_s: float) -> StatRow:
    """One bucket's sink as the plain numbers of its type (see :data:`STATS_BY_TYPE`), packed."""
    if isinstance(sink, TrendSink):
        sk = sink.sketch
        return StatRow(TREND_STATS, [float(sk.count) if stat == "count" else trend_stat(sk, stat)
                                     for stat in TREND_STATS])
    if isinstance(sink, CounterSink):
        return StatRow(COUNTER_STATS, (sink.total, sink.total / width_s))
    if isinstance(sink, RateSink):
        return StatRow(RATE_STATS, (float(sink.passes), float(sink.total - sink.passes),
                                    sink.passes / sink.total if sink.total else 0.0))
    assert isinstance(sink, GaugeSink)
    v = sink.values(width_s)
    return StatRow(GAUGE_STATS, (v["value"], v["min"], v["max"]))


def bucket_intervals(interval_s: float, max_duration_s: float, max_points: int = MAX_POINTS) -> int:
    """How many report intervals one point spans, so a run of ``max_duration_s`` has at most ``max_points``."""
    if interval_s <= 0 or not math.isfinite(max_duration_s) or max_duration_s <= 0:
        return 1
    return max(1, math.ceil(max_duration_s / (interval_s * max_points)))


@dataclass(frozen=True)
class Point:
    """One closed bucket: the fleet over ``(t_s - width, t_s]`` seconds after the start."""

    t_s: float
    vus: int | None
    values: Mapping[str, Mapping[str, float]]  # series key -> stat -> value
    worker_requests: tuple[float, ...] = ()  # the first MAX_WORKER_SERIES workers, in worker order


@dataclass
class _Bucket:
    sinks: dict[str, Sink] = field(default_factory=dict)
    worker_requests: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TimelineData:
    """A timeline's points and what they hold: read back from JSON, or a live timeline's copy."""

    interval_s: float
    bucket_s: float
    points: tuple[Point, ...]
    types: Mapping[str, str]  # series key -> "counter" | "rate" | "gauge" | "trend"
    worker_names: tuple[str, ...]

    def column(self, key: str, stat: str) -> list[float | None]:
        """One stat of one series at every point: None where it had no data, but a counter's is 0."""
        empty = 0.0 if self.types.get(key) == "counter" else None
        out: list[float | None] = []
        for p in self.points:
            v = p.values.get(key)
            out.append(empty if v is None else v.get(stat, empty))
        return out

    def to_json(self) -> dict[str, Any]:
        series: dict[str, Any] = {}
        for key, type_ in self.types.items():
            series[key] = {"type": type_,
                           "values": {stat: [_finite_or_none(x) for x in self.column(key, stat)]
                                      for stat in STATS_BY_TYPE[type_]}}
        return {
            "version": TIMELINE_VERSION,
            "intervalS": self.interval_s,
            "bucketS": self.bucket_s,
            "t": [round(p.t_s, 6) for p in self.points],
            "vus": [p.vus for p in self.points],
            "series": series,
            "workers": {
                "names": list(self.worker_names),
                "requests": [[p.worker_requests[i] if i < len(p.worker_requests) else 0.0 for p in self.points]
                             for i in range(len(self.worker_names))],
            },
        }


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Timeline:
    """Interval points of one run, fed report by report (see the module docstring)."""

    def __init__(self, interval_s: float, max_duration_s: float, workers: Sequence[str],
                 max_points: int = MAX_POINTS) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = interval_s
        self.per = bucket_intervals(interval_s, max_duration_s, max_points)
        self.bucket_s = interval_s * self.per
        # The last bucket there can be: twice the plan's points, room for teardown and late
        # reports. A report claiming a later time (a worker's clock gone wrong, or a hostile
        # one: elapsed_s is only checked to be finite) is folded into it, counts kept, so no
        # number in a report can make the timeline allocate a point per claimed interval.
        self._last_bucket = 2 * max(1, max_points)
        self._names = tuple(workers[:MAX_WORKER_SERIES])
        self._open: dict[int, _Bucket] = {}
        self._closed_through = 0  # buckets 1..this are points
        self._points: list[Point] = []
        self._layouts: dict[tuple[tuple[str, tuple[str, ...]], ...], Layout] = {}  # shared by packed points
        self._types: dict[str, str] = {}
        # Per worker, the latest interval it reported; how many live workers are at each, and
        # the lowest such interval (the frontier: every bucket ending at or before it is complete).
        self._at = [0] * len(workers)
        self._live = [True] * len(workers)
        self._count_at: dict[int, int] = {0: len(workers)}
        self._frontier = 0 if workers else math.inf
        self._newest = 0
        self._vus: dict[int, int] = {}  # tick (whole seconds) -> fleet sum of samples
        # Told of each bucket's sinks as it closes, before they are dropped (the aggregate
        # takes its trends into the fleet's from there).
        self.on_close: Callable[[Mapping[str, Sink]], None] | None = None

    # ------------------------------------------------------------------ feeding

    def _interval_of(self, elapsed_s: float) -> int:
        # A report at about k intervals covers the k-th (the worker reports at whole multiples).
        return max(1, round(elapsed_s / self.interval_s))

    def add(self, worker: int, elapsed_s: float, series: Mapping[str, Sink],
            vus_samples: Iterable[tuple[int, int]] = ()) -> None:
        """Fold one applied report of ``worker`` (index) into its interval's bucket."""
        j = self._interval_of(elapsed_s) if math.isfinite(elapsed_s) else self._newest or 1
        j = min(j, self._last_bucket * self.per)
        b = max(-(-j // self.per), self._closed_through + 1)
        bucket = self._open.get(b)
        if bucket is None:
            bucket = self._open[b] = _Bucket()
        sinks = bucket.sinks
        for key, sink in series.items():
            if key in FLEET_SUMMED_GAUGES:
                continue
            into = sinks.get(key)
            if into is None:
                into = sinks[key] = type(sink)()
                self._types.setdefault(key, _type_name(sink))
            elif type(into) is not type(sink):
                continue  # a key whose type changed mid-run (the aggregate refuses it too)
            into.merge(sink)  # type: ignore[arg-type]
        if worker < len(self._names):
            reqs = series.get("http_reqs")
            if isinstance(reqs, CounterSink):
                bucket.worker_requests[worker] = bucket.worker_requests.get(worker, 0.0) + reqs.total
        for tick, n in vus_samples:
            if self._closed_through * self.bucket_s - 1e-9 <= tick <= self._last_bucket * self.bucket_s:
                self._vus[tick] = self._vus.get(tick, 0) + n
        self._newest = max(self._newest, j)
        if 0 <= worker < len(self._at) and self._live[worker] and j > self._at[worker]:
            self._move(worker, j)
        self._close_ready()

    def _move(self, worker: int, j: int | None) -> None:
        """Worker ``worker`` is now at interval ``j`` (None: retired, no longer waited for)."""
        old = self._at[worker]
        left = self._count_at[old] - 1
        if left:
            self._count_at[old] = left
        else:
            del self._count_at[old]
        if j is None:
            self._live[worker] = False
        else:
            self._at[worker] = j
            self._count_at[j] = self._count_at.get(j, 0) + 1
        if not self._count_at:
            self._frontier = math.inf
        elif old == self._frontier and left == 0:
            self._frontier = min(self._count_at)  # rare: only when the slowest worker moves on

    def retire(self, worker: int) -> None:
        """``worker`` has finished (or was lost): no bucket waits for it any more."""
        if 0 <= worker < len(self._live) and self._live[worker]:
            self._move(worker, None)
            self._close_ready()

    def _close_ready(self) -> None:
        while self._open:
            b = min(self._open)
            end_interval = b * self.per
            if end_interval <= self._frontier or self._newest - end_interval >= CLOSE_AFTER_INTERVALS:
                self._close(b)
            else:
                return

    def _close(self, b: int) -> None:
        # The buckets before b that got no report at all are points with no data: the time
        # axis has no holes (a chart of requests/s shows the gap as zero, not as a straight line).
        for empty in range(self._closed_through + 1, b):
            self._points.append(Point(empty * self.bucket_s, self._vus_at(empty), {}, ()))
        bucket = self._open.pop(b)
        if self.on_close is not None:
            self.on_close(bucket.sinks)
        values = PointValues.pack({key: _stats(sink, self.bucket_s) for key, sink in bucket.sinks.items()},
                                  self._layouts)
        reqs = tuple(bucket.worker_requests.get(i, 0.0) for i in range(len(self._names)))
        self._points.append(Point(b * self.bucket_s, self._vus_at(b), values, reqs))
        self._closed_through = b

    def _vus_at(self, b: int) -> int | None:
        """The fleet's VUs at the latest tick in ``[start, end)`` of bucket ``b``; older ticks are dropped.

        Not the tick at ``end`` itself: it is sampled at the very instant of the report that
        closes the bucket, so it may ride on the next one, after the bucket closed.
        """
        end = b * self.bucket_s - 1e-9
        start = end - self.bucket_s
        ticks = [t for t in self._vus if start <= t < end]
        value = self._vus[max(ticks)] if ticks else None
        for t in [t for t in self._vus if t < end]:
            del self._vus[t]
        return value

    def finish(self) -> None:
        """The run is over: close every open bucket."""
        while self._open:
            self._close(min(self._open))

    # ------------------------------------------------------------------ reading

    def open_trends(self) -> dict[str, list[TrendSink]]:
        """The trend sinks of the buckets not closed yet, per key, oldest first."""
        out: dict[str, list[TrendSink]] = {}
        for b in sorted(self._open):
            for key, sink in self._open[b].sinks.items():
                if isinstance(sink, TrendSink):
                    out.setdefault(key, []).append(sink)
        return out

    @property
    def points(self) -> Sequence[Point]:
        return self._points

    @property
    def worker_names(self) -> tuple[str, ...]:
        """The workers with a request series of their own (the first MAX_WORKER_SERIES)."""
        return self._names

    def data(self) -> TimelineData:
        """The closed points so far, with what each series is (a snapshot for outputs to read)."""
        return TimelineData(self.interval_s, self.bucket_s, tuple(self._points), dict(self._types), self._names)

    def to_json(self) -> dict[str, Any]:
        return self.data().to_json()


class TimelineFormatError(ValueError):
    """A saved timeline that cannot be read: names the key and what was expected."""


def timeline_from_json(obj: object) -> TimelineData:
    """Read back :meth:`Timeline.to_json`'s form (e.g. from a saved summary's ``timeline``)."""
    if not isinstance(obj, Mapping):
        raise TimelineFormatError(f"timeline: expected an object, got {type(obj).__name__}")
    if obj.get("version") != TIMELINE_VERSION:
        raise TimelineFormatError(f"timeline.version: expected {TIMELINE_VERSION}, got {obj.get('version')!r}")
    try:
        interval_s = float(obj["intervalS"])
        bucket_s = float(obj["bucketS"])
        ts = [float(t) for t in obj["t"]]
        vus = list(obj["vus"])
        series = obj["series"]
        workers = obj.get("workers") or {"names": [], "requests": []}
    except (KeyError, TypeError, ValueError) as exc:
        raise TimelineFormatError(f"timeline: missing or malformed key ({exc})") from None
    if len(vus) != len(ts):
        raise TimelineFormatError(f"timeline.vus: expected {len(ts)} values (one per t), got {len(vus)}")
    if not isinstance(series, Mapping):
        raise TimelineFormatError("timeline.series: expected an object of series")
    types: dict[str, str] = {}
    values: list[dict[str, dict[str, float]]] = [{} for _ in ts]
    for key, entry in series.items():
        type_ = entry.get("type") if isinstance(entry, Mapping) else None
        if type_ not in STATS_BY_TYPE:
            raise TimelineFormatError(f"timeline.series[{key!r}].type: expected one of {sorted(STATS_BY_TYPE)}")
        types[key] = type_
        for stat, column in (entry.get("values") or {}).items():
            if not isinstance(column, list) or len(column) != len(ts):
                raise TimelineFormatError(f"timeline.series[{key!r}].values[{stat!r}]: expected {len(ts)} values")
            for i, x in enumerate(column):
                if x is not None:
                    values[i].setdefault(key, {})[stat] = float(x)
    names = tuple(str(n) for n in workers.get("names", []))
    requests = workers.get("requests", [])
    if len(requests) != len(names) or any(len(r) != len(ts) for r in requests):
        raise TimelineFormatError(f"timeline.workers.requests: expected {len(names)} rows of {len(ts)} values")
    layouts: dict[tuple[tuple[str, tuple[str, ...]], ...], Layout] = {}
    points = tuple(
        Point(ts[i], None if vus[i] is None else int(vus[i]), PointValues.pack(values[i], layouts),
              tuple(float(requests[w][i]) for w in range(len(names))))
        for i in range(len(ts))
    )
    return TimelineData(interval_s, bucket_s, points, types, names)

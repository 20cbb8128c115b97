"""k6's metric model: four metric types, the built-in metrics, series names and mergeable sinks.

A *metric* has a name, a :class:`MetricType` and what its values contain (plain numbers,
time in milliseconds, or bytes). A *series* is a metric, or a metric restricted to samples
whose tags match a filter: ``http_req_duration{scenario:purchase}`` (k6 calls these
sub-metrics). Series are tracked where a threshold or the summary asks for them.

A *sink* is the running aggregate of one series. Sinks form a monoid: ``merge`` is
associative and an empty sink is its identity, which is what lets a worker ship a delta per
flush and the coordinator fold deltas from any number of workers into one answer:

============  ==========================  ==============================================
type          state                       values (k6's names)
============  ==========================  ==============================================
counter       total                       count, rate (per second of test time)
gauge         last value, min, max, when  value, min, max
rate          non-zero adds, all adds     rate, passes, fails
trend         :class:`~surge.common.sketch.Sketch`  avg, min, med, max, p(N), count
============  ==========================  ==============================================

Built-ins are k6's (:data:`BUILTIN_METRICS`), plus surge's own, among them
``interrupted_iterations`` (iterations cut off at the end of their grace period, which k6
leaves out of ``iterations`` without counting them) and ``iteration_duration_from_schedule``
(arrival-rate executors: each iteration from its *planned* start to its end, the
coordinated-omission-corrected latency wrk2 reports and k6 lacks).
"""

from __future__ import annotations

import math
import reprlib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from surge.common.errors import ProtocolError
from surge.common.sketch import Sketch


class MetricType(Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    RATE = "rate"
    TREND = "trend"


class ValueType(Enum):
    DEFAULT = "default"
    TIME = "time"
    DATA = "data"


@dataclass(frozen=True)
class MetricDef:
    name: str
    type: MetricType
    contains: ValueType = ValueType.DEFAULT


def _builtin(name: str, type_: MetricType, contains: ValueType = ValueType.DEFAULT) -> MetricDef:
    return MetricDef(name, type_, contains)


_T, _C, _G, _R = MetricType.TREND, MetricType.COUNTER, MetricType.GAUGE, MetricType.RATE
_TIME, _DATA = ValueType.TIME, ValueType.DATA

BUILTIN_METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        _builtin("http_reqs", _C),
        _builtin("http_req_duration", _T, _TIME),
        _builtin("http_req_blocked", _T, _TIME),
        _builtin("http_req_connecting", _T, _TIME),
        _builtin("http_req_tls_handshaking", _T, _TIME),
        _builtin("http_req_sending", _T, _TIME),
        _builtin("http_req_waiting", _T, _TIME),
        _builtin("http_req_receiving", _T, _TIME),
        _builtin("http_req_failed", _R),
        _builtin("iterations", _C),
        _builtin("iteration_duration", _T, _TIME),
        _builtin("dropped_iterations", _C),
        # surge's own: iterations cut off at the end of their grace period (not in iterations)
        _builtin("interrupted_iterations", _C),
        # surge's own, arrival-rate executors only: from an iteration's *planned* start to its
        # end, so a stalled server cannot hide its stall (coordinated omission, as wrk2 measures)
        _builtin("iteration_duration_from_schedule", _T, _TIME),
        _builtin("vus", _G),
        _builtin("vus_max", _G),
        _builtin("checks", _R),
        _builtin("data_sent", _C, _DATA),
        _builtin("data_received", _C, _DATA),
        _builtin("group_duration", _T, _TIME),
        # surge's own: is the load generator itself the bottleneck? (surge/worker/saturation.py)
        _builtin("surge_loop_lag", _T, _TIME),
        _builtin("surge_cpu", _T),  # a share of one core, per second per worker
        _builtin("surge_saturated", _R),
        # values a scenario added that were not finite numbers (surge/common/api.py)
        _builtin("surge_dropped_samples", _C),
        # exceptions raised by the scenario's code, each ending one iteration (surge/worker/vu.py)
        _builtin("surge_script_errors", _C),
        # surge's own: failed requests by kind, one series per (status, error_code) as
        # ``surge_http_failures{status:503,error_code:1503}`` (at most MAX_FAILURE_KINDS per worker,
        # the rest under ``{status:other}``), for the timeline's "failures over time" charts.
        _builtin("surge_http_failures", _C),
    )
}

# Metrics surge records for its own outputs (the timeline, the HTML report), not for the
# end-of-test summary: they are left out of the summary data (a threshold may still name one).
INTERNAL_METRICS = frozenset({"surge_http_failures"})

# Distinct (status, error_code) series one worker's recorder keeps before it lumps the rest
# together: a target that answers with many statuses cannot grow the reports without bound.
MAX_FAILURE_KINDS = 32


def failure_kind_key(status: int, error_code: int) -> str:
    """The ``surge_http_failures`` series key of one kind of failed request."""
    return f"surge_http_failures{{status:{status},error_code:{error_code}}}"


FAILURE_KIND_OTHER = "surge_http_failures{status:other}"

# Gauges whose fleet value is the sum of every worker's latest value (each worker runs its
# share of the VUs), not the latest value written by any one of them.
FLEET_SUMMED_GAUGES = frozenset({"vus", "vus_max"})

# Metrics whose values are a share of one (1.0 = 100 %), shown in the text summary as a
# percentage: surge_cpu is a share of one core (1.5 = one and a half cores busy).
SHARE_METRICS = frozenset({"surge_cpu"})

METRIC_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


# --------------------------------------------------------------------------- series names

# A quoted value in the tag body may hold braces (a URL template's ``${}``); nothing else may.
# Possessive (``*+``): a key with many quotes that fails at its end fails at once.
_SERIES_RE = re.compile(r"""^\s*([^{}\s]+)\s*(?:\{((?:"[^"]*"|'[^']*'|`[^`]*`|[^{}])*+)\})?\s*$""", re.S)
# one "tag:value" item: the value may be quoted, and then may hold commas
_TAG_RE = re.compile(r"""\s*([^:,]*?)\s*(:)\s*("[^"]*"|'[^']*'|`[^`]*`|[^,]*?)\s*(?:,|$)""")


@dataclass(frozen=True)
class SeriesName:
    """A metric name with an optional tag filter; ``str()`` gives the canonical key."""

    metric: str
    tags: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if not self.tags:
            return self.metric
        return self.metric + "{" + ",".join(f"{k}:{quote_tag_value(v)}" for k, v in self.tags) + "}"

    def matches(self, tags: dict[str, str]) -> bool:
        return all(tags.get(k) == v for k, v in self.tags)


_NEEDS_QUOTES = re.compile(r"[,{}\"'`]|^\s|\s$")


def quote_tag_value(value: str) -> str:
    """``value`` as it goes in a series key: bare, or quoted when it holds ``,``, a brace or a quote.

    The quote is the first of ``"``, ``'`` and a backtick that the value does not contain, so
    that :func:`parse_series_name` reads the same value back; a value holding all three (no
    URL should) has its backticks turned into ``'`` first.
    """
    if not _NEEDS_QUOTES.search(value):
        return value
    for q in "\"'`":
        if q not in value:
            return q + value + q
    return "`" + value.replace("`", "'") + "`"


def parse_series_name(text: str) -> SeriesName:
    """Parse ``name`` or ``name{tag:value,tag2:value2}`` (values may be quoted).

    Raises ``ValueError`` with what was expected. The metric name is not checked against
    the known metrics here; that is the options validator's job, which knows the scenario.
    """
    m = _SERIES_RE.match(text)
    if m is None:
        raise ValueError(f"expected 'metric' or 'metric{{tag:value}}', got {text!r}")
    metric, body = m.group(1), m.group(2)
    if not METRIC_NAME_RE.match(metric):
        raise ValueError(f"{metric!r} is not a valid metric name (letters, digits, '_')")
    if body is None:
        return SeriesName(metric)
    tags: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body) or not tags:
        m2 = _TAG_RE.match(body, pos)
        if m2 is None or not m2.group(1) or m2.end() == pos:
            rest = body[pos:].split(",")[0].strip()
            if not rest:
                raise ValueError(f"empty tag filter in {text!r}; expected 'metric{{tag:value}}'")
            raise ValueError(f"tag filter {rest!r} in {text!r} is not 'tag:value'")
        key, value = m2.group(1), m2.group(3)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
            value = value[1:-1]
        if any(k == key for k, _ in tags):
            raise ValueError(f"tag {key!r} appears twice in {text!r}")
        tags.append((key, value))
        pos = m2.end()
        if pos == len(body) and body.rstrip().endswith(","):
            raise ValueError(f"empty tag filter in {text!r}; expected 'metric{{tag:value}}'")
    return SeriesName(metric, tuple(tags))


# --------------------------------------------------------------------------- sinks


def _num(v: object, what: str) -> float:
    if not isinstance(v, bool) and isinstance(v, (int, float)):
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if math.isfinite(f):
            return f
    raise ProtocolError(f"{what} must be a finite number, got {reprlib.repr(v)}")


def _count(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**63:
        raise ProtocolError(f"{what} must be a non-negative 64-bit integer, got {reprlib.repr(v)}")
    return v


def _wire_list(obj: object, n: int, what: str) -> list[Any]:
    if not isinstance(obj, (list, tuple)) or len(obj) != n:
        raise ProtocolError(f"{what}: expected a list of {n} fields, got {reprlib.repr(obj)}")
    return list(obj)


class CounterSink:
    __slots__ = ("total",)
    type = MetricType.COUNTER

    def __init__(self, total: float = 0.0) -> None:
        self.total = total

    def merge(self, other: CounterSink) -> None:
        self.total += other.total

    def is_empty(self) -> bool:
        return self.total == 0

    def values(self, duration_s: float, trend_stats: tuple[str, ...] = ()) -> dict[str, float]:
        return {"count": self.total, "rate": self.total / duration_s if duration_s > 0 else 0.0}

    def to_wire(self) -> list[Any]:
        return [self.total]

    @classmethod
    def from_wire(cls, obj: object) -> CounterSink:
        (total,) = _wire_list(obj, 1, "counter")
        return cls(_num(total, "counter total"))


class GaugeSink:
    """Last value wins; ``at_s`` (seconds since the run started) says which value is last."""

    __slots__ = ("value", "min", "max", "at_s")
    type = MetricType.GAUGE

    def __init__(self) -> None:
        self.value = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.at_s = -math.inf

    def set(self, value: float, at_s: float) -> None:
        if at_s >= self.at_s:
            self.value, self.at_s = value, at_s
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: GaugeSink) -> None:
        if other.is_empty():
            return
        if other.at_s >= self.at_s:
            self.value, self.at_s = other.value, other.at_s
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def is_empty(self) -> bool:
        return self.at_s == -math.inf

    def values(self, duration_s: float, trend_stats: tuple[str, ...] = ()) -> dict[str, float]:
        if self.is_empty():
            return {"value": 0.0, "min": 0.0, "max": 0.0}
        return {"value": self.value, "min": self.min, "max": self.max}

    def to_wire(self) -> list[Any]:
        if self.is_empty():
            return [0.0, 0.0, 0.0, None]
        return [self.value, self.min, self.max, self.at_s]

    @classmethod
    def from_wire(cls, obj: object) -> GaugeSink:
        value, lo, hi, at_s = _wire_list(obj, 4, "gauge")
        g = cls()
        numbers = _num(value, "gauge value"), _num(lo, "gauge min"), _num(hi, "gauge max")
        if at_s is None:  # never set: exactly what to_wire sends for an empty gauge
            if numbers != (0.0, 0.0, 0.0):
                raise ProtocolError("gauge: an empty gauge carries values")
            return g
        g.value, g.min, g.max = numbers
        g.at_s = _num(at_s, "gauge time")
        if not g.min <= g.value <= g.max:
            raise ProtocolError(f"gauge: value {g.value} outside [{g.min}, {g.max}]")
        return g


class RateSink:
    __slots__ = ("passes", "total")
    type = MetricType.RATE

    def __init__(self, passes: int = 0, total: int = 0) -> None:
        self.passes = passes
        self.total = total

    def merge(self, other: RateSink) -> None:
        self.passes += other.passes
        self.total += other.total

    def is_empty(self) -> bool:
        return self.total == 0

    def values(self, duration_s: float, trend_stats: tuple[str, ...] = ()) -> dict[str, float]:
        rate = self.passes / self.total if self.total else 0.0
        return {"rate": rate, "passes": self.passes, "fails": self.total - self.passes}

    def to_wire(self) -> list[Any]:
        return [self.passes, self.total]

    @classmethod
    def from_wire(cls, obj: object) -> RateSink:
        passes, total = _wire_list(obj, 2, "rate")
        p, t = _count(passes, "rate passes"), _count(total, "rate total")
        if p > t:
            raise ProtocolError(f"rate: {p} passes out of {t}")
        return cls(p, t)


DEFAULT_TREND_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)")
_PCT_RE = re.compile(r"^p\((\d+(?:\.\d+)?)\)$")


def trend_stat(sketch: Sketch, stat: str) -> float:
    """One of k6's trend statistics: avg, min, med, max, count, p(N) with 0 <= N <= 100."""
    m = _PCT_RE.match(stat)
    if stat not in ("count", "avg", "min", "max", "med") and (m is None or float(m.group(1)) > 100):
        raise ValueError(f"unknown trend statistic {stat!r}; expected avg, min, med, max, count or p(N)")
    if stat == "count":
        return float(sketch.count)
    if sketch.count == 0:
        return 0.0  # k6 reports an empty trend as zeros
    if stat == "avg":
        return sketch.mean
    if stat == "min":
        return sketch.min
    if stat == "max":
        return sketch.max
    if stat == "med":
        return sketch.quantile(0.5)
    assert m is not None
    return sketch.quantile(float(m.group(1)) / 100)


class TrendSink:
    __slots__ = ("sketch",)
    type = MetricType.TREND

    def __init__(self, sketch: Sketch | None = None) -> None:
        self.sketch = sketch if sketch is not None else Sketch()

    def merge(self, other: TrendSink) -> None:
        self.sketch.merge(other.sketch)

    def is_empty(self) -> bool:
        return self.sketch.count == 0

    def values(
        self, duration_s: float, trend_stats: tuple[str, ...] = DEFAULT_TREND_STATS
    ) -> dict[str, float]:
        return {s: trend_stat(self.sketch, s) for s in trend_stats}

    def to_wire(self) -> list[Any]:
        return self.sketch.to_wire()

    @classmethod
    def from_wire(cls, obj: object) -> TrendSink:
        return cls(Sketch.from_wire(obj))


Sink = CounterSink | GaugeSink | RateSink | TrendSink

SINK_TYPES: dict[MetricType, type[CounterSink] | type[GaugeSink] | type[RateSink] | type[TrendSink]] = {
    MetricType.COUNTER: CounterSink,
    MetricType.GAUGE: GaugeSink,
    MetricType.RATE: RateSink,
    MetricType.TREND: TrendSink,
}


def new_sink(type_: MetricType) -> Sink:
    return SINK_TYPES[type_]()


def merge_into(into: Sink, other: Sink) -> None:
    """Merge two sinks of the same type (a type mismatch is a programming error)."""
    if type(into) is not type(other):
        raise TypeError(f"cannot merge {type(other).__name__} into {type(into).__name__}")
    into.merge(other)  # type: ignore[arg-type]


def aggregate(sink: Sink, stat: str, duration_s: float) -> float:
    """The value of one aggregation (``p(95)``, ``rate``, ``count``...) of a sink."""
    if isinstance(sink, TrendSink):
        return trend_stat(sink.sketch, stat)
    vals = sink.values(duration_s)
    if stat not in vals:
        raise ValueError(f"{sink.type.value} metrics have no {stat!r}; expected one of {', '.join(vals)}")
    return float(vals[stat])


# Which aggregations a threshold may use on each metric type (k6's table).
THRESHOLD_AGGREGATIONS: dict[MetricType, tuple[str, ...]] = {
    MetricType.COUNTER: ("count", "rate"),
    MetricType.GAUGE: ("value",),
    MetricType.RATE: ("rate",),
    MetricType.TREND: ("avg", "min", "max", "med", "p(N)"),
}

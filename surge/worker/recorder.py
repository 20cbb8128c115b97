"""The worker's recorder: per-request outcomes in, one delta of sinks per flush out.

Per sample the recorder only appends a float to a list or bumps a number; the t-digest for
each trend series is built once per flush from that interval's raw values
(:meth:`Sketch.from_samples`), which costs far less than inserting every sample into a digest
and keeps memory bounded by one interval's samples whatever the run's length.

Series: every sample goes to its metric's series. A sample also goes to each tracked
sub-metric (``http_req_duration{scenario:purchase}``) whose tag filter it matches; the tag
set it is matched against is the VU's tags (``scenario`` and the scenario's ``tags``, set in
:data:`vu_tags` by the executor for each VU task) overlaid with the sample's own tags (for
HTTP: ``method``, ``status``, ``url``, ``name``, ``expected_response``, ``error_code``, ``proto``; for
checks: ``check``). Tags are only assembled when a sub-metric of that metric exists, so an
untagged run pays nothing for them.

Groups (:class:`surge.common.api.group`): every sample is also tagged ``group`` with the path
of the group the VU is in when it is recorded (``""`` outside any group, as in k6), between
the VU's tags and the sample's own. Checks are counted per group, keyed as
:func:`surge.common.api.check_key` says; the first ``group_duration`` sample of each group
path (recorded when the group ends) also puts that path in the next flush's checks as a
zero-count marker, once per recorder, so a group with no checks still reaches the summary.

Per endpoint (:mod:`surge.common.endpoint_stats`): every request also lands in its row of the
per-endpoint table, keyed by its name (the ``name`` in the request's ``tags``, else its URL),
method, group and scenario. At most ``max_endpoints`` rows are kept, the first ones seen; the
requests of any later row go to the one overflow row, and the first few names folded away are
shipped once each (``surge_endpoint_overflow_names``) for the coordinator's hint. So a scenario
that puts an id in every URL grows neither this process nor its reports.

A flush hands over everything recorded since the previous one and starts afresh: the caller
(the agent) then owns the delta and keeps it until the coordinator has acknowledged it.

Bad values are stopped where a scenario adds them (:mod:`surge.common.api`); the recorder
still refuses them as a second line of defence, because one NaN in a trend list would make
``flush`` raise and take the worker's reporter (and every later interval) with it: ``add``
drops a value that is not a finite number, and ``flush`` filters non-finite values that came
by the HTTP hot path, each counted in ``surge_dropped_samples``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING

from surge.common import api
from surge.common.endpoint_stats import (
    DATA_RECEIVED,
    DATA_SENT,
    DEFAULT_MAX_ENDPOINTS,
    DURATION,
    FAILURES,
    OVERFLOW_NAMES,
    EndpointRow,
    RowCap,
    failure_tags,
)
from surge.common.metrics import (
    BUILTIN_METRICS,
    FAILURE_KIND_OTHER,
    MAX_FAILURE_KINDS,
    CounterSink,
    GaugeSink,
    MetricDef,
    MetricType,
    RateSink,
    SeriesName,
    Sink,
    TrendSink,
    failure_kind_key,
    parse_series_name,
)
from surge.common.sketch import Sketch

if TYPE_CHECKING:
    from surge.worker.http import Response

_GROUP_PATH = api.GROUP_PATH  # read per request: the ContextVar itself, not a call to api.current_group

vu_tags: ContextVar[Mapping[str, str]] = ContextVar("surge_vu_tags", default={})

_HTTP_TRENDS = (
    "http_req_duration",
    "http_req_blocked",
    "http_req_connecting",
    "http_req_tls_handshaking",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
)
_HTTP_METRICS = frozenset((*_HTTP_TRENDS, "http_reqs", "http_req_failed", "data_sent", "data_received"))

Delta = tuple[dict[str, Sink], dict[str, tuple[int, int]]]

_DROPPED = "surge_dropped_samples"


def _finite(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except TypeError:  # not a number at all
        return False


class _Row:
    """One endpoint row's interval: its durations, bytes and failures by kind, and its keys."""

    __slots__ = ("row", "durations", "sent", "received", "failures", "keys")

    def __init__(self, row: EndpointRow) -> None:
        self.row = row
        self.durations: list[float] = []
        self.sent = 0.0
        self.received = 0.0
        self.failures: dict[tuple[int, int] | None, int] = {}  # None: a kind past MAX_FAILURE_KINDS
        self.keys = (row.key(DURATION), row.key(DATA_SENT), row.key(DATA_RECEIVED))


class Recorder:
    """Accumulates one interval of samples; :meth:`flush` returns them as sinks."""

    def __init__(
        self,
        *,
        submetrics: Sequence[str] = (),
        clock: Callable[[], float],
        metric_defs: Mapping[str, MetricDef] | None = None,
        max_endpoints: int = DEFAULT_MAX_ENDPOINTS,
    ) -> None:
        self._clock = clock  # seconds since the run started, for gauges' "last value"
        self._defs: dict[str, MetricDef] = {**BUILTIN_METRICS, **(metric_defs or api.declared_metrics())}
        self._trends: dict[str, list[float]] = {}
        self._counters: dict[str, float] = {}
        self._rates: dict[str, list[int]] = {}
        self._gauges: dict[str, GaugeSink] = {}
        self._checks: dict[str, list[int]] = {}
        self._groups_seen: set[str] = set()
        self._new_groups: list[str] = []  # group paths first seen since the last flush
        self._subs: dict[str, list[tuple[SeriesName, str]]] = {}
        for key in submetrics:
            sn = parse_series_name(key)
            if sn.tags:
                self._subs.setdefault(sn.metric, []).append((sn, key))
        self._http_subs = any(m in self._subs for m in _HTTP_METRICS)
        # The HTTP hot path appends to these lists directly; flush empties them in place.
        self._http_lists = [self._trends.setdefault(name, []) for name in _HTTP_TRENDS]
        self._counters.update(http_reqs=0.0, data_sent=0.0, data_received=0.0)
        self._failed = self._rates.setdefault("http_req_failed", [0, 0])
        self._failure_keys: dict[tuple[int, int], str] = {}  # (status, error_code) -> its series key
        # (name, method, scenario, group) -> its row; at most max_endpoints + 1 (the overflow row)
        self._rows: dict[tuple[str, str, str, str], _Row] = {}
        self._cap = RowCap(max_endpoints)
        self._overflow_row: _Row | None = None

    # ------------------------------------------------------------------ samples

    def _def(self, metric: str) -> MetricDef:
        d = self._defs.get(metric)
        if d is None:
            # a metric declared after the scenario was loaded (inside default(), say)
            self._defs.update(api.declared_metrics())
            d = self._defs.get(metric)
            if d is None:
                raise KeyError(f"unknown metric {metric!r}")
        return d

    def _put(self, key: str, type_: MetricType, value: float) -> None:
        if type_ is MetricType.TREND:
            lst = self._trends.get(key)
            if lst is None:
                lst = self._trends[key] = []
            lst.append(value)
        elif type_ is MetricType.COUNTER:
            self._counters[key] = self._counters.get(key, 0.0) + value
        elif type_ is MetricType.RATE:
            r = self._rates.get(key)
            if r is None:
                r = self._rates[key] = [0, 0]
            r[0] += value != 0
            r[1] += 1
        else:
            g = self._gauges.get(key)
            if g is None:
                g = self._gauges[key] = GaugeSink()
            g.set(value, self._clock())

    def _put_subs(self, metric: str, type_: MetricType, value: float, tags: Mapping[str, str]) -> None:
        for sn, key in self._subs[metric]:
            if sn.matches(tags):  # type: ignore[arg-type]
                self._put(key, type_, value)

    def add(self, metric: str, value: object, tags: Mapping[str, str] | None = None) -> None:
        """Record one sample of ``metric`` (what ``Trend.add`` and friends call).

        ``value`` is whatever the scenario passed: anything but a finite number is counted in
        ``surge_dropped_samples``, never raised (this module is compiled, see surge/hotpath.py,
        so the check must come before any code typed ``float`` sees it).
        """
        if not _finite(value):
            self._counters[_DROPPED] = self._counters.get(_DROPPED, 0.0) + 1
            return
        value = float(value)  # type: ignore[arg-type]  # _finite took it: a real number
        type_ = self._def(metric).type
        self._put(metric, type_, value)
        if metric in self._subs:
            self._put_subs(metric, type_, value, {**vu_tags.get(), "group": api.current_group(), **(tags or {})})
        if metric == "group_duration" and tags:
            path = tags.get("group")
            if path and path not in self._groups_seen:
                self._groups_seen.add(path)
                self._new_groups.append(path)

    def set_gauge(self, metric: str, value: float) -> None:
        self.add(metric, value)

    def add_check(self, name: str, ok: bool, tags: Mapping[str, str] | None = None) -> None:
        path = api.current_group()
        key = api.check_key(path, name)
        c = self._checks.get(key)
        if c is None:
            c = self._checks[key] = [0, 0]
        c[0 if ok else 1] += 1
        self._put("checks", MetricType.RATE, 1.0 if ok else 0.0)
        if "checks" in self._subs:
            all_tags = {**vu_tags.get(), "group": path, **(tags or {}), "check": name}
            self._put_subs("checks", MetricType.RATE, 1.0 if ok else 0.0, all_tags)

    def add_iteration(self, duration_ms: float) -> None:
        self._counters["iterations"] = self._counters.get("iterations", 0.0) + 1
        self._put("iteration_duration", MetricType.TREND, duration_ms)
        if "iterations" in self._subs or "iteration_duration" in self._subs:
            tags = {**vu_tags.get(), "group": api.current_group()}
            if "iterations" in self._subs:
                self._put_subs("iterations", MetricType.COUNTER, 1.0, tags)
            if "iteration_duration" in self._subs:
                self._put_subs("iteration_duration", MetricType.TREND, duration_ms, tags)

    def record_http(self, resp: Response, tags: Mapping[str, str] | None) -> None:
        """Record one finished (or failed) request: the per-request hot path."""
        t = resp.timings
        lists = self._http_lists
        lists[0].append(t.duration)
        lists[1].append(t.blocked)
        lists[2].append(t.connecting)
        lists[3].append(t.tls_handshaking)
        lists[4].append(t.sending)
        lists[5].append(t.waiting)
        lists[6].append(t.receiving)
        c = self._counters
        c["http_reqs"] += 1
        c["data_sent"] += resp.bytes_sent
        c["data_received"] += resp.bytes_received
        failed = self._failed
        failed[1] += 1
        name = tags.get("name") if tags else None
        where = (name if isinstance(name, str) else resp.url, resp.method,
                 vu_tags.get().get("scenario", ""), _GROUP_PATH.get())
        row = self._rows.get(where)
        if row is None:
            row = self._row(where)
        row.durations.append(t.duration)
        row.sent += resp.bytes_sent
        row.received += resp.bytes_received
        if not resp.expected:
            failed[0] += 1
            kind = (resp.status, resp.error_code)
            self._count_failure(*kind)
            counted = kind if kind in self._failure_keys else None
            row.failures[counted] = row.failures.get(counted, 0) + 1
        if self._http_subs:
            self._record_http_subs(resp, tags)

    def _row(self, where: tuple[str, str, str, str]) -> _Row:
        """The row of a request whose ``where`` has no row yet: a new one, or the overflow row.

        Only an admitted row is remembered under its ``where``; an overflowed request finds
        the overflow row here each time, so the table stays bounded however many names come.
        """
        cap = self._cap
        if cap.settled and self._overflow_row is not None:  # the overflow path, as cheap as a known row
            return self._overflow_row
        admitted = cap.admit(EndpointRow(*where))
        key = (admitted.name, admitted.method, admitted.scenario, admitted.group)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = _Row(admitted)
            if admitted.is_overflow:
                self._overflow_row = row
        return row

    def _count_failure(self, status: int, error_code: int) -> None:
        """One failed request under its kind (``surge_http_failures{status:..,error_code:..}``)."""
        kinds = self._failure_keys
        key = kinds.get((status, error_code))
        if key is None:
            key = FAILURE_KIND_OTHER
            if len(kinds) < MAX_FAILURE_KINDS:
                key = kinds[(status, error_code)] = failure_kind_key(status, error_code)
        c = self._counters
        c[key] = c.get(key, 0.0) + 1.0

    def _record_http_subs(self, resp: Response, tags: Mapping[str, str] | None) -> None:
        all_tags = {
            **vu_tags.get(),
            "group": api.current_group(),
            "method": resp.method,
            "status": str(resp.status),
            "url": resp.url,
            "name": resp.url,
            "expected_response": "true" if resp.expected else "false",
        }
        if resp.error_code:
            all_tags["error_code"] = str(resp.error_code)
        if resp.proto:  # k6's system tag: "HTTP/1.1", "HTTP/2.0" (none when no response came)
            all_tags["proto"] = resp.proto
        if tags:
            all_tags.update(tags)
        t = resp.timings
        values: dict[str, float] = {
            "http_req_duration": t.duration,
            "http_req_blocked": t.blocked,
            "http_req_connecting": t.connecting,
            "http_req_tls_handshaking": t.tls_handshaking,
            "http_req_sending": t.sending,
            "http_req_waiting": t.waiting,
            "http_req_receiving": t.receiving,
            "http_reqs": 1.0,
            "http_req_failed": 0.0 if resp.expected else 1.0,
            "data_sent": float(resp.bytes_sent),
            "data_received": float(resp.bytes_received),
        }
        for metric in self._subs.keys() & _HTTP_METRICS:
            self._put_subs(metric, BUILTIN_METRICS[metric].type, values[metric], all_tags)

    # ------------------------------------------------------------------ flush

    def _flush_rows(self, series: dict[str, Sink]) -> None:
        """The endpoint rows' interval into ``series``.

        A non-finite duration is left out here too; it was counted once already, in
        ``http_req_duration``'s own list.
        """
        for r in self._rows.values():
            values = r.durations
            if not values:
                continue
            if not math.isfinite(sum(values)):
                values[:] = [v for v in values if math.isfinite(v)]
            duration, sent, received = r.keys
            if values:
                series[duration] = TrendSink(Sketch.from_samples(values))
            values.clear()
            if r.sent and math.isfinite(r.sent):
                series[sent] = CounterSink(r.sent)
            if r.received and math.isfinite(r.received):
                series[received] = CounterSink(r.received)
            r.sent = r.received = 0.0
            for kind, n in r.failures.items():
                series[r.row.key(FAILURES, *failure_tags(*(kind or ("other", "other"))))] = CounterSink(n)
            r.failures.clear()
        cap = self._cap
        for name in cap.new_examples:
            series[EndpointRow(name).key(OVERFLOW_NAMES)] = CounterSink(1.0)
        cap.new_examples.clear()

    def flush(self) -> Delta:
        """Everything recorded since the last flush, as sinks; the recorder starts afresh."""
        series: dict[str, Sink] = {}
        dropped = 0
        for key, values in self._trends.items():
            if values:
                # One C-level sum finds a non-finite value (or an overflow) in the whole list;
                # only then is the list filtered.
                if not math.isfinite(sum(values)):
                    kept = [v for v in values if math.isfinite(v)]
                    dropped += len(values) - len(kept)
                    values[:] = kept
                if values:
                    series[key] = TrendSink(Sketch.from_samples(values))
                values.clear()
        for key, total in self._counters.items():
            if not math.isfinite(total):  # an inf or nan byte count: the interval's total is unknowable
                dropped += 1
                self._counters[key] = total = 0.0
            if total:
                series[key] = CounterSink(total)
                self._counters[key] = 0.0
        for key, r in self._rates.items():
            if r[1]:
                series[key] = RateSink(r[0], r[1])
                r[0] = r[1] = 0
        for key, g in self._gauges.items():
            series[key] = g
        self._gauges = {}
        self._flush_rows(series)
        if dropped:
            prev = series.get(_DROPPED)
            series[_DROPPED] = CounterSink(dropped + (prev.total if isinstance(prev, CounterSink) else 0.0))
        checks = {name: (c[0], c[1]) for name, c in self._checks.items() if c[0] or c[1]}
        self._checks = {}
        for path in self._new_groups:
            checks.setdefault(api.check_key(path, ""), (0, 0))
        self._new_groups = []
        return series, checks

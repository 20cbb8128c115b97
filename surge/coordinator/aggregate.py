"""Merging the workers' reports into fleet-wide sinks, each report once and in order.

Per worker, reports are applied strictly in sequence order: a report that arrives early
waits in a buffer until the gap before it is filled, and a sequence number already applied is
a duplicate (a resend whose ack was lost) and is dropped.

**Flat in the number of workers.** Each applied report is folded at once into one set of
fleet-wide sinks; per worker only O(1) state is kept: the next sequence number, the reorder
buffer (bounded by :data:`MAX_AHEAD`, empty unless the network reorders), the finished flag,
a few counters and figures (:class:`WorkerFigures`), the totals of the ``tracked_counters``,
and that worker's ``vus``/``vus_max`` gauges (the fleet's are sums of them). So memory does
not grow with the fleet, and :meth:`Aggregate.series` costs the same whatever its size
(copies of the fleet sinks: the watchdog calls it every tick).

**What is exact and what is not.** Counters, rates, checks and every gauge are independent of
how the workers' reports interleave on the network: sums of the same numbers (exactly so for
integer-valued counters, as all built-in ones are: ``http_reqs`` in the summary is exactly what
the workers sent; a custom counter of fractional values may differ in the last bits), and
gauges by the rule below. Trend percentiles are t-digests folded in the order reports were
applied: for one worker that is sequence order, so the result is bit-for-bit a function of
its reports; across workers the interleaving is network timing, and the fleet's percentiles
agree with any other interleaving's within the t-digest's accuracy (property-tested in
tests/coordinator/test_aggregate.py), not bit for bit. count, sum, min and max of a trend are
exact. Keys come out in a fixed order too (by the lowest worker that sent each, then where
it first appeared in that worker's reports), so the summary does not reorder with timing.

A fleet gauge (any gauge but ``vus`` and ``vus_max``) is defined by the reports alone, never
by their arrival: the fleet's value is the value set at the latest ``at_s`` (seconds since
Start on the worker that set it), a tie going to the higher worker index (and, within one
worker, to its later report); min and max are the least and greatest value any worker set.
Hence any interleaving of the same per-worker reports gives the same fleet gauge.

``vus`` is sampled as k6 does, once per second, on the fleet's shared timeline: each worker
counts its running VUs at each whole second ``k`` after Start (tick ``k``) and sends the
samples in its reports (``Report.vus_samples``). The fleet's count at tick ``k`` is the sum of
the workers' samples for ``k``; a worker that has finished counts 0 from its final report on.
A tick is *complete* when every live worker has reported it; the fleet ``vus`` value is the
sum at the latest complete tick, and its min and max are over the complete ticks. Complete
ticks are folded into the running min and max and dropped, so memory is bounded by how far
the slowest worker's reports lag. (Summing each worker's extremes instead is wrong whenever
workers peak at different moments: 2 VUs then, later, 2 other VUs placed on one worker reads
as 3.) Until one tick is complete — or for workers that send no samples — the fleet value is
the sum of the workers' latest ``vus`` gauges, min and max the sums of theirs.

``vus_max`` is the sum of each worker's allocated VUs (its latest value), as before.

**With a timeline** (:mod:`surge.results.timeline`, the session always gives one), every applied
report is also folded into its interval's bucket there, and a report's *trends* are merged only
into that bucket: when the bucket closes its merged trends join the fleet's sinks, and
:meth:`Aggregate.series` adds the buckets still open. Merging t-digests is the costliest part
of applying a report, and this way each report's is merged once instead of twice (into the
fleet and into the timeline); what the series hold is the same at every step (property-tested).

**Endpoint rows** (``surge_endpoint_*`` series, :mod:`surge.common.endpoint_stats`) go to
:attr:`Aggregate.endpoints`, an :class:`~surge.results.endpoints.EndpointTable` capped at
``max_endpoints`` rows, and nowhere else: not to the fleet's series, not to the timeline.

Every buffer is bounded. A report more than :data:`MAX_AHEAD` numbers ahead of the next one
expected is not kept (``TOO_FAR``) and not acknowledged, so its worker sends it again later:
a worker cannot make the coordinator hold more than ``MAX_AHEAD`` reports for it. A report that
arrived but did not validate is :meth:`Aggregate.skip`-ped: its number counts as applied, with
no data, so that the reports after it are not held back forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from itertools import compress
from operator import not_

from surge.common.endpoint_stats import DEFAULT_MAX_ENDPOINTS, KEY_PREFIX
from surge.common.metrics import FLEET_SUMMED_GAUGES, CounterSink, GaugeSink, RateSink, Sink, TrendSink
from surge.common.protocol import Report
from surge.results.endpoints import EndpointTable
from surge.results.timeline import Timeline


MAX_AHEAD = 256


class Accepted(Enum):
    APPLIED = "applied"  # applied now (perhaps with buffered successors)
    BUFFERED = "buffered"  # ahead of a gap; applied when the gap fills
    DUPLICATE = "duplicate"  # already applied or already buffered
    TOO_FAR = "too far"  # beyond the buffer's bound: not kept, not to be acknowledged


class _Skipped:
    """In place of a report that did not validate: its number, no data."""

    __slots__ = ("final",)

    def __init__(self, final: bool) -> None:
        self.final = final


def _copy(sink: Sink) -> Sink:
    """An independent copy, without folding anything (a trend's digests are shared, never changed)."""
    if isinstance(sink, TrendSink):
        return TrendSink(sink.sketch.copy())
    if isinstance(sink, CounterSink):
        return CounterSink(sink.total)
    if isinstance(sink, RateSink):
        return RateSink(sink.passes, sink.total)
    out = GaugeSink()
    out.value, out.min, out.max, out.at_s = sink.value, sink.min, sink.max, sink.at_s
    return out


@dataclass
class WorkerFigures:
    """One worker's load and health, from the reports applied from it (see :meth:`Aggregate.figures`).

    ``failures`` is ``http_req_failed``'s passes (a Rate counts its non-zero samples: failed
    requests). CPU is ``surge_cpu``, a share of one core per second; loop lag is
    ``surge_loop_lag`` in ms; ``saturated``/``saturation_samples`` are ``surge_saturated``'s
    seconds saturated out of its seconds sampled (:mod:`surge.worker.saturation`).
    """

    requests: int = 0
    failures: int = 0
    cpu_sum: float = 0.0
    cpu_samples: int = 0
    cpu_max: float = 0.0
    lag_sum_ms: float = 0.0
    lag_samples: int = 0
    lag_max_ms: float = 0.0
    saturated: int = 0
    saturation_samples: int = 0

    @property
    def cpu_mean(self) -> float:
        return self.cpu_sum / self.cpu_samples if self.cpu_samples else 0.0

    @property
    def lag_mean_ms(self) -> float:
        return self.lag_sum_ms / self.lag_samples if self.lag_samples else 0.0

    @property
    def saturated_share(self) -> float:
        return self.saturated / self.saturation_samples if self.saturation_samples else 0.0


class Aggregate:
    """The fleet's sinks and checks, and O(1) per worker (see the module docstring)."""

    def __init__(self, n_workers: int, tracked_counters: frozenset[str] = frozenset(),
                 timeline: Timeline | None = None, max_endpoints: int = DEFAULT_MAX_ENDPOINTS) -> None:
        self.n_workers = n_workers
        self.endpoints = EndpointTable(max_endpoints)
        # The run's interval points (surge/results/timeline.py), fed every applied report. With
        # one, a report's trends are merged once, into its interval's bucket, and reach the
        # fleet's sinks bucket by bucket as buckets close (series() adds the open ones): one
        # t-digest merge per report instead of two, the costliest part of applying a report.
        self._timeline = timeline
        if timeline is not None:
            timeline.on_close = self._bucket_closed
        self._next_seq = [1] * n_workers
        self._buffer: list[dict[int, Report | _Skipped]] = [{} for _ in range(n_workers)]
        self._fleet: dict[str, Sink] = {}  # every series but the fleet-summed gauges
        self._gauge_worker: dict[str, int] = {}  # fleet gauge -> the worker whose value it holds
        self._summed: list[dict[str, GaugeSink]] = [{} for _ in range(n_workers)]  # vus, vus_max per worker
        self._checks: dict[str, list[int]] = {}
        # key -> (worker, seq, position) where it was first seen: the order keys come out in
        self._series_first: dict[str, tuple[int, int, int]] = {}
        self._checks_first: dict[str, tuple[int, int, int]] = {}
        self._tracked = tracked_counters
        self._counters: list[dict[str, float]] = [{} for _ in range(n_workers)]
        self._figures = [WorkerFigures() for _ in range(n_workers)]
        self.finished = [False] * n_workers
        self.applied_reports = 0
        # Per worker, for the summary and for what a lost worker leaves behind.
        self.reports = [0] * n_workers  # reports applied
        self.skipped = [0] * n_workers  # reports that did not validate
        self.reported_s = [0.0] * n_workers  # run time covered by the reports applied
        self.requests = [0] * n_workers  # http_reqs in the reports applied
        # vus on the fleet's timeline (see the module docstring)
        self._last_tick = [-1] * n_workers  # the highest tick each worker has reported
        self._tick_sums: dict[int, int] = {}  # tick -> sum of the samples so far, ticks not yet complete
        self._complete = -1  # ticks up to this one are complete and folded
        self._vus_now = self._vus_min = self._vus_max = 0

    def next_seq(self, worker: int) -> int:
        """The lowest sequence number of ``worker``'s not yet applied."""
        return self._next_seq[worker]

    def accept(self, worker: int, report: Report) -> Accepted:
        return self._take(worker, report.seq, report)

    def skip(self, worker: int, seq: int, final: bool) -> Accepted:
        """Count ``seq`` as applied with no data (its report arrived but did not validate)."""
        return self._take(worker, seq, _Skipped(final))

    def _take(self, worker: int, seq: int, item: Report | _Skipped) -> Accepted:
        nxt = self._next_seq[worker]
        buf = self._buffer[worker]
        if seq < nxt or seq in buf:
            return Accepted.DUPLICATE
        if seq >= nxt + MAX_AHEAD:
            return Accepted.TOO_FAR
        buf[seq] = item
        if seq != nxt:
            return Accepted.BUFFERED
        while nxt in buf:
            got = buf.pop(nxt)
            if isinstance(got, _Skipped):
                self.skipped[worker] += 1
                if got.final:
                    self.finished[worker] = True
            else:
                self._apply(worker, got)
            nxt += 1
        self._next_seq[worker] = nxt
        return Accepted.APPLIED

    def _apply(self, worker: int, report: Report) -> None:
        self.reports[worker] += 1
        self.reported_s[worker] = max(self.reported_s[worker], report.elapsed_s)
        fleet, first, seq, timeline = self._fleet, self._series_first, report.seq, self._timeline
        series = report.series
        if any(key.startswith(KEY_PREFIX) for key in series):
            series = {}
            for key, sink in report.series.items():
                if key.startswith(KEY_PREFIX):
                    self.endpoints.add(key, sink)
                else:
                    series[key] = sink
        for pos, (key, sink) in enumerate(series.items()):
            if key in FLEET_SUMMED_GAUGES:
                if isinstance(sink, GaugeSink):
                    mine = self._summed[worker].get(key)
                    if mine is None:
                        self._summed[worker][key] = mine = GaugeSink()
                    mine.merge(sink)
                continue
            here = (worker, seq, pos)
            seen = first.get(key)
            if seen is None or here < seen:
                first[key] = here
            into = fleet.get(key)
            if into is None:
                fleet[key] = into = type(sink)()
            elif type(into) is not type(sink):
                raise TypeError(f"cannot merge {type(sink).__name__} into {type(into).__name__}")
            if isinstance(into, GaugeSink):
                self._merge_gauge(key, into, sink, worker)  # type: ignore[arg-type]
            elif timeline is None or not isinstance(into, TrendSink):
                into.merge(sink)  # type: ignore[arg-type]
            # else: the timeline's bucket merges it, and hands it on when the bucket closes
        if timeline is not None:
            timeline.add(worker, report.elapsed_s, series, report.vus_samples)
            if report.final:
                timeline.retire(worker)
        self._per_worker(worker, report)
        checks, cfirst = self._checks, self._checks_first
        for pos, (name, (p, f)) in enumerate(report.checks.items()):
            here = (worker, seq, pos)
            seen = cfirst.get(name)
            if seen is None or here < seen:
                cfirst[name] = here
            c = checks.get(name)
            if c is None:
                checks[name] = [p, f]
            else:
                c[0] += p
                c[1] += f
        if report.final:
            self.finished[worker] = True
        self._add_vus_samples(worker, report.vus_samples)
        self.applied_reports += 1

    def _bucket_closed(self, sinks: Mapping[str, Sink]) -> None:
        """A timeline bucket closed: its trends join the fleet's (the other kinds are there already)."""
        fleet = self._fleet
        for key, sink in sinks.items():
            into = fleet.get(key)
            if isinstance(sink, TrendSink) and isinstance(into, TrendSink):
                into.merge(sink)

    def _merge_gauge(self, key: str, into: GaugeSink, other: GaugeSink, worker: int) -> None:
        """Latest ``at_s`` wins; a tie goes to the higher worker index, or to the later report of one."""
        if other.is_empty():
            return
        if other.at_s > into.at_s or (other.at_s == into.at_s and worker >= self._gauge_worker.get(key, -1)):
            into.value, into.at_s = other.value, other.at_s
            self._gauge_worker[key] = worker
        into.min = min(into.min, other.min)
        into.max = max(into.max, other.max)

    def _per_worker(self, worker: int, report: Report) -> None:
        series = report.series
        fig = self._figures[worker]
        reqs = series.get("http_reqs")
        if isinstance(reqs, CounterSink):
            self.requests[worker] += int(reqs.total)
            fig.requests += int(reqs.total)
        failed = series.get("http_req_failed")
        if isinstance(failed, RateSink):
            fig.failures += failed.passes
        cpu = series.get("surge_cpu")
        if isinstance(cpu, TrendSink) and cpu.sketch.count:
            fig.cpu_sum += cpu.sketch.total
            fig.cpu_samples += cpu.sketch.count
            fig.cpu_max = max(fig.cpu_max, cpu.sketch.max)
        lag = series.get("surge_loop_lag")
        if isinstance(lag, TrendSink) and lag.sketch.count:
            fig.lag_sum_ms += lag.sketch.total
            fig.lag_samples += lag.sketch.count
            fig.lag_max_ms = max(fig.lag_max_ms, lag.sketch.max)
        sat = series.get("surge_saturated")
        if isinstance(sat, RateSink):
            fig.saturated += sat.passes
            fig.saturation_samples += sat.total
        if self._tracked:
            totals = self._counters[worker]
            for key in self._tracked:
                sink = series.get(key)
                if isinstance(sink, CounterSink):
                    totals[key] = totals.get(key, 0.0) + sink.total

    def counter(self, worker: int, key: str) -> float:
        """The total of counter series ``key`` in the reports applied from ``worker``.

        Only for keys given as ``tracked_counters`` (e.g. ``"iterations{scenario:purchase}"``:
        how many iterations a lost worker completed); any other key is a ``KeyError``.
        """
        if key not in self._tracked:
            raise KeyError(f"{key!r} is not a tracked counter (tracked: {', '.join(sorted(self._tracked)) or 'none'})")
        return self._counters[worker].get(key, 0.0)

    def figures(self, worker: int) -> WorkerFigures:
        """Requests, failures, CPU, loop lag and saturation of one worker (a copy)."""
        f = self._figures[worker]
        return replace(f)

    def _add_vus_samples(self, worker: int, samples: list[tuple[int, int]]) -> None:
        last = self._last_tick[worker]
        sums = self._tick_sums
        for tick, vus in samples:
            if tick <= last or vus < 0:  # a tick twice, or out of order: not a worker's sampling
                continue
            last = tick
            if tick > self._complete:
                sums[tick] = sums.get(tick, 0) + vus
        self._last_tick[worker] = last
        # C-level passes: this runs for every report, over every worker
        frontier = min(compress(self._last_tick, map(not_, self.finished)), default=None)
        if frontier is None:
            frontier = max(self._last_tick)
        if frontier <= self._complete:
            return
        ready = sorted(t for t in sums if t <= frontier)
        # A complete tick nobody has a sample for counts 0 (every worker that reached it had
        # finished); it is folded without iterating over a gap, however wide a tick number is.
        totals = [sums.pop(t) for t in ready]
        if len(ready) < frontier - self._complete:
            totals.append(0)
        if ready and ready[-1] == frontier:
            now = totals[len(ready) - 1]
        else:
            now = 0
        lo, hi = min(totals), max(totals)
        if self._complete < 0:
            self._vus_min, self._vus_max = lo, hi
        else:
            self._vus_min, self._vus_max = min(self._vus_min, lo), max(self._vus_max, hi)
        self._vus_now = now
        self._complete = frontier

    def pending_vus_ticks(self) -> int:
        """Ticks held until every live worker has reported them (bounded by the slowest's lag)."""
        return len(self._tick_sums)

    @property
    def all_finished(self) -> bool:
        return all(self.finished)

    def series(self) -> dict[str, Sink]:
        """Fleet-wide sinks (fresh copies: safe to keep), in a fixed key order (see the module docstring).

        Costs one copy per series, whatever the number of workers; trend digests are shared
        with the fleet's (none is ever changed in place), so nothing is folded here.
        """
        out: dict[str, Sink] = {}
        fleet = self._fleet
        pending = self._timeline.open_trends() if self._timeline is not None else {}
        for key in sorted(self._series_first, key=self._series_first.__getitem__):
            sink = fleet.get(key)
            if sink is not None:
                out[key] = copy = _copy(sink)
                for part in pending.get(key, ()):
                    copy.merge(part)  # type: ignore[arg-type]
        for key in ("vus", "vus_max"):  # FLEET_SUMMED_GAUGES, last, as they always came
            summed = self._fleet_gauge(key)
            if summed is not None:
                out[key] = summed
        return out

    def _fleet_gauge(self, key: str) -> GaugeSink | None:
        if key == "vus" and self._complete >= 0:
            fleet = GaugeSink()
            fleet.value, fleet.min, fleet.max = float(self._vus_now), float(self._vus_min), float(self._vus_max)
            fleet.at_s = float(self._complete)
            return fleet
        # A finished worker that never sent the gauge (it held no VU, or was lost first) counts 0.
        per_worker = [(gauges.get(key), done) for gauges, done in zip(self._summed, self.finished)]
        if not all((isinstance(g, GaugeSink) and not g.is_empty()) or (g is None and done) for g, done in per_worker):
            return None
        gauges = [g for g, _ in per_worker if isinstance(g, GaugeSink) and not g.is_empty()]
        if not gauges:
            return None
        fleet = GaugeSink()
        fleet.value = sum(g.value for g in gauges)
        fleet.min = sum(g.min for g in gauges)
        fleet.max = sum(g.max for g in gauges)
        fleet.at_s = max(g.at_s for g in gauges)
        return fleet

    def handed_over(self, worker: int) -> None:
        """``worker`` was lost and its share moved to the others: it is finished, and holds no VU.

        Its ``vus``/``vus_max`` leave the fleet's sums, since the survivors now count the VUs
        they took over (the same VUs, by id) in theirs; left in, they would be counted twice.
        """
        self.finished[worker] = True
        for gauge in self._summed[worker].values():
            gauge.value = gauge.min = gauge.max = 0.0

    def checks(self) -> dict[str, tuple[int, int]]:
        """Check key -> (passes, fails), keys by the lowest worker that sent each, then first seen there.

        A key is a check's name, or its group path and name (:func:`surge.common.api.check_key`);
        the summary reads the groups back from it, so keys pass through here untouched.
        """
        first = self._checks_first
        return {name: (self._checks[name][0], self._checks[name][1]) for name in sorted(self._checks, key=first.__getitem__)}

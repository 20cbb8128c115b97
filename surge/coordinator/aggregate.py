"""Merging the workers' reports into fleet-wide sinks, each report once and in order.

Per worker, reports are applied strictly in sequence order: a report that arrives early
waits in a buffer until the gap before it is filled, and a sequence number already applied is
a duplicate (a resend whose ack was lost) and is dropped. The fleet view merges the workers'
sinks in worker order. Both rules together make the merged t-digests a function of the
reports alone, not of network timing: the same inputs give the same percentiles.

A fleet gauge (any gauge but ``vus`` and ``vus_max``) is defined by the reports alone, never
by their arrival: each worker's gauge is merged in its own sequence order; the fleet's value
is the value set at the latest ``at_s`` (seconds since Start on the worker that set it), a
tie going to the higher worker index (workers are merged in worker order and a later merge
wins a tie); min and max are the least and greatest value any worker set. Hence any
interleaving of the same per-worker reports gives the same fleet gauge (property-tested).

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

Every buffer is bounded. A report more than :data:`MAX_AHEAD` numbers ahead of the next one
expected is not kept (``TOO_FAR``) and not acknowledged, so its worker sends it again later:
a worker cannot make the coordinator hold more than ``MAX_AHEAD`` reports for it. A report that
arrived but did not validate is :meth:`Aggregate.skip`-ped: its number counts as applied, with
no data, so that the reports after it are not held back forever.
"""

from __future__ import annotations

from enum import Enum

from surge.common.metrics import FLEET_SUMMED_GAUGES, CounterSink, GaugeSink, Sink, merge_into, new_sink
from surge.common.protocol import Report


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
    out = new_sink(sink.type)
    merge_into(out, sink)
    return out


class Aggregate:
    def __init__(self, n_workers: int, tracked_counters: frozenset[str] = frozenset()) -> None:
        self.n_workers = n_workers
        self._tracked = tracked_counters
        self._counters: list[dict[str, float]] = [{} for _ in range(n_workers)]
        self._next_seq = [1] * n_workers
        self._buffer: list[dict[int, Report | _Skipped]] = [{} for _ in range(n_workers)]
        self._sinks: list[dict[str, Sink]] = [{} for _ in range(n_workers)]
        self._checks: list[dict[str, list[int]]] = [{} for _ in range(n_workers)]
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
        reqs = report.series.get("http_reqs")
        if isinstance(reqs, CounterSink):
            self.requests[worker] += int(reqs.total)
        for key in self._tracked:
            sink = report.series.get(key)
            if isinstance(sink, CounterSink):
                counters = self._counters[worker]
                counters[key] = counters.get(key, 0.0) + sink.total
        sinks = self._sinks[worker]
        for key, sink in report.series.items():
            mine = sinks.get(key)
            if mine is None:
                sinks[key] = _copy(sink)
            else:
                merge_into(mine, sink)
        checks = self._checks[worker]
        for name, (p, f) in report.checks.items():
            c = checks.setdefault(name, [0, 0])
            c[0] += p
            c[1] += f
        if report.final:
            self.finished[worker] = True
        self._add_vus_samples(worker, report.vus_samples)
        self.applied_reports += 1

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
        live = [t for t, done in zip(self._last_tick, self.finished) if not done]
        frontier = min(live) if live else max(self._last_tick)
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

    def counter(self, worker: int, key: str) -> float:
        """The total of a tracked counter series in the reports applied from ``worker``."""
        return self._counters[worker].get(key, 0.0)

    def pending_vus_ticks(self) -> int:
        """Ticks held until every live worker has reported them (bounded by the slowest's lag)."""
        return len(self._tick_sums)

    @property
    def all_finished(self) -> bool:
        return all(self.finished)

    def series(self) -> dict[str, Sink]:
        """Fleet-wide sinks, merged in worker order (a fresh copy: safe to keep)."""
        out: dict[str, Sink] = {}
        for sinks in self._sinks:
            for key, sink in sinks.items():
                if key in FLEET_SUMMED_GAUGES:
                    continue
                mine = out.get(key)
                if mine is None:
                    out[key] = _copy(sink)
                else:
                    merge_into(mine, sink)
        for key in FLEET_SUMMED_GAUGES:
            fleet = self._fleet_gauge(key)
            if fleet is not None:
                out[key] = fleet
        return out

    def _fleet_gauge(self, key: str) -> GaugeSink | None:
        if key == "vus" and self._complete >= 0:
            fleet = GaugeSink()
            fleet.value, fleet.min, fleet.max = float(self._vus_now), float(self._vus_min), float(self._vus_max)
            fleet.at_s = float(self._complete)
            return fleet
        per_worker = [sinks.get(key) for sinks in self._sinks]
        if not all(isinstance(g, GaugeSink) and not g.is_empty() for g in per_worker):
            return None
        gauges = [g for g in per_worker if isinstance(g, GaugeSink)]
        fleet = GaugeSink()
        fleet.value = sum(g.value for g in gauges)
        fleet.min = sum(g.min for g in gauges)
        fleet.max = sum(g.max for g in gauges)
        fleet.at_s = max(g.at_s for g in gauges)
        return fleet

    def checks(self) -> dict[str, tuple[int, int]]:
        """Check key -> (passes, fails), keys in first-seen order by worker.

        A key is a check's name, or its group path and name (:func:`surge.common.api.check_key`);
        the summary reads the groups back from it, so keys pass through here untouched.
        """
        out: dict[str, list[int]] = {}
        for checks in self._checks:
            for name, (p, f) in checks.items():
                c = out.setdefault(name, [0, 0])
                c[0] += p
                c[1] += f
        return {name: (p, f) for name, (p, f) in out.items()}

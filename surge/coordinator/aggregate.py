"""Merging the workers' reports into fleet-wide sinks, each report once and in order.

Per worker, reports are applied strictly in sequence order: a report that arrives early
waits in a buffer until the gap before it is filled, and a sequence number already applied is
a duplicate (a resend whose ack was lost) and is dropped. The fleet view merges the workers'
sinks in worker order. Both rules together make the merged t-digests a function of the
reports alone, not of network timing: the same inputs give the same percentiles.

``vus`` and ``vus_max`` are fleet-summed gauges. Each worker's own gauge is merged like any
sink (its latest value wins); the fleet's value is the sum of the workers' latest values, and
its min and max are the sums of theirs. Summing extremes is exact for surge's plans, where
every worker follows its share of one global schedule and so peaks at the same step, and it
keeps the result independent of the order in which reports from different workers arrive.
Until every worker has reported the gauge there is no fleet value (it would be a partial sum).

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
    def __init__(self, n_workers: int) -> None:
        self.n_workers = n_workers
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
        self.applied_reports += 1

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
        """Check name -> (passes, fails), names in first-seen order by worker."""
        out: dict[str, list[int]] = {}
        for checks in self._checks:
            for name, (p, f) in checks.items():
                c = out.setdefault(name, [0, 0])
                c[0] += p
                c[1] += f
        return {name: (p, f) for name, (p, f) in out.items()}

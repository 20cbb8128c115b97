"""Merging the workers' reports into fleet-wide sinks, each report once and in order.

Per worker, reports are applied strictly in sequence order: a report that arrives early
waits in a buffer until the gap before it is filled, and a sequence number already applied is
a duplicate (a resend whose ack was lost) and is dropped. The fleet view merges the workers'
sinks in worker order. Both rules together make the merged t-digests a function of the
reports alone, not of network timing: the same inputs give the same percentiles.

``vus`` and ``vus_max`` are fleet-summed gauges: the fleet value is the sum of each worker's
latest value, and min/max are taken over that sum as reports come in, once every worker has
reported the gauge (before that the sum would count only part of the fleet).
"""

from __future__ import annotations

from enum import Enum

from surge.common.metrics import FLEET_SUMMED_GAUGES, GaugeSink, Sink, merge_into, new_sink
from surge.common.protocol import Report


class Accepted(Enum):
    APPLIED = "applied"  # applied now (perhaps with buffered successors)
    BUFFERED = "buffered"  # ahead of a gap; applied when the gap fills
    DUPLICATE = "duplicate"  # already applied or already buffered


def _copy(sink: Sink) -> Sink:
    out = new_sink(sink.type)
    merge_into(out, sink)
    return out


class Aggregate:
    def __init__(self, n_workers: int) -> None:
        self.n_workers = n_workers
        self._next_seq = [1] * n_workers
        self._buffer: list[dict[int, Report]] = [{} for _ in range(n_workers)]
        self._sinks: list[dict[str, Sink]] = [{} for _ in range(n_workers)]
        self._checks: list[dict[str, list[int]]] = [{} for _ in range(n_workers)]
        self._latest: list[dict[str, float]] = [{} for _ in range(n_workers)]
        self._fleet_gauges: dict[str, GaugeSink] = {}
        self.finished = [False] * n_workers
        self.applied_reports = 0

    def accept(self, worker: int, report: Report) -> Accepted:
        nxt = self._next_seq[worker]
        if report.seq < nxt or report.seq in self._buffer[worker]:
            return Accepted.DUPLICATE
        self._buffer[worker][report.seq] = report
        if report.seq != nxt:
            return Accepted.BUFFERED
        buf = self._buffer[worker]
        while nxt in buf:
            self._apply(worker, buf.pop(nxt))
            nxt += 1
        self._next_seq[worker] = nxt
        return Accepted.APPLIED

    def _apply(self, worker: int, report: Report) -> None:
        sinks = self._sinks[worker]
        for key, sink in report.series.items():
            if key in FLEET_SUMMED_GAUGES and isinstance(sink, GaugeSink):
                if not sink.is_empty():
                    self._latest[worker][key] = sink.value
                    if all(key in w for w in self._latest):
                        fleet = self._fleet_gauges.setdefault(key, GaugeSink())
                        fleet.set(sum(w[key] for w in self._latest), report.elapsed_s)
                continue
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
                mine = out.get(key)
                if mine is None:
                    out[key] = _copy(sink)
                else:
                    merge_into(mine, sink)
        for key, gauge in self._fleet_gauges.items():
            out[key] = _copy(gauge)
        return out

    def checks(self) -> dict[str, tuple[int, int]]:
        """Check name -> (passes, fails), names in first-seen order by worker."""
        out: dict[str, list[int]] = {}
        for checks in self._checks:
            for name, (p, f) in checks.items():
                c = out.setdefault(name, [0, 0])
                c[0] += p
                c[1] += f
        return {name: (p, f) for name, (p, f) in out.items()}

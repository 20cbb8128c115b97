"""One machine's processes' reports merged into one delta per interval (``surge worker --processes N``).

The relay (:mod:`surge.worker.machine`) receives each of its processes' numbered reports, hands
them to :class:`MachineMerge` and acknowledges them at once: from then on their data lives in the
merge's pending delta, and then in the relay's own outbox until the coordinator acknowledges the
machine's report. So the coordinator's fan-in grows with machines, not with cores.

The rules are the coordinator's (:mod:`surge.coordinator.aggregate`), applied to one machine:

* each process's reports are applied once and in order (:class:`surge.common.inorder.InOrder`:
  a resend is dropped, an early report waits for the gap before it);
* sinks merge with :func:`surge.common.metrics.merge_into`, checks add up; :meth:`take` merges
  the processes' pending deltas in process order, so what is sent depends on which reports were
  applied, not on the order they arrived in;
* ``vus`` and ``vus_max`` (:data:`~surge.common.metrics.FLEET_SUMMED_GAUGES`) are sums over the
  processes: the machine's gauge is the sum of each process's latest gauge (sent once every
  process has one), and the machine's ``vus_samples`` hold, for each tick, the sum of its
  processes' samples, emitted only once every live process has reported that tick (a finished
  process counts 0 from its final report on), in tick order. To the coordinator the machine
  looks like one worker that samples its VUs like any other;
* endpoint rows (``surge_endpoint_*``) are capped again, as the coordinator caps them: each
  process kept its own first ``max_endpoints`` rows, and a row none of the machine's first
  ``max_endpoints`` is folded into the overflow row, so a machine's report is as bounded as
  one process's (:class:`surge.common.endpoint_stats.KeyCap`);
* the machine's report is final once every process's final report has been applied; an
  ``aborted`` reason from any process rides on every report from then on.
"""

from __future__ import annotations

from surge.common.endpoint_stats import DEFAULT_MAX_ENDPOINTS, KEY_PREFIX, KeyCap
from surge.common.inorder import Accepted, InOrder
from surge.common.metrics import FLEET_SUMMED_GAUGES, GaugeSink, Sink, merge_into, new_sink
from surge.common.protocol import Report


class _Skipped:
    """In place of a report that did not validate: its number, no data."""

    __slots__ = ("final",)

    def __init__(self, final: bool) -> None:
        self.final = final


class MachineMerge:
    """The pending delta of ``n`` processes' applied reports, taken by :meth:`take`."""

    def __init__(self, n: int, max_endpoints: int = DEFAULT_MAX_ENDPOINTS) -> None:
        if n < 1:
            raise ValueError("a machine has at least one process")
        self.n = n
        self._endpoint_key = KeyCap(max_endpoints)
        self._in_order: InOrder[Report | _Skipped] = InOrder(n, self._apply)
        self.finished = [False] * n
        self.reports = [0] * n  # reports applied, per process
        self.skipped = [0] * n  # reports that did not validate, per process
        self.aborted = ""
        self._elapsed_s = 0.0
        self._at_s = [0.0] * n  # per process, the elapsed_s of its latest applied report
        self._sent_s = 0.0  # the elapsed_s of the last report taken
        self._series: list[dict[str, Sink]] = [{} for _ in range(n)]  # per process, since the last take
        self._checks: list[dict[str, tuple[int, int]]] = [{} for _ in range(n)]
        # FLEET_SUMMED_GAUGES: each process's latest gauge (cumulative), and which changed since the last take
        self._gauges: dict[str, list[GaugeSink | None]] = {key: [None] * n for key in FLEET_SUMMED_GAUGES}
        self._gauges_changed: set[str] = set()
        # vus ticks: the highest tick each process has reported, the sums of ticks not yet
        # complete, the last complete tick and the complete ticks' sums not yet taken
        self._last_tick = [-1] * n
        self._tick_sums: dict[int, int] = {}
        self._complete = -1
        self._samples: list[tuple[int, int]] = []

    # ------------------------------------------------------------------ in

    def accept(self, process: int, report: Report) -> Accepted:
        """Apply ``report`` (once, in order); the caller acknowledges it unless ``TOO_FAR``."""
        return self._in_order.take(process, report.seq, report)

    def skip(self, process: int, seq: int, final: bool) -> Accepted:
        """Count ``seq`` as applied with no data (its report arrived but did not validate)."""
        return self._in_order.take(process, seq, _Skipped(final))

    @property
    def all_final(self) -> bool:
        return all(self.finished)

    @property
    def has_data(self) -> bool:
        """Anything :meth:`take` would carry beyond the flags."""
        return bool(
            any(self._series) or any(self._checks) or self._samples or self._gauges_changed
        )

    def _apply(self, process: int, item: Report | _Skipped) -> None:
        if isinstance(item, _Skipped):
            self.skipped[process] += 1
            if item.final:
                self.finished[process] = True
            self._advance_ticks()
            return
        report = item
        self.reports[process] += 1
        self._elapsed_s = max(self._elapsed_s, report.elapsed_s)
        self._at_s[process] = max(self._at_s[process], report.elapsed_s)
        series = self._series[process]
        for key, sink in report.series.items():
            if key in FLEET_SUMMED_GAUGES and isinstance(sink, GaugeSink):
                self._set_gauge(key, process, sink)
                continue
            if key.startswith(KEY_PREFIX):
                key = self._endpoint_key(key)
            mine = series.get(key)
            if mine is None:
                series[key] = mine = new_sink(sink.type)  # a copy: the report's sinks stay as they came
            merge_into(mine, sink)
        checks = self._checks[process]
        for name, (p, f) in report.checks.items():
            p0, f0 = checks.get(name, (0, 0))
            checks[name] = (p0 + p, f0 + f)
        if report.aborted and not self.aborted:
            self.aborted = report.aborted
        if report.final:
            self.finished[process] = True
        last = self._last_tick[process]
        for tick, vus in report.vus_samples:
            if tick <= last or vus < 0:  # a tick twice, or out of order: not a process's sampling
                continue
            last = tick
            if tick > self._complete:
                self._tick_sums[tick] = self._tick_sums.get(tick, 0) + vus
        self._last_tick[process] = last
        self._advance_ticks()

    def _set_gauge(self, key: str, process: int, sink: GaugeSink) -> None:
        gauges = self._gauges[key]
        mine = gauges[process]
        if mine is None:
            gauges[process] = mine = GaugeSink()
        mine.merge(sink)
        self._gauges_changed.add(key)

    def _advance_ticks(self) -> None:
        live = [t for t, done in zip(self._last_tick, self.finished) if not done]
        frontier = min(live) if live else max(self._last_tick)
        if frontier <= self._complete:
            return
        for tick in sorted(t for t in self._tick_sums if t <= frontier):
            self._samples.append((tick, self._tick_sums.pop(tick)))
        self._complete = frontier

    def interval_complete(self, interval_s: float) -> bool:
        """Every process still playing has reported an interval the last take did not carry.

        Processes report at whole multiples of the interval after the shared start; once each
        has sent its next one, the machine's report for that interval is whole and goes up at
        once, so the coordinator's timeline (one point per interval) gets each interval in one
        report instead of split across two.
        """
        if not self.has_data:
            return False
        edge = self._sent_s + interval_s / 2
        return all(done or at > edge for at, done in zip(self._at_s, self.finished))

    # ------------------------------------------------------------------ out

    def take(self, run_id: str) -> Report:
        """The pending delta as one report (``seq`` 0: the outbox numbers it); pending starts afresh."""
        series: dict[str, Sink] = {}
        for per_process in self._series:
            for key, sink in per_process.items():
                mine = series.get(key)
                if mine is None:
                    series[key] = sink
                else:
                    merge_into(mine, sink)
        for key in sorted(self._gauges_changed):
            gauges = self._gauges[key]
            if all(g is not None and not g.is_empty() for g in gauges):
                series[key] = _summed([g for g in gauges if g is not None])
                self._gauges_changed.discard(key)
            # else: held until every process has set it, as the coordinator sums them
        checks: dict[str, tuple[int, int]] = {}
        for per_checks in self._checks:
            for name, (p, f) in per_checks.items():
                p0, f0 = checks.get(name, (0, 0))
                checks[name] = (p0 + p, f0 + f)
        samples, self._samples = self._samples, []
        self._sent_s = self._elapsed_s
        self._series = [{} for _ in range(self.n)]
        self._checks = [{} for _ in range(self.n)]
        return Report(run_id, 0, self._elapsed_s, series, checks, self.all_final, self.aborted, samples)

    def held_reports(self) -> int:
        """Early reports waiting for a gap to fill (bounded by ``MAX_AHEAD`` per process)."""
        return self._in_order.held()


def _summed(gauges: list[GaugeSink]) -> GaugeSink:
    out = GaugeSink()
    out.value = sum(g.value for g in gauges)
    out.min = sum(g.min for g in gauges)
    out.max = sum(g.max for g in gauges)
    out.at_s = max(g.at_s for g in gauges)
    return out

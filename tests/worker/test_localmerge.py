"""A machine's processes' reports merged into one delta: once, in order, and the same in any interleaving."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.inorder import MAX_AHEAD, Accepted
from surge.common.metrics import CounterSink, GaugeSink, Sink
from surge.common.protocol import Report
from surge.worker.localmerge import MachineMerge

RUN = "r"


def _gauge(value: float, at_s: float) -> GaugeSink:
    g = GaugeSink()
    g.set(value, at_s)
    return g


def _report(seq: int, *, reqs: float = 0, checks: dict[str, tuple[int, int]] | None = None,
            samples: list[tuple[int, int]] | None = None, final: bool = False, aborted: str = "",
            **series: Sink) -> Report:
    s: dict[str, Sink] = dict(series)
    if reqs:
        s["http_reqs"] = CounterSink(reqs)
    return Report(RUN, seq, float(seq), s, checks or {}, final, aborted, samples or [])


def _reqs(report: Report) -> float:
    sink = report.series.get("http_reqs")
    return sink.total if isinstance(sink, CounterSink) else 0.0


def test_reports_apply_in_order_once_and_a_resend_is_dropped() -> None:
    m = MachineMerge(2)
    assert m.accept(0, _report(2, reqs=20)) is Accepted.BUFFERED
    assert _reqs(m.take(RUN)) == 0  # held behind the gap
    assert m.accept(0, _report(1, reqs=1)) is Accepted.APPLIED
    assert m.accept(0, _report(1, reqs=1)) is Accepted.DUPLICATE
    assert m.accept(0, _report(2, reqs=20)) is Accepted.DUPLICATE
    assert m.accept(1, _report(1, reqs=300)) is Accepted.APPLIED
    assert m.accept(1, _report(1 + MAX_AHEAD + 1, reqs=5)) is Accepted.TOO_FAR
    out = m.take(RUN)
    assert _reqs(out) == 321 and out.seq == 0 and not out.final
    assert _reqs(m.take(RUN)) == 0 and not m.has_data  # taken: pending starts afresh


def test_checks_add_up_and_a_skipped_report_costs_only_itself() -> None:
    m = MachineMerge(2)
    m.accept(0, _report(1, checks={"ok": (2, 1)}))
    assert m.skip(0, 2, False) is Accepted.APPLIED
    m.accept(0, _report(3, checks={"ok": (1, 0)}))
    m.accept(1, _report(1, checks={"ok": (5, 5), "other": (0, 1)}))
    assert m.take(RUN).checks == {"ok": (8, 6), "other": (0, 1)}
    assert m.skipped == [1, 0]


def test_vus_ticks_are_summed_and_sent_once_every_live_process_has_reported_them() -> None:
    m = MachineMerge(2)
    m.accept(0, _report(1, samples=[(0, 1), (1, 2), (2, 2)]))
    assert m.take(RUN).vus_samples == []  # process 1 has reported no tick yet
    m.accept(1, _report(1, samples=[(0, 3), (1, 3)]))
    assert m.take(RUN).vus_samples == [(0, 4), (1, 5)]
    m.accept(1, _report(2, samples=[(2, 1), (3, 1)]))
    assert m.take(RUN).vus_samples == [(2, 3)]  # tick 3: process 0 has not reached it
    m.accept(0, _report(2, samples=[(3, 0)], final=True))
    m.accept(1, _report(3, samples=[(4, 6)]))
    # process 0 is done: it counts 0 from its final report on, and no longer holds ticks back
    assert m.take(RUN).vus_samples == [(3, 1), (4, 6)]


def test_the_machine_is_final_only_once_every_process_is() -> None:
    m = MachineMerge(3)
    m.accept(0, _report(1, reqs=1, final=True))
    m.accept(2, _report(1, reqs=1, final=True))
    assert not m.take(RUN).final and not m.all_final
    m.accept(1, _report(1, reqs=1))
    assert not m.take(RUN).final
    m.skip(1, 2, True)  # a final report that did not validate still ends the process's share
    out = m.take(RUN)
    assert out.final and m.all_final


def test_an_abort_from_any_process_rides_on_the_machine_s_reports() -> None:
    m = MachineMerge(2)
    m.accept(1, _report(1, aborted="abort_test() at s.py:3"))
    assert m.aborted == "abort_test() at s.py:3"
    assert m.take(RUN).aborted == "abort_test() at s.py:3"
    assert m.take(RUN).aborted == "abort_test() at s.py:3"


def test_vus_and_vus_max_gauges_are_the_sum_of_each_process_s_latest() -> None:
    m = MachineMerge(2)
    m.accept(0, _report(1, vus_max=_gauge(4, 0.0), temperature=_gauge(30, 1.0)))
    first = m.take(RUN)
    assert "vus_max" not in first.series  # held until every process has one, as the coordinator sums them
    assert isinstance(first.series["temperature"], GaugeSink)  # any other gauge merges as usual
    m.accept(1, _report(1, vus_max=_gauge(3, 0.5)))
    g = m.take(RUN).series["vus_max"]
    assert isinstance(g, GaugeSink) and (g.value, g.min, g.max, g.at_s) == (7, 7, 7, 0.5)
    m.accept(0, _report(2, vus_max=_gauge(6, 2.0)))
    g = m.take(RUN).series["vus_max"]
    assert isinstance(g, GaugeSink) and (g.value, g.max, g.at_s) == (9, 9, 2.0)
    assert "vus_max" not in m.take(RUN).series  # unchanged: not sent again


# ------------------------------------------------------------------ any interleaving


@st.composite
def _processes(draw: st.DrawFn) -> list[list[Report]]:
    """Per process, its reports in order: counters, checks, rising vus ticks, the last one final."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(1, 6))
        tick = -1
        reports = []
        for seq in range(1, n + 1):
            samples = []
            for _ in range(draw(st.integers(0, 3))):
                tick += draw(st.integers(1, 2))
                samples.append((tick, draw(st.integers(0, 9))))
            reports.append(_report(
                seq, reqs=draw(st.integers(0, 50)), checks={"c": (draw(st.integers(0, 5)), draw(st.integers(0, 5)))},
                samples=samples, final=seq == n,
            ))
        out.append(reports)
    return out


def _merged(processes: list[list[Report]], order: list[tuple[int, int]], takes: set[int]) -> tuple[float, dict[str, tuple[int, int]], list[tuple[int, int]], bool]:
    m = MachineMerge(len(processes))
    reqs = 0.0
    checks: dict[str, tuple[int, int]] = {}
    samples: list[tuple[int, int]] = []
    final = False

    def take() -> None:
        nonlocal reqs, final
        out = m.take(RUN)
        reqs += _reqs(out)
        for k, (p, f) in out.checks.items():
            p0, f0 = checks.get(k, (0, 0))
            checks[k] = (p0 + p, f0 + f)
        samples.extend(out.vus_samples)
        final = out.final

    for i, (proc, index) in enumerate(order):
        m.accept(proc, processes[proc][index])
        if i in takes:
            take()
    take()
    return reqs, checks, samples, final


@settings(max_examples=200, deadline=None)
@given(_processes(), st.randoms(use_true_random=False), st.sets(st.integers(0, 60)))
def test_any_interleaving_with_resends_merges_to_what_in_order_gives(
    processes: list[list[Report]], rnd: random.Random, takes: set[int]
) -> None:
    in_order = [(p, i) for p, reports in enumerate(processes) for i in range(len(reports))]
    shuffled = in_order + [rnd.choice(in_order) for _ in range(len(in_order) // 2)]  # resends
    rnd.shuffle(shuffled)
    shuffled += in_order  # every report arrives at least once more, in the end
    expected = _merged(processes, in_order, set())
    assert _merged(processes, shuffled, takes) == expected
    reqs, _, samples, final = expected
    assert final
    assert reqs == sum(_reqs(r) for reports in processes for r in reports)
    per_tick: dict[int, int] = {}
    for reports in processes:
        for r in reports:
            for tick, vus in r.vus_samples:
                per_tick[tick] = per_tick.get(tick, 0) + vus
    assert samples == sorted(per_tick.items())


# ------------------------------------------------------------------ the relay's routing


def test_each_process_gets_the_slices_of_its_member_and_only_process_0_the_lifecycle() -> None:
    from surge.common.protocol import Run, ScenarioSlice
    from surge.worker.machine import process_runs, slices_of

    def sl(name: str, member: int) -> ScenarioSlice:
        return ScenarioSlice(name, "constant-vus", "default", 0.0, 1.0, 0.0, 0.0, [(0.0, 1)], [member + 1], member=member)

    slices = [sl("a", 0), sl("a", 1), sl("b", 0), sl("b", 1), sl("c", 2)]
    runs = process_runs(Run("r", {}, "m", {}, slices, [], 1.0, lifecycle=True), 3)
    assert [[(s.name, s.vu_ids, s.member) for s in run.slices] for run in runs] == [
        [("a", [1], 0), ("b", [1], 0)], [("a", [2], 0), ("b", [2], 0)], [("c", [3], 0)],
    ]
    assert [run.lifecycle for run in runs] == [True, False, False]
    assert not any(run.lifecycle for run in process_runs(Run("r", {}, "m", {}, slices, [], 1.0), 3))
    assert slices_of(slices, 5) == []  # a takeover for a process with nothing of it: nothing sent


def test_an_interval_goes_up_once_every_playing_process_has_reported_it() -> None:
    m = MachineMerge(3)
    assert not m.interval_complete(1.0)  # nothing yet
    m.accept(0, _report(1, reqs=1))  # elapsed 1.0
    m.accept(1, _report(1, reqs=1))
    assert not m.interval_complete(1.0)  # process 2's interval 1 is not in
    m.accept(2, _report(1, reqs=1))
    assert m.interval_complete(1.0)
    assert _reqs(m.take(RUN)) == 3
    assert not m.interval_complete(1.0)  # taken: the next interval is not complete yet
    m.accept(0, _report(2, reqs=1))
    m.accept(1, _report(2, reqs=1, final=True))  # done: no longer waited for
    assert not m.interval_complete(1.0)
    m.accept(2, _report(2, reqs=1))
    assert m.interval_complete(1.0)


def test_the_machine_caps_its_processes_endpoint_rows_again_into_one_overflow_row() -> None:
    from surge.common.endpoint_stats import DURATION, FAILURES, OVERFLOW, EndpointRow, failure_tags
    from surge.common.metrics import TrendSink
    from surge.common.sketch import Sketch

    merge = MachineMerge(2, max_endpoints=3)
    for process in (0, 1):  # each kept three rows of its own, within its own cap: /0../2 and /2../4
        series: dict[str, Sink] = {}
        for i in range(2 * process, 2 * process + 3):
            row = EndpointRow(f"/items/{i}", "GET")
            series[row.key(DURATION)] = TrendSink(Sketch.from_samples([1.0]))
            series[row.key(FAILURES, *failure_tags(503, 1503))] = CounterSink(1)
        merge.accept(process, Report("r", 1, 1.0, series, {}, True))

    out = merge.take("r").series

    kept = {EndpointRow(f"/items/{i}", "GET").key(DURATION) for i in range(3)}
    assert {k for k in out if k.startswith("surge_endpoint_duration")} == kept | {OVERFLOW.key(DURATION)}
    overflow = out[OVERFLOW.key(DURATION)]
    assert isinstance(overflow, TrendSink) and overflow.sketch.count == 2  # /items/3 and /items/4
    failures = out[OVERFLOW.key(FAILURES, *failure_tags(503, 1503))]
    assert isinstance(failures, CounterSink) and failures.total == 2
    assert out[EndpointRow("/items/2", "GET").key(DURATION)].sketch.count == 2  # type: ignore[union-attr]

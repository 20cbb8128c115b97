"""Merging reports: each applied once and in sequence order, whatever the network does."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.metrics import CounterSink, GaugeSink, RateSink, Sink, TrendSink
from surge.common.errors import ProtocolError
from surge.common.protocol import Report, decode, encode, peek_report
from surge.common.sketch import MERGE_BATCH, Sketch
from surge.coordinator.aggregate import MAX_AHEAD, Accepted, Aggregate
from surge.results.timeline import Timeline

RUN = "run-1"


def _gauge(value: float, at_s: float) -> GaugeSink:
    g = GaugeSink()
    g.set(value, at_s)
    return g


def _report(seq: int, *, elapsed_s: float | None = None, final: bool = False, **series: Sink) -> Report:
    return Report(RUN, seq, float(seq) if elapsed_s is None else elapsed_s, dict(series), {}, final)


def _bits(series: dict[str, Sink]) -> dict[str, tuple[str, bytes]]:
    """Every sink's exact wire form: equal bits, not merely equal values."""
    return {key: (sink.type.value, msgpack.packb(sink.to_wire())) for key, sink in sorted(series.items())}


@cache
def _generated(worker: int, seq: int, final: bool) -> Report:
    """A realistic report, the same every time it is asked for."""
    rng = np.random.default_rng([worker, seq])
    n = int(rng.integers(0, 3000))
    latencies = rng.lognormal(4.0, 0.8, n)
    failed = int(rng.integers(0, n + 1))
    series: dict[str, Sink] = {
        "http_reqs": CounterSink(float(n)),
        "http_req_duration": TrendSink(Sketch.from_samples(latencies.tolist())),
        "http_req_failed": RateSink(failed, n),
        # a plain gauge: last value wins by time; ties across workers on purpose
        "queue_depth": _gauge(float(rng.integers(0, 50)), float(seq)),
    }
    if seq % 2:
        series[f"checkout_duration{{worker:{worker}}}"] = TrendSink(Sketch.from_samples(latencies[:50].tolist()))
    checks = {"status is 200": (n - failed, failed)}
    if seq % 3 == 0:
        checks[f"worker {worker} check"] = (1, int(rng.integers(0, 3)))
    return Report(RUN, seq, float(seq), series, checks, final)


def _in_order(n_reports: list[int]) -> Aggregate:
    agg = Aggregate(len(n_reports))
    for worker, n in enumerate(n_reports):
        for seq in range(1, n + 1):
            assert agg.accept(worker, _generated(worker, seq, seq == n)) is Accepted.APPLIED
    return agg


# --------------------------------------------------------------------------- once, and in order


def test_a_duplicate_is_dropped_not_counted_twice() -> None:
    agg = Aggregate(1)
    first = _report(1, http_reqs=CounterSink(10.0))

    assert agg.accept(0, first) is Accepted.APPLIED
    assert agg.accept(0, first) is Accepted.DUPLICATE
    assert agg.accept(0, _report(1, http_reqs=CounterSink(99.0))) is Accepted.DUPLICATE  # a resend of seq 1

    assert agg.series()["http_reqs"].to_wire() == [10.0]
    assert agg.applied_reports == 1


def test_a_report_that_arrives_early_waits_for_the_gap() -> None:
    agg = Aggregate(1)

    assert agg.accept(0, _report(1, http_reqs=CounterSink(1.0))) is Accepted.APPLIED
    assert agg.accept(0, _report(3, http_reqs=CounterSink(100.0))) is Accepted.BUFFERED
    assert agg.series()["http_reqs"].to_wire() == [1.0]
    assert agg.applied_reports == 1
    assert agg.accept(0, _report(3, http_reqs=CounterSink(100.0))) is Accepted.DUPLICATE  # already buffered

    assert agg.accept(0, _report(2, http_reqs=CounterSink(10.0))) is Accepted.APPLIED
    assert agg.series()["http_reqs"].to_wire() == [111.0]
    assert agg.applied_reports == 3
    assert agg.accept(0, _report(2, http_reqs=CounterSink(10.0))) is Accepted.DUPLICATE
    assert agg.accept(0, _report(3, http_reqs=CounterSink(100.0))) is Accepted.DUPLICATE


def test_out_of_order_arrival_merges_to_the_same_bits_as_in_order() -> None:
    in_order = _in_order([4])
    shuffled = Aggregate(1)

    arrivals = [1, 3, 4, 2]
    results = [shuffled.accept(0, _generated(0, seq, seq == 4)) for seq in arrivals]

    assert results == [Accepted.APPLIED, Accepted.BUFFERED, Accepted.BUFFERED, Accepted.APPLIED]
    assert _bits(shuffled.series()) == _bits(in_order.series())
    assert shuffled.checks() == in_order.checks()


def test_workers_are_sequenced_independently() -> None:
    agg = Aggregate(2)

    assert agg.accept(0, _report(1, http_reqs=CounterSink(1.0))) is Accepted.APPLIED
    assert agg.accept(1, _report(1, http_reqs=CounterSink(2.0))) is Accepted.APPLIED  # not a duplicate
    assert agg.accept(1, _report(3, http_reqs=CounterSink(4.0))) is Accepted.BUFFERED
    assert agg.accept(0, _report(2, http_reqs=CounterSink(8.0))) is Accepted.APPLIED

    assert agg.series()["http_reqs"].to_wire() == [11.0]


def test_the_aggregate_never_changes_a_report_or_hands_out_its_own_sinks() -> None:
    report = _generated(0, 1, False)
    before = _bits(report.series)
    agg = Aggregate(1)
    agg.accept(0, report)
    agg.accept(0, _generated(0, 2, False))

    assert _bits(report.series) == before
    out = agg.series()
    expected = _bits(out)
    out["http_reqs"].merge(CounterSink(1e9))  # type: ignore[arg-type]
    assert _bits(agg.series()) == expected


# --------------------------------------------------------------------------- any arrival order


@st.composite
def _arrivals(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, int]]]:
    """Reports per worker, and an arrival order: every report at least once, interleaved freely."""
    n_reports = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    sent = [(w, seq) for w, n in enumerate(n_reports) for seq in range(1, n + 1)]
    resent = draw(st.lists(st.sampled_from(sent), max_size=6))
    return n_reports, draw(st.permutations(sent + resent))


def _exact(series: dict[str, Sink]) -> dict[str, Any]:
    """What must not depend on the interleaving: every sink but the trends bit for bit, a trend's count, min, max."""
    out: dict[str, Any] = {}
    for key, sink in series.items():
        if isinstance(sink, TrendSink):
            out[key] = ("trend", sink.sketch.count, sink.sketch.min, sink.sketch.max)
        else:
            out[key] = (sink.type.value, msgpack.packb(sink.to_wire()))
    return out


def _samples(worker: int, seq: int) -> np.ndarray:
    """The http_req_duration samples of _generated(worker, seq): the same draws, in the same order."""
    rng = np.random.default_rng([worker, seq])
    return rng.lognormal(4.0, 0.8, int(rng.integers(0, 3000)))


RANK_SLACK = 0.005  # a t-digest's percentile lands within half a percentile point of the exact one


def _within_rank(value: float, samples: np.ndarray, q: float) -> bool:
    slack = max(RANK_SLACK, 1.0 / len(samples))
    lo, hi = np.quantile(samples, [max(0.0, q - slack), min(1.0, q + slack)])
    return bool(lo * (1 - 1e-9) <= value <= hi * (1 + 1e-9))


@settings(max_examples=100, deadline=None)
@given(case=_arrivals())
def test_any_arrival_order_with_duplicates_gives_the_same_counts_and_equally_accurate_percentiles(
    case: tuple[list[int], list[tuple[int, int]]],
) -> None:
    """Counters, rates, gauges and checks exactly; percentiles within the digest's accuracy (see aggregate.py)."""
    n_reports, arrivals = case
    expected = _in_order(n_reports)

    agg = Aggregate(len(n_reports))
    seen: set[tuple[int, int]] = set()
    for worker, seq in arrivals:
        result = agg.accept(worker, _generated(worker, seq, seq == n_reports[worker]))
        assert (result is Accepted.DUPLICATE) == ((worker, seq) in seen)
        seen.add((worker, seq))

    assert agg.applied_reports == sum(n_reports)
    assert agg.all_finished
    got, want = agg.series(), expected.series()
    assert list(got) == list(want)  # the same keys in the same order
    assert _exact(got) == _exact(want)
    assert agg.checks() == expected.checks() and list(agg.checks()) == list(expected.checks())
    samples = np.concatenate([_samples(w, seq) for w, n in enumerate(n_reports) for seq in range(1, n + 1)])
    duration = got["http_req_duration"]
    assert isinstance(duration, TrendSink)
    if len(samples):
        assert duration.sketch.total == pytest.approx(float(samples.sum()), rel=1e-12)
        for q in (0.5, 0.9, 0.95, 0.99):
            assert _within_rank(duration.sketch.quantile(q), samples, q)


@settings(max_examples=60, deadline=None)
@given(case=_arrivals(), read=st.booleans())
def test_with_a_timeline_the_fleet_series_are_the_same_at_every_step(
    case: tuple[list[int], list[tuple[int, int]]], read: bool,
) -> None:
    """Trends then reach the fleet bucket by bucket (one merge per report); series() adds the open buckets.

    So at every step, read or not, the fleet's series hold exactly what they would without a
    timeline (trends: count, min, max exactly; the percentiles within the digest's accuracy).
    """
    n_reports, arrivals = case
    plain = Aggregate(len(n_reports))
    timeline = Timeline(1.0, 60.0, [f"w{i}" for i in range(len(n_reports))])
    with_tl = Aggregate(len(n_reports), timeline=timeline)
    for worker, seq in arrivals:
        report = _generated(worker, seq, seq == n_reports[worker])
        plain.accept(worker, report)
        with_tl.accept(worker, report)
        if read:
            assert _exact(with_tl.series()) == _exact(plain.series())
    assert _exact(with_tl.series()) == _exact(plain.series())
    timeline.finish()  # every bucket closed: the trends are all in the fleet's own sinks now
    got = with_tl.series()
    assert _exact(got) == _exact(plain.series())
    assert timeline.open_trends() == {}
    samples = np.concatenate([_samples(w, seq) for w, n in enumerate(n_reports) for seq in range(1, n + 1)])
    duration = got["http_req_duration"]
    assert isinstance(duration, TrendSink)
    if len(samples):
        for q in (0.5, 0.95, 0.99):
            assert _within_rank(duration.sketch.quantile(q), samples, q)
    # and the timeline's points hold every request, once
    assert sum(p.values.get("http_reqs", {}).get("count", 0.0) for p in timeline.points) == \
        got["http_reqs"].total  # type: ignore[union-attr]


def test_one_workers_reports_in_any_arrival_order_give_the_same_bits() -> None:
    """Per worker the fold order is its sequence order: that much stays bit for bit."""
    expected = _bits(_in_order([6]).series())
    for arrivals in ([6, 5, 4, 3, 2, 1], [2, 1, 4, 3, 6, 5], [1, 3, 5, 2, 4, 6]):
        agg = Aggregate(1)
        for seq in arrivals:
            agg.accept(0, _generated(0, seq, seq == 6))
        assert _bits(agg.series()) == expected


def test_reading_the_series_mid_run_does_not_change_the_final_bits() -> None:
    def run(read_every: int) -> dict[str, tuple[str, bytes]]:
        agg = Aggregate(1)
        for seq in range(1, 151):
            agg.accept(0, _generated(0, seq, seq == 150))
            if read_every and seq % read_every == 0:
                agg.series()  # as Session's watchdog does on each tick
        return _bits(agg.series())

    assert run(0) == run(7)


# --------------------------------------------------------------------------- fleet-summed gauges


def test_fleet_vus_is_the_sum_of_each_workers_latest_value() -> None:
    agg = Aggregate(3)
    agg.accept(0, _report(1, vus=_gauge(10.0, 1.0), vus_max=_gauge(10.0, 1.0)))
    agg.accept(1, _report(1, vus=_gauge(7.0, 1.0), vus_max=_gauge(7.0, 1.0)))
    agg.accept(2, _report(1, vus=_gauge(3.0, 1.0), vus_max=_gauge(4.0, 1.0)))

    series = agg.series()
    assert series["vus"].values(1.0)["value"] == 20.0
    assert series["vus_max"].values(1.0)["value"] == 21.0

    agg.accept(1, _report(2, vus=_gauge(2.0, 2.0)))  # worker 1 ramps down
    agg.accept(0, _report(2))  # a report without vus leaves worker 0's latest value as it was

    vus = agg.series()["vus"]
    assert isinstance(vus, GaugeSink)
    assert (vus.value, vus.max) == (15.0, 20.0)
    assert agg.series()["vus_max"].values(1.0)["value"] == 21.0


def test_fleet_vus_follows_every_workers_latest_report_whatever_their_clocks() -> None:
    agg = Aggregate(2)
    agg.accept(0, _report(1, elapsed_s=1.0, vus=_gauge(10.0, 1.0)))
    agg.accept(1, _report(1, elapsed_s=1.0, vus=_gauge(5.0, 1.0)))
    agg.accept(0, _report(2, elapsed_s=3.0, vus=_gauge(20.0, 3.0)))
    agg.accept(1, _report(2, elapsed_s=2.0, vus=_gauge(6.0, 2.0)))  # worker 1 reports a little behind

    assert agg.series()["vus"].values(1.0)["value"] == 20.0 + 6.0


def test_fleet_vus_does_not_depend_on_how_workers_interleave() -> None:
    reports = {
        (0, 1): _report(1, elapsed_s=1.0, vus=_gauge(10.0, 1.0)),
        (0, 2): _report(2, elapsed_s=2.0, vus=_gauge(20.0, 2.0)),
        (1, 1): _report(1, elapsed_s=1.0, vus=_gauge(5.0, 1.0)),
    }

    def merged(order: list[tuple[int, int]]) -> list[Any]:
        agg = Aggregate(2)
        for key in order:
            agg.accept(key[0], reports[key])
        return agg.series()["vus"].to_wire()  # [value, min, max, at_s]

    assert merged([(0, 1), (0, 2), (1, 1)]) == merged([(0, 1), (1, 1), (0, 2)])


# --------------------------------------------------------------------------- finishing and checks


def test_all_finished_once_every_worker_has_applied_its_final_report() -> None:
    agg = Aggregate(2)
    assert not agg.all_finished

    agg.accept(0, _report(1, final=True))
    assert agg.finished == [True, False]
    assert not agg.all_finished

    agg.accept(1, _report(2, final=True))  # early: buffered, so not applied, so not finished
    assert not agg.all_finished
    agg.accept(1, _report(1))
    assert agg.all_finished


def test_checks_are_summed_per_name() -> None:
    agg = Aggregate(2)
    agg.accept(0, Report(RUN, 1, 1.0, {}, {"status is 200": (3, 1)}))
    agg.accept(1, Report(RUN, 1, 1.0, {}, {"status is 200": (2, 0), "has body": (1, 1)}))
    agg.accept(0, Report(RUN, 2, 2.0, {}, {"status is 200": (1, 0)}))
    agg.accept(0, Report(RUN, 2, 2.0, {}, {"status is 200": (1, 0)}))  # duplicate

    assert agg.checks() == {"status is 200": (6, 1), "has body": (1, 1)}
    assert list(agg.checks()) == ["status is 200", "has body"]


def test_series_merges_workers_in_worker_order() -> None:
    # Equal times: the gauge of the later worker wins, whatever order the reports came in.
    def run(order: list[int]) -> Any:
        agg = Aggregate(2)
        for w in order:
            agg.accept(w, _report(1, queue_depth=_gauge(float(10 + w), 5.0)))
        return agg.series()["queue_depth"].to_wire()

    assert run([0, 1]) == run([1, 0]) == [11.0, 10.0, 11.0, 5.0]


# --------------------------------------------------------------------------- vus on the fleet's timeline


def _ticks(seq: int, samples: list[tuple[int, int]], *, final: bool = False) -> Report:
    return Report(RUN, seq, float(seq), {}, {}, final, "", samples)


def test_fleet_vus_max_is_the_peak_of_the_per_second_sums_not_the_sum_of_peaks() -> None:
    # a: 2 VUs over 0-10 s (one per worker); b and c: 1 VU each over 10-20 s, both on worker 0.
    # Worker 0 peaks at 2 (b + c), worker 1 at 1: summing peaks says 3, the fleet never ran more than 2.
    agg = Aggregate(2)
    w0 = [(k, 1 if k < 10 else 2 if k < 20 else 0) for k in range(21)]
    w1 = [(k, 1 if k < 10 else 0) for k in range(21)]
    agg.accept(0, _ticks(1, w0[:12]))
    agg.accept(1, _ticks(1, w1[:8]))
    vus = agg.series()["vus"]
    assert isinstance(vus, GaugeSink) and (vus.value, vus.min, vus.max) == (2.0, 2.0, 2.0)  # ticks 0..7 complete
    agg.accept(1, _ticks(2, w1[8:], final=True))
    agg.accept(0, _ticks(2, w0[12:], final=True))
    vus = agg.series()["vus"]
    assert isinstance(vus, GaugeSink) and (vus.value, vus.min, vus.max) == (0.0, 0.0, 2.0)


def test_a_finished_worker_counts_zero_from_its_final_report_on() -> None:
    agg = Aggregate(2)
    agg.accept(0, _ticks(1, [(0, 3), (1, 3)], final=True))  # finished after tick 1
    agg.accept(1, _ticks(1, [(0, 1), (1, 1), (2, 4), (3, 4)]))
    vus = agg.series()["vus"]
    assert isinstance(vus, GaugeSink) and (vus.value, vus.min, vus.max) == (4.0, 4.0, 4.0)


def test_complete_ticks_are_folded_and_dropped() -> None:
    agg = Aggregate(2)
    for seq in range(1, 101):
        block = [(k, k % 7) for k in range((seq - 1) * 10, seq * 10)]
        agg.accept(0, _ticks(seq, block))
        agg.accept(1, _ticks(seq, block))
    assert agg.pending_vus_ticks() == 0
    vus = agg.series()["vus"]
    assert isinstance(vus, GaugeSink) and (vus.value, vus.min, vus.max) == (2.0 * (999 % 7), 0.0, 12.0)


@st.composite
def _interleavings(draw: st.DrawFn) -> tuple[list[list[Report]], list[int]]:
    n = draw(st.integers(1, 4))
    reports: list[list[Report]] = []
    for w in range(n):
        ticks = draw(st.integers(1, 30))
        counts = draw(st.lists(st.integers(0, 9), min_size=ticks, max_size=ticks))
        cuts = sorted(set(draw(st.lists(st.integers(1, ticks), max_size=4))) | {ticks})
        mine, start = [], 0
        for seq, cut in enumerate(cuts, 1):
            g = GaugeSink()
            for k in range(start, cut):
                g.set(float(counts[k]), float(k))
            q = GaugeSink()  # an ordinary gauge: last value wins, by each worker's clock
            q.set(float(draw(st.integers(0, 5))), float(draw(st.sampled_from([0, cut]))))
            mine.append(Report(RUN, seq, float(cut), {"vus": g, "queue": q}, {}, cut == ticks, "",
                               [(k, counts[k]) for k in range(start, cut)]))
            start = cut
        reports.append(mine)
    order = draw(st.permutations([w for w, mine in enumerate(reports) for _ in mine]))
    return reports, order


@settings(max_examples=200, deadline=None)
@given(case=_interleavings())
def test_fleet_gauges_do_not_depend_on_how_workers_interleave(case: tuple[list[list[Report]], list[int]]) -> None:
    reports, order = case

    def run(sequence: list[int]) -> dict[str, tuple[str, bytes]]:
        agg = Aggregate(len(reports))
        nxt = [0] * len(reports)
        for w in sequence:
            agg.accept(w, reports[w][nxt[w]])
            nxt[w] += 1
        series = agg.series()
        return _bits({k: v for k, v in series.items() if k in ("vus", "queue")})

    worker_by_worker = [w for w, mine in enumerate(reports) for _ in mine]
    assert run(order) == run(worker_by_worker)


# --------------------------------------------------------------------------- bounds, skips, hostile frames


def test_a_report_too_far_ahead_is_not_kept_and_comes_back_later() -> None:
    agg = Aggregate(1)
    far = _report(MAX_AHEAD + 1, http_reqs=CounterSink(5.0))
    assert agg.accept(0, far) is Accepted.TOO_FAR  # not buffered: its worker resends it
    for seq in range(1, MAX_AHEAD + 1):
        assert agg.accept(0, _report(seq, http_reqs=CounterSink(1.0))) is Accepted.APPLIED
    assert agg.accept(0, far) is Accepted.APPLIED
    assert agg.series()["http_reqs"].to_wire() == [float(MAX_AHEAD + 5)]


def test_a_skipped_report_releases_the_ones_behind_it() -> None:
    agg = Aggregate(1)
    assert agg.accept(0, _report(2, http_reqs=CounterSink(2.0))) is Accepted.BUFFERED
    assert agg.accept(0, _report(3, http_reqs=CounterSink(3.0), final=True)) is Accepted.BUFFERED
    assert agg.skip(0, 1, final=False) is Accepted.APPLIED
    assert agg.all_finished and agg.skipped == [1] and agg.reports == [2] and agg.requests == [5]
    assert agg.skip(0, 1, final=False) is Accepted.DUPLICATE


_RUN_FRAMES = st.integers(1, 40)


@st.composite
def _frames(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """What two workers' sockets might carry: real reports (resent, reordered), damaged or foreign bytes."""
    out: list[tuple[int, bytes]] = []
    for _ in range(draw(st.integers(0, 60))):
        worker = draw(st.integers(0, 1))
        seq = draw(_RUN_FRAMES)
        frame = encode(Report(RUN, seq, float(seq), {"http_reqs": CounterSink(float(seq))}, {}, seq == 40))
        how = draw(st.sampled_from(["as is", "as is", "flip", "cut", "noise", "inf"]))
        if how == "flip":
            i = draw(st.integers(0, len(frame) - 1))
            frame = frame[:i] + bytes([frame[i] ^ draw(st.integers(1, 255))]) + frame[i + 1 :]
        elif how == "cut":
            frame = frame[: draw(st.integers(0, len(frame) - 1))]
        elif how == "noise":
            frame = draw(st.binary(max_size=64))
        elif how == "inf":
            body = msgpack.unpackb(frame)
            body["series"] = {"x": ["trend", [1, float("inf"), 1.0, 1.0, [1.0], [1]]]}
            frame = msgpack.packb(body)
        out.append((worker, frame))
    return out


@settings(max_examples=300, deadline=None)
@given(frames=_frames())
def test_the_aggregator_takes_any_frames_as_the_session_does_and_counts_each_report_once(
    frames: list[tuple[int, bytes]],
) -> None:
    """The session's path, frame by frame: decode, else peek and skip. Nothing raises, nothing doubles.

    A flipped byte may still decode (another count, another seq): what counts is what was
    first taken under each number, a report's requests or a skip.
    """
    agg = Aggregate(2)
    taken: list[dict[int, float | None]] = [{}, {}]  # seq -> requests of the report first taken, None: skipped
    for worker, frame in frames:
        try:
            msg = decode(frame)
        except ProtocolError:
            peek = peek_report(frame)
            if peek is not None and peek[0] == RUN:
                if agg.skip(worker, peek[1], peek[2]) in (Accepted.APPLIED, Accepted.BUFFERED):
                    taken[worker][peek[1]] = None
            continue
        if isinstance(msg, Report) and msg.run_id == RUN:
            if agg.accept(worker, msg) in (Accepted.APPLIED, Accepted.BUFFERED):
                reqs = msg.series.get("http_reqs")
                taken[worker][msg.seq] = reqs.total if isinstance(reqs, CounterSink) else 0.0
    total = 0.0
    for w in range(2):
        # applied is exactly the prefix 1..n of numbers, each once, report or skip
        n = agg.reports[w] + agg.skipped[w]
        prefix = [taken[w][s] for s in range(1, n + 1)]
        assert len(taken[w]) - n <= MAX_AHEAD  # what waits behind a gap is bounded
        reports = [v for v in prefix if v is not None]
        assert agg.reports[w] == len(reports) and agg.skipped[w] == n - len(reports)
        assert agg.requests[w] == sum(int(v) for v in reports)
        total += sum(reports)
    merged = agg.series().get("http_reqs")
    assert (merged.to_wire() if isinstance(merged, CounterSink) else [0.0]) == [total] or (total == 0 and merged is None)


# --------------------------------------------------------------------------- per worker: O(1) figures and counters


def _health(seq: int, *, reqs: int, failed: int, cpu: list[float], lag: list[float], saturated: list[float],
            iterations: float = 0.0, final: bool = False) -> Report:
    series: dict[str, Sink] = {
        "http_reqs": CounterSink(float(reqs)),
        "http_req_failed": RateSink(failed, reqs),
        "surge_cpu": TrendSink(Sketch.from_samples(cpu)),
        "surge_loop_lag": TrendSink(Sketch.from_samples(lag)),
        "surge_saturated": RateSink(sum(1 for s in saturated if s), len(saturated)),
    }
    if iterations:
        series["iterations{scenario:purchase}"] = CounterSink(iterations)
    return Report(RUN, seq, float(seq), series, {}, final)


def test_each_workers_figures_come_from_its_own_reports_only() -> None:
    agg = Aggregate(2)
    agg.accept(0, _health(1, reqs=100, failed=3, cpu=[0.5, 0.7], lag=[1.0, 3.0], saturated=[0, 0]))
    agg.accept(0, _health(2, reqs=50, failed=1, cpu=[0.9], lag=[80.0], saturated=[1]))
    agg.accept(0, _health(2, reqs=50, failed=1, cpu=[0.9], lag=[80.0], saturated=[1]))  # a resend: not counted
    agg.accept(1, _health(1, reqs=10, failed=0, cpu=[0.1], lag=[0.5], saturated=[0]))

    a, b = agg.figures(0), agg.figures(1)
    assert (a.requests, a.failures, a.cpu_samples, a.lag_samples) == (150, 4, 3, 3)
    assert a.cpu_mean == pytest.approx(0.7) and a.cpu_max == 0.9
    assert a.lag_mean_ms == pytest.approx(28.0) and a.lag_max_ms == 80.0
    assert (a.saturated, a.saturation_samples) == (1, 3) and a.saturated_share == pytest.approx(1 / 3)
    assert (b.requests, b.failures, b.cpu_max, b.saturated_share) == (10, 0, 0.1, 0.0)
    assert agg.requests == [150, 10]
    a.requests = 0  # a copy: the aggregate's own is untouched
    assert agg.figures(0).requests == 150


def test_a_worker_without_reports_has_zero_figures() -> None:
    f = Aggregate(1).figures(0)
    assert (f.requests, f.cpu_mean, f.lag_mean_ms, f.saturated_share) == (0, 0.0, 0.0, 0.0)


def test_tracked_counters_are_totalled_per_worker() -> None:
    key = "iterations{scenario:purchase}"
    agg = Aggregate(2, tracked_counters=frozenset({key}))
    agg.accept(0, _health(2, reqs=1, failed=0, cpu=[0.1], lag=[0.1], saturated=[0], iterations=4.0))  # buffered
    assert agg.counter(0, key) == 0.0
    agg.accept(0, _health(1, reqs=1, failed=0, cpu=[0.1], lag=[0.1], saturated=[0], iterations=3.0))
    agg.accept(1, _health(1, reqs=1, failed=0, cpu=[0.1], lag=[0.1], saturated=[0], iterations=5.0))
    agg.accept(1, _health(1, reqs=1, failed=0, cpu=[0.1], lag=[0.1], saturated=[0], iterations=5.0))  # duplicate

    assert (agg.counter(0, key), agg.counter(1, key)) == (7.0, 5.0)
    with pytest.raises(KeyError):
        agg.counter(0, "iterations")  # not tracked


def test_the_fleets_state_does_not_grow_with_the_number_of_workers() -> None:
    """Fleet sinks once, not per worker: the same series whatever the fleet size, and no per-worker sinks."""
    def held(n: int) -> tuple[int, int]:
        agg = Aggregate(n)
        for w in range(n):
            for seq in (1, 2):
                agg.accept(w, _generated(w % 3, seq, seq == 2))
        trends = [s for s in agg._fleet.values() if isinstance(s, TrendSink)]
        return len(agg._fleet), max(len(t.sketch._pending) for t in trends)

    few, many = held(3), held(200)
    assert few[0] == many[0]  # one sink per series, not one per series per worker
    assert many[1] < MERGE_BATCH  # digests waiting to be folded: bounded by the batch, not by the fleet
    assert all(not gauges or set(gauges) <= {"vus", "vus_max"} for gauges in Aggregate(2)._summed)


def test_a_worker_whose_share_was_handed_over_leaves_the_fleet_vus_max() -> None:
    # Two workers of 2 VUs; w0 lost, w1 takes its 2 VUs (the same VUs): the fleet has 4, not 6.
    agg = Aggregate(2)
    agg.accept(0, _report(1, vus_max=_gauge(2.0, 1.0)))
    agg.accept(1, _report(1, vus_max=_gauge(2.0, 1.0)))
    agg.handed_over(0)
    agg.accept(1, _report(2, vus_max=_gauge(4.0, 6.0), final=True))
    values = agg.series()["vus_max"].values(6.0)
    assert values["value"] == 4.0 and values["max"] == 4.0
    assert agg.all_finished


def test_a_finished_worker_that_never_sent_a_gauge_counts_zero_in_the_fleet_sum() -> None:
    agg = Aggregate(2)
    agg.accept(1, _report(1, vus_max=_gauge(3.0, 1.0)))
    assert "vus_max" not in agg.series()  # worker 0 may still send one
    agg.handed_over(0)  # lost before its first report
    assert agg.series()["vus_max"].values(1.0)["value"] == 3.0

"""The timeline: interval reports of many workers become points, bounded, losing nothing."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.metrics import CounterSink, RateSink, Sink, TrendSink
from surge.common.sketch import Sketch
from surge.results.timeline import (
    CLOSE_AFTER_INTERVALS,
    MAX_WORKER_SERIES,
    Timeline,
    TimelineFormatError,
    bucket_intervals,
    timeline_from_json,
)


def _report(reqs: float, durations: list[float] | None = None, failed: tuple[int, int] = (0, 0)) -> dict[str, Sink]:
    series: dict[str, Sink] = {"http_reqs": CounterSink(reqs)}
    if durations:
        series["http_req_duration"] = TrendSink(Sketch.from_samples(durations))
    if failed[1]:
        series["http_req_failed"] = RateSink(*failed)
    return series


def test_a_bucket_closes_once_every_live_worker_has_reported_past_it() -> None:
    tl = Timeline(1.0, 60.0, ["a", "b"])
    tl.add(0, 1.001, _report(3))
    assert tl.points == []  # b has not reported interval 1
    tl.add(1, 0.999, _report(4))
    assert [p.t_s for p in tl.points] == [1.0]
    assert tl.points[0].values["http_reqs"]["count"] == 7
    assert tl.points[0].worker_requests == (3.0, 4.0)


def test_a_retired_worker_is_not_waited_for() -> None:
    tl = Timeline(1.0, 60.0, ["a", "b"])
    tl.add(0, 1.0, _report(3))
    tl.add(0, 2.0, _report(3))
    assert tl.points == []
    tl.retire(1)  # lost, or its final report is in
    assert [p.t_s for p in tl.points] == [1.0, 2.0]


def test_a_silent_worker_holds_the_timeline_only_so_long() -> None:
    tl = Timeline(1.0, 600.0, ["a", "b"])
    for k in range(1, CLOSE_AFTER_INTERVALS + 2):
        tl.add(0, float(k), _report(1))
    assert [p.t_s for p in tl.points] == [1.0]  # 11 is 10 intervals past bucket 1's end


def test_a_late_report_is_kept_in_a_later_point() -> None:
    tl = Timeline(1.0, 600.0, ["a", "b"])
    for k in range(1, CLOSE_AFTER_INTERVALS + 3):
        tl.add(0, float(k), _report(1))
    closed = len(tl.points)
    tl.add(1, 1.0, _report(5))  # its bucket closed long ago
    tl.finish()
    assert sum(p.values["http_reqs"]["count"] for p in tl.points) == CLOSE_AFTER_INTERVALS + 2 + 5
    assert all(p.values["http_reqs"]["count"] == 1 for p in tl.points[:closed])


def test_a_trend_point_merges_every_report_in_its_interval() -> None:
    tl = Timeline(1.0, 60.0, ["a", "b"])
    tl.add(0, 1.0, _report(2, [10.0, 20.0]))
    tl.add(1, 1.0, _report(2, [30.0, 40.0]))
    (p,) = tl.points
    d = p.values["http_req_duration"]
    assert (d["count"], d["min"], d["max"], d["avg"]) == (4.0, 10.0, 40.0, 25.0)


def test_gaps_are_points_with_no_data_and_counters_read_zero() -> None:
    tl = Timeline(1.0, 60.0, ["a"])
    tl.add(0, 1.0, _report(2))
    tl.add(0, 4.0, _report(3))
    data = tl.data()
    assert [p.t_s for p in data.points] == [1.0, 2.0, 3.0, 4.0]
    assert data.column("http_reqs", "count") == [2.0, 0.0, 0.0, 3.0]


def test_vus_is_the_fleet_sum_at_the_latest_tick_of_the_interval() -> None:
    tl = Timeline(1.0, 60.0, ["a", "b"])
    tl.add(0, 1.0, _report(1), [(0, 0)])
    tl.add(1, 1.0, _report(1), [(0, 0)])
    tl.add(0, 2.0, _report(1), [(1, 5)])
    tl.add(1, 2.0, _report(1), [(1, 7)])
    assert [p.vus for p in tl.points] == [0, 12]


def test_long_runs_are_downsampled_to_a_bounded_number_of_points() -> None:
    per = bucket_intervals(1.0, 3 * 3600.0)
    assert per == 11
    tl = Timeline(1.0, 3 * 3600.0, ["a"])
    for k in range(1, 3 * 3600 + 1):
        tl.add(0, float(k), _report(1))
    tl.finish()
    assert len(tl.points) <= 1000
    assert sum(p.values["http_reqs"]["count"] for p in tl.points) == 3 * 3600
    assert tl.points[0].values["http_reqs"]["rate"] == 1.0  # 11 requests over an 11 s point


def test_only_the_first_workers_get_a_series_of_their_own() -> None:
    n = MAX_WORKER_SERIES + 5
    tl = Timeline(1.0, 60.0, [f"w{i}" for i in range(n)])
    for i in range(n):
        tl.add(i, 1.0, _report(1))
    (p,) = tl.points
    assert len(p.worker_requests) == MAX_WORKER_SERIES
    assert p.values["http_reqs"]["count"] == n


@settings(max_examples=60, deadline=None)
@given(
    reports=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 40), st.floats(-0.3, 0.3), st.integers(0, 9)),
        max_size=80,
    ),
    retire_at=st.lists(st.integers(0, 3), max_size=4),
    max_duration=st.sampled_from([10.0, 40.0, 400.0]),
)
def test_whatever_the_order_every_count_lands_in_exactly_one_point(
    reports: list[tuple[int, int, float, int]], retire_at: list[int], max_duration: float
) -> None:
    tl = Timeline(1.0, max_duration, ["a", "b", "c", "d"], max_points=5)
    added = 0
    for i, (worker, k, jitter, reqs) in enumerate(reports):
        tl.add(worker, k + jitter, _report(reqs))
        added += reqs
        if i in retire_at:
            tl.retire(worker)
        ts = [p.t_s for p in tl.points]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
    tl.finish()
    assert sum(p.values.get("http_reqs", {}).get("count", 0.0) for p in tl.points) == added
    widths = {round(b - a, 9) for a, b in zip([0.0] + [p.t_s for p in tl.points], [p.t_s for p in tl.points])}
    assert widths <= {tl.bucket_s}


def test_json_round_trip_keeps_every_point() -> None:
    tl = Timeline(1.0, 60.0, ["a", "b"])
    tl.add(0, 1.0, _report(2, [10.0, 20.0], (1, 2)), [(0, 1)])
    tl.add(1, 1.0, _report(2, [30.0], (0, 2)), [(0, 1)])
    tl.add(0, 3.0, _report(1, [5.0], (0, 1)))
    tl.finish()
    obj = json.loads(json.dumps(tl.to_json()))
    back = timeline_from_json(obj)
    assert back.to_json() == obj
    assert back.column("http_req_failed", "rate") == [0.25, None, 0.0]
    assert back.column("http_req_duration", "p(95)")[1] is None
    assert math.isclose(back.column("http_req_duration", "max")[0] or 0.0, 30.0)


@pytest.mark.parametrize(
    "damage, names",
    [
        (lambda o: o.update(version=99), "timeline.version"),
        (lambda o: o.update(vus=[1]), "timeline.vus"),
        (lambda o: o["series"]["http_reqs"].update(type="histogram"), "timeline.series['http_reqs'].type"),
        (lambda o: o["series"]["http_reqs"]["values"].update(count=[1]), "timeline.series['http_reqs'].values"),
        (lambda o: o.pop("t"), "timeline: missing"),
    ],
)
def test_a_damaged_saved_timeline_names_what_is_wrong(damage, names) -> None:  # type: ignore[no-untyped-def]
    tl = Timeline(1.0, 60.0, ["a"])
    tl.add(0, 1.0, _report(2))
    tl.add(0, 2.0, _report(2))
    tl.finish()
    obj = json.loads(json.dumps(tl.to_json()))
    damage(obj)
    with pytest.raises(TimelineFormatError, match=names.replace("[", r"\[").replace("]", r"\]")):
        timeline_from_json(obj)


def test_a_report_claiming_an_absurd_time_cannot_grow_the_timeline() -> None:
    # elapsed_s is only checked to be finite on the wire: 1e15 s must not mean 1e15 points
    tl = Timeline(1.0, 60.0, ["a", "b"], max_points=50)
    tl.add(0, 1.0, _report(1), [(0, 1), (10**15, 3)])
    tl.add(1, 1e15, _report(7))
    tl.add(1, -5.0, _report(2))
    tl.retire(0)
    tl.retire(1)
    tl.finish()
    assert len(tl.points) <= 100
    assert sum(p.values.get("http_reqs", {}).get("count", 0.0) for p in tl.points) == 10


def test_a_point_holds_its_numbers_packed_so_a_soak_keeps_its_memory() -> None:
    # A long run keeps up to MAX_POINTS points of every series: the bytes one series costs in
    # one point are the coordinator's memory slope over a soak. A dict of eight floats is
    # about 470 bytes of Python objects; packed, 8 bytes a number (surge/results/stat_row.py).
    import tracemalloc

    keys = [f"http_req_duration{{name:/items/{i}}}" for i in range(40)]
    reports = [{key: TrendSink(Sketch.from_samples([0.01 * (j + 1), 0.02])) for key in keys} for j in range(50)]
    tracemalloc.start()
    try:  # from the 11th point on: what each further point keeps (the sketches' caches are full by then)
        tl = Timeline(1.0, 60.0, ["a"])
        for j, report in enumerate(reports):
            tl.add(0, j + 1.0, report)
            if j == 10:
                before = tracemalloc.get_traced_memory()[0]
        tl.finish()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(tl.points) == 50
    assert tl.points[7].values[keys[3]]["max"] == pytest.approx(0.08)
    assert dict(tl.points[7].values[keys[3]]) == {stat: tl.points[7].values[keys[3]][stat]
                                                  for stat in ("count", "avg", "min", "med", "max",
                                                               "p(90)", "p(95)", "p(99)")}
    per_series = kept / ((len(tl.points) - 10) * len(keys))
    assert per_series < 120, f"{per_series:.0f} bytes per series per point"

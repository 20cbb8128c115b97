"""What the live progress shows, from built snapshots (no terminal, no clock)."""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping

import pytest

from surge.common.metrics import CounterSink, GaugeSink, RateSink, Sink, TrendSink
from surge.common.options import Executor, Options, ScenarioConfig
from surge.common.schedule import Stage
from surge.common.sketch import Sketch
from surge.results.live import LiveSnapshot
from surge.results.progress import (
    State,
    bar,
    clock,
    observed_text,
    plain_line,
    progress_of,
    renderable,
    target_rate_at,
    vus_text,
)
from surge.results.progress_term import PlainProgress, TerminalProgress, progress_view
from surge.results.thresholds import Verdict
from surge.results.timeline import Point, TimelineData

RAMP = ScenarioConfig(
    "purchase", Executor.RAMPING_VUS, start_vus=0,
    stages=(Stage(10.0, 10), Stage(20.0, 10), Stage(10.0, 0)), graceful_ramp_down_s=5.0, graceful_stop_s=5.0,
)


def _sinks(*, reqs: int, iters: int, vus: int, failed: int, latencies: list[float], tag: str = "") -> dict[str, Sink]:
    g = GaugeSink()
    g.set(vus, 1.0)
    return {
        "http_reqs" + tag: CounterSink(reqs), "iterations" + tag: CounterSink(iters), "vus": g,
        "http_req_failed" + tag: RateSink(failed, reqs),
        "http_req_duration" + tag: TrendSink(Sketch.from_samples(latencies)),
    }


def _timeline(*points: Mapping[str, Mapping[str, float]]) -> TimelineData:
    pts = tuple(Point(float(i + 1), None, p) for i, p in enumerate(points))
    return TimelineData(1.0, 1.0, pts, {"http_reqs": "counter"}, ())


def _snap(elapsed_s: float, series: Mapping[str, Sink], *scenarios: ScenarioConfig,
          timeline: TimelineData | None = None, verdicts: tuple[Verdict, ...] = ()) -> LiveSnapshot:
    options = Options(scenarios or (RAMP,))
    return LiveSnapshot(elapsed_s, options.max_duration_s(), series, timeline or _timeline(), verdicts, options, ())


# --------------------------------------------------------------------------- scenario rows


def test_a_ramping_scenario_shows_its_share_of_its_own_length_and_the_plans_target_now() -> None:
    series = _sinks(reqs=120, iters=40, vus=4, failed=3, latencies=[float(i) for i in range(1, 101)])
    p = progress_of(_snap(5.0, series))
    (row,) = p.scenarios
    assert row.state is State.RUNNING
    assert row.fraction == pytest.approx(5.0 / 40.0)
    assert row.target_vus == 5  # half way up a 0 -> 10 ramp over 10 s
    assert row.vus == 4  # one scenario: the fleet's measured count is its count
    assert (row.iterations, row.requests, row.failed) == (40, 120, 3)
    assert row.p95_ms == pytest.approx(95.0, abs=1.0)
    assert row.reqs_per_s == pytest.approx(120 / 5.0)  # no point closed yet: count over time so far
    assert (p.vus, p.requests, p.failed) == (4, 120, 3)


def test_requests_per_second_is_the_last_closed_points_rate() -> None:
    series = _sinks(reqs=120, iters=40, vus=4, failed=0, latencies=[1.0])
    tl = _timeline({"http_reqs": {"count": 10.0, "rate": 10.0}}, {"http_reqs": {"count": 33.0, "rate": 33.0}})
    p = progress_of(_snap(5.0, series, timeline=tl))
    assert p.reqs_per_s == p.scenarios[0].reqs_per_s == 33.0
    tl_quiet = _timeline({"http_reqs": {"count": 10.0, "rate": 10.0}}, {})  # nothing sent in the last interval
    assert progress_of(_snap(5.0, series, timeline=tl_quiet)).reqs_per_s == 0.0


def test_before_its_start_time_a_scenario_waits_and_after_its_length_it_stops_then_is_done() -> None:
    late = ScenarioConfig("late", Executor.CONSTANT_VUS, vus=7, duration_s=10.0, start_time_s=20.0, graceful_stop_s=5.0)
    empty: dict[str, Sink] = {}
    rows = [progress_of(_snap(t, empty, RAMP, late)).scenarios[1] for t in (10.0, 25.0, 31.0, 36.0)]
    assert [r.state for r in rows] == [State.WAITING, State.RUNNING, State.STOPPING, State.DONE]
    assert [r.fraction for r in rows] == [0.0, 0.5, 1.0, 1.0]
    assert [r.target_vus for r in rows] == [0, 7, 0, 0]  # past its length the plan wants none (VUs finishing)
    assert rows[1].elapsed_s == 5.0 and rows[1].length_s == 10.0


def test_several_scenarios_read_their_own_sub_metrics_and_show_no_measured_vus_per_scenario() -> None:
    browse = ScenarioConfig("browse", Executor.CONSTANT_VUS, vus=3, duration_s=40.0)
    series = {**_sinks(reqs=10, iters=5, vus=9, failed=1, latencies=[2.0], tag="{scenario:purchase}"),
              **_sinks(reqs=50, iters=25, vus=9, failed=0, latencies=[8.0], tag="{scenario:browse}"),
              **_sinks(reqs=60, iters=30, vus=9, failed=1, latencies=[2.0, 8.0])}
    p = progress_of(_snap(5.0, series, RAMP, browse))
    purchase, br = p.scenarios
    assert (purchase.requests, purchase.iterations, purchase.failed) == (10, 5, 1)
    assert (br.requests, br.iterations, br.failed) == (50, 25, 0)
    assert purchase.vus is None and br.vus is None  # not measured per scenario
    assert (purchase.target_vus, br.target_vus) == (5, 3)
    assert vus_text(purchase) == "5 VUs (plan)"
    assert p.vus == 9 and p.requests == 60  # the header: the fleet's


def test_an_arrival_rate_scenario_shows_the_plans_rate_now_and_its_max_vus() -> None:
    sc = ScenarioConfig("open", Executor.RAMPING_ARRIVAL_RATE, start_rate=0, stages=(Stage(10.0, 100),),
                        time_unit_s=2.0, pre_allocated_vus=5, max_vus_limit=20)
    (row,) = progress_of(_snap(5.0, {}, sc)).scenarios
    assert row.target_rate == pytest.approx(25.0)  # half way to 100 per 2 s
    assert row.target_vus == 20
    assert vus_text(row) == "25.00 iters/s, 0/20 VUs"  # one scenario: the fleet's measured count
    assert target_rate_at(sc.arrival_plan(), 0.0) == 0.0
    assert target_rate_at(sc.arrival_plan(), 10.0) == 0.0  # past the plan
    const = ScenarioConfig("c", Executor.CONSTANT_ARRIVAL_RATE, rate=30, duration_s=10.0, time_unit_s=60.0)
    assert target_rate_at(const.arrival_plan(), 3.0) == pytest.approx(0.5)


def test_an_iteration_counting_scenario_fills_its_bar_with_iterations_not_time() -> None:
    sc = ScenarioConfig("batch", Executor.SHARED_ITERATIONS, vus=4, iterations=200, max_duration_s=600.0)
    (row,) = progress_of(_snap(5.0, {"iterations": CounterSink(50)}, sc)).scenarios
    assert row.fraction == 0.25 and row.planned_iterations == 200 and row.state is State.RUNNING
    (done,) = progress_of(_snap(6.0, {"iterations": CounterSink(200)}, sc)).scenarios
    assert done.state is State.DONE and done.fraction == 1.0


# --------------------------------------------------------------------------- thresholds


def test_each_threshold_shows_its_mark_and_the_observed_value_in_its_unit() -> None:
    series = _sinks(reqs=100, iters=100, vus=1, failed=2, latencies=[1.0])
    verdicts = (
        Verdict("http_req_duration", "p(95)<500", True, 123.456),
        Verdict("http_req_failed", "rate<0.01", False, 0.02),
        Verdict("http_reqs", "rate>10", True, 12.5),
        Verdict("my_trend", "avg<3", True, 2.5),
        Verdict("my_errors", "rate<0.1", True, 0.05),
    )
    p = progress_of(_snap(5.0, {**series, "my_errors": RateSink(1, 20)}, verdicts=verdicts))
    assert [(t.ok, t.observed) for t in p.thresholds] == [
        (True, "p(95)=123.46ms"), (False, "rate=2.00%"), (True, "rate=12.50/s"), (True, "avg=2.50"),
        (True, "rate=5.00%"),  # a custom Rate metric: known as one from its sink
    ]
    assert observed_text(Verdict("http_req_duration", "p(99)<2000", True, 1500.0), {}) == "p(99)=1.50s"


# --------------------------------------------------------------------------- text


def test_the_plain_line_keeps_the_old_content_and_adds_rate_p95_failures_and_thresholds() -> None:
    series = _sinks(reqs=240, iters=48, vus=10, failed=6, latencies=[12.0] * 10)
    verdicts = (Verdict("http_req_duration", "p(95)<500", True, 12.0), Verdict("http_req_failed", "rate<0.01", False, 0.025))
    line = plain_line(progress_of(_snap(5.2, series, verdicts=verdicts)))
    assert line == ("running (5s/45s), 10 VUs, 48 iterations, 240 requests, 46.2 req/s, p95=12.00ms, "
                    "6 failed (2.50%), thresholds 1 ok 1 crossed")
    assert "\x1b" not in line


def test_bar_and_clock_read_like_k6s() -> None:
    assert bar(0.0, 10) == "[>---------]"
    assert bar(0.5, 10) == "[=====>----]"
    assert bar(1.0, 10) == "[==========]"
    assert bar(7.0, 4) == "[====]" and bar(-1.0, 4) == "[>---]"
    assert (clock(5.0), clock(754.25), clock(-1.0)) == ("0m05.0s", "12m34.2s", "0m00.0s")


def _text(snap: LiveSnapshot, width: int = 160) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable(progress_of(snap)))
    return out.getvalue()


def test_the_frame_holds_the_scenario_row_and_every_threshold() -> None:
    series = _sinks(reqs=120, iters=40, vus=4, failed=0, latencies=[50.0])
    verdicts = (Verdict("http_req_duration{scenario:purchase}", "p(95)<500", True, 50.0),
                Verdict("http_req_failed", "rate<0.01", False, 0.5))
    lines = _text(_snap(20.0, series, verdicts=verdicts)).splitlines()
    assert lines[0].startswith("running (0m20.0s/0m45.0s), 4 VUs, 40 iterations, 120 requests")
    row = lines[1].split()
    assert row[:4] == ["purchase", "[===============>--------------]", "4/10", "VUs"]
    assert "0m20.0s/0m40.0s" in row and "p95" in row
    assert lines[2] == "thresholds (now):"
    assert lines[3].split() == ["✓", "http_req_duration{scenario:purchase}", "p(95)<500", "p(95)=50.00ms"]
    assert lines[4].split() == ["✗", "http_req_failed", "rate<0.01", "rate=50.00%"]
    assert len(lines) == 5
    assert all(len(line) <= 80 for line in _text(_snap(20.0, series, verdicts=verdicts), width=80).splitlines())


# --------------------------------------------------------------------------- where it goes


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_frames_drawn_over_the_last_and_others_get_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert isinstance(progress_view(_Tty()), TerminalProgress)
    assert isinstance(progress_view(io.StringIO()), PlainProgress)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(progress_view(_Tty()), PlainProgress)


def test_the_terminal_view_redraws_in_place_and_lets_other_stderr_text_keep_the_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _Tty()
    monkeypatch.setattr(sys, "stderr", out)  # the frames' stream is stderr, as in a run
    view = TerminalProgress(out, size=(120, 50))
    series = _sinks(reqs=1, iters=1, vus=1, failed=0, latencies=[1.0])
    real_stderr = sys.stderr
    try:
        view.update(_snap(1.0, series))
        first = out.getvalue()
        assert first.endswith("\n") and "\x1b[J" not in first  # nothing to draw over yet
        height = first.count("\n")
        view.update(_snap(2.0, series))
        second = out.getvalue()[len(first):]
        assert second.startswith(f"\r\x1b[{height}A\x1b[J")  # back over the previous frame
        print("surge: a message", file=sys.stderr)  # through the proxy: the frame stays, the text follows it
        view.update(_snap(3.0, series))
        tail = out.getvalue()[len(first) + len(second):]
        assert tail.startswith("surge: a message\n") and "\x1b[J" not in tail.split("running")[0]
    finally:
        view.close(None)
    assert sys.stderr is real_stderr


def test_a_failing_update_gives_stderr_back_before_the_error_reaches_the_run() -> None:
    view = TerminalProgress(_Tty(), size=(120, 50))
    real_stderr = sys.stderr
    with pytest.raises(AttributeError):
        view.update(None)  # type: ignore[arg-type]
    assert sys.stderr is real_stderr


def test_plain_lines_come_every_five_seconds_of_run_time() -> None:
    out = io.StringIO()
    view = PlainProgress(out)
    series = _sinks(reqs=1, iters=1, vus=1, failed=0, latencies=[1.0])
    for t in range(1, 13):
        view.update(_snap(float(t), series))
    view.close(None)
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["surge: running (5s/45s)", "surge: running (10s/45s)"]


def test_a_frame_taller_than_the_terminal_is_cut_to_fit_so_the_cursor_can_go_back_over_it() -> None:
    out = _Tty()
    view = TerminalProgress(out, size=(120, 6))
    verdicts = tuple(Verdict("http_req_duration", f"p(95)<{n}", True, 1.0) for n in range(10))
    try:
        view.update(_snap(1.0, {}, verdicts=verdicts))
    finally:
        view.close(None)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1] == "… 9 more lines"  # 13 lines, 4 kept

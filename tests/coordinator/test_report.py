"""The saturation warning, and the per-worker figures that show which machine was overloaded."""

from __future__ import annotations

from surge.common.metrics import CounterSink, RateSink, Sink, TrendSink
from surge.common.protocol import Report
from surge.common.sketch import Sketch
from surge.coordinator.aggregate import Aggregate
from surge.coordinator.report import saturation_warning, worker_entries
from surge.coordinator.outcome import SessionResult
from surge.results.summary import text_summary


def _series(saturated: int, seconds: int) -> dict[str, Sink]:
    cpu = TrendSink(Sketch.from_samples([0.5] * 9 + [0.97]))  # shares of one core, one per worker-second
    return {
        "surge_saturated": RateSink(saturated, seconds),
        "surge_loop_lag": TrendSink(Sketch.from_samples([0.2] * 98 + [80.0, 120.0])),
        "surge_cpu": cpu,
    }


def test_no_warning_when_the_generator_kept_up() -> None:
    assert saturation_warning(_series(0, 100)) is None
    assert saturation_warning(_series(5, 100)) is None  # a blip at start-up is not saturation
    assert saturation_warning({}) is None


def test_warning_names_the_share_cpu_and_lag() -> None:
    text = saturation_warning(_series(40, 100))
    assert text is not None
    assert "40%" in text and "peak CPU 97% of a core" in text and "lag p99" in text and "Add workers" in text


# --------------------------------------------------------------------------- per-worker figures

def _fleet() -> SessionResult:
    agg = Aggregate(2)
    for i, (sat, cpu, lag) in enumerate([(0, [0.3, 0.4], [0.2, 0.4]), (3, [0.95, 0.99], [60.0, 200.0])]):
        series: dict[str, Sink] = {
            "http_reqs": CounterSink(1000.0 + i),
            "http_req_failed": RateSink(5 * i, 1000 + i),
            "surge_cpu": TrendSink(Sketch.from_samples(cpu)),
            "surge_loop_lag": TrendSink(Sketch.from_samples(lag)),
            "surge_saturated": RateSink(sat, 4),
        }
        agg.accept(i, Report("r", 1, 1.0, series, {}, True))
    return SessionResult(agg, 1.0, workers=["calm", "hot"])


def test_worker_entries_carry_each_workers_figures_in_index_order() -> None:
    calm, hot = worker_entries(_fleet())
    assert calm["name"] == "calm" and hot["name"] == "hot"
    assert (calm["requests"], calm["failures"], hot["requests"], hot["failures"]) == (1000, 0, 1001, 5)
    assert calm["cpuMean"] == 0.35 and hot["cpuMax"] == 0.99
    assert hot["loopLagMeanMs"] == 130.0 and hot["loopLagMaxMs"] == 200.0
    assert (calm["saturatedShare"], hot["saturatedShare"]) == (0.0, 0.75)
    assert (calm["overloaded"], hot["overloaded"]) == (False, True)


def test_the_text_summary_shows_a_row_per_worker_and_names_the_overloaded_one() -> None:
    text = text_summary({"state": {"workers": worker_entries(_fleet())}})
    header, calm, hot = [line for line in text.splitlines() if line.strip()]
    assert header.split()[:3] == ["worker", "requests", "failed"]
    assert calm.split()[:2] == ["calm", "1000"] and "overloaded" not in calm
    assert hot.split()[:2] == ["hot", "1001"] and "75%" in hot and hot.endswith("overloaded")
    assert "0.5%" in hot and "99%" in hot and "200ms" in hot


def test_one_worker_gets_no_table() -> None:
    one = worker_entries(_fleet())[:1]
    assert text_summary({"state": {"workers": one}}) == ""

"""The saturation warning: said when the generator, not the server, shaped the latencies."""

from __future__ import annotations

from surge.common.metrics import RateSink, Sink, TrendSink
from surge.common.sketch import Sketch
from surge.coordinator.report import saturation_warning


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

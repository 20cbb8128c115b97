"""The saturation warning, the per-worker figures that show which machine was overloaded, and
what report() prints: k6 v1's text in its modes, or none."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from surge.common.metrics import CounterSink, RateSink, Sink, TrendSink
from surge.common.protocol import Report
from surge.common.sketch import Sketch
from surge.coordinator.aggregate import Aggregate
from surge.common.overrides import Overrides
from surge.coordinator.prepare import Prepared, prepare
from surge.coordinator.report import report, saturation_warning, worker_entries
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


# --------------------------------------------------------------------------- the text, or not

SCENARIO = '''
options = {
    "scenarios": {
        "browse": {"executor": "constant-vus", "vus": 1, "duration": "1s"},
        "buy": {"executor": "constant-vus", "vus": 1, "duration": "1s"},
    },
    "thresholds": {"http_reqs": ["count>1"]},
    "summaryTimeUnit": "ms",
}
async def default(vu):
    pass
'''


def _prepared(tmp_path: Path, extra: str = "", overrides: Overrides | None = None) -> Prepared:
    path = tmp_path / "scenario.py"
    path.write_text(SCENARIO + extra)
    return prepare(path, {}, overrides)


def _run(per_scenario: bool = True) -> SessionResult:
    agg = Aggregate(1)
    series: dict[str, Sink] = {
        "http_reqs": CounterSink(30.0),
        "http_req_duration": TrendSink(Sketch.from_samples([1200.0, 1500.0])),
        "http_reqs{scenario:browse}": CounterSink(20.0),
        "http_reqs{scenario:buy}": CounterSink(10.0),
    }
    agg.accept(0, Report("r", 1, 1.0, series, {}, True))
    internal = frozenset({"http_reqs{scenario:browse}", "http_reqs{scenario:buy}"}) if per_scenario else frozenset()
    return SessionResult(agg, 2.0, workers=["w"], internal_series=internal)


def test_the_summary_is_k6_v1s_compact_text_by_default(tmp_path: Path) -> None:
    out = io.StringIO()
    outcome = report(_prepared(tmp_path), _run(), summary_export=None, stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert text.startswith("  █ THRESHOLDS\n\n    http_reqs\n    ✓ 'count>1' count=30\n")
    assert "  █ TOTAL RESULTS" in text and "SCENARIO:" not in text
    assert "avg=1350.00ms" in text  # summaryTimeUnit: ms
    assert "scenario:browse" not in text and "scenario:browse" not in json.dumps(outcome.data)


def test_full_mode_adds_a_section_per_scenario_from_the_sessions_own_series(tmp_path: Path) -> None:
    out = io.StringIO()
    outcome = report(_prepared(tmp_path), _run(), summary_export=None, summary_mode="full", stdout=out,
                     stderr=io.StringIO())
    text = out.getvalue()
    assert "  █ SCENARIO: browse\n\n    HTTP\n    http_reqs...: 20 10/s\n" in text
    assert "  █ SCENARIO: buy\n\n    HTTP\n    http_reqs...: 10 5/s\n" in text
    assert not any("scenario:" in key for key in outcome.data["metrics"])  # the data is k6's, whatever the mode
    with pytest.raises(ValueError, match="summary mode"):
        report(_prepared(tmp_path), _run(), summary_export=None, summary_mode="legacy", stdout=out)


def test_no_summary_prints_no_text_but_exports_and_hands_the_data_over(tmp_path: Path) -> None:
    out, export = io.StringIO(), tmp_path / "out" / "summary.json"
    report(_prepared(tmp_path), _run(), summary_export=export, no_summary=True, stdout=out, stderr=io.StringIO())
    assert out.getvalue() == ""
    assert json.loads(export.read_text())["metrics"]["http_reqs"]["values"]["count"] == 30
    handled = _prepared(tmp_path, "def handle_summary(data):\n    return {'stdout': 'mine %d' % data['metrics']['http_reqs']['values']['count']}\n")
    report(handled, _run(), summary_export=None, no_summary=True, stdout=out, stderr=io.StringIO(), base_dir=tmp_path)
    assert out.getvalue() == "mine 30"


def test_the_time_unit_flag_wins_over_the_scripts_option(tmp_path: Path) -> None:
    out = io.StringIO()
    prepared = _prepared(tmp_path, overrides=Overrides(summary_time_unit="s"))
    outcome = report(prepared, _run(), summary_export=None, stdout=out, stderr=io.StringIO())
    assert "avg=1.35s" in out.getvalue() and outcome.data["options"]["summaryTimeUnit"] == "s"

"""Trust end to end (``surge run`` with real workers): bad values, script errors, fleet ``vus``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import FIXTURES, Target, run_surge, target_env

pytestmark = pytest.mark.integration


def _summary(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_bad_metric_values_are_dropped_counted_and_logged_once_per_call_site(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "summary.json"
    res = run_surge("run", "-w", "1", "-q", "--summary-export", str(export), *target_env(target), str(FIXTURES / "bad_values.py"))
    assert res.returncode == 0, res.stderr
    m = _summary(export)["metrics"]
    requests = target.stats()["requests"]
    assert m["http_reqs"]["values"]["count"] == requests > 0
    assert m["iterations"]["values"]["count"] == requests
    assert m["surge_dropped_samples"]["values"]["count"] == 4 * requests  # four bad adds per iteration
    assert m["bad_wait"]["values"]["max"] > 0  # the good value beside the bad ones was kept
    drops = [line for line in res.stderr.splitlines() if "dropped" in line and "bad_values.py:" in line]
    assert len(drops) == 4, res.stderr  # one line per call site, however many iterations
    assert {re.search(r"metric '(\w+)'", line).group(1) for line in drops} == {  # type: ignore[union-attr]
        "bad_wait", "bad_orders", "bad_errors", "bad_queue"
    }


def test_script_errors_are_counted_shown_three_times_and_summarised(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "summary.json"
    res = run_surge("run", "-w", "1", "-q", "--summary-export", str(export), *target_env(target), str(FIXTURES / "script_errors.py"))
    assert res.returncode == 0, res.stderr
    m = _summary(export)["metrics"]
    requests = target.stats()["requests"]
    assert m["iterations"]["values"]["count"] == requests  # a raising iteration still ends, and is counted
    raised = m["raised"]["values"]["count"]
    assert m["surge_script_errors"]["values"]["count"] == raised > 3
    assert res.stderr.count("Traceback (most recent call last)") == 3, res.stderr
    more = re.findall(r"surge worker: ZeroDivisionError at script_errors\.py:24 in default: (\d+) times "
                      r"\(first 3 shown above, (\d+) more like this\)", res.stderr)
    assert more and int(more[0][0]) == raised and int(more[0][1]) == raised - 3, res.stderr


def test_fleet_vus_max_is_the_true_peak_when_scenarios_take_turns(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "summary.json"
    res = run_surge("run", "-w", "2", "-q", "--summary-export", str(export), *target_env(target), str(FIXTURES / "staggered_vus.py"))
    assert res.returncode == 0, res.stderr
    m = _summary(export)["metrics"]
    assert m["vus"]["values"]["max"] == 2  # was 3: worker 0 ran b and c, and the peaks were summed
    assert m["vus_max"]["values"]["value"] == 4

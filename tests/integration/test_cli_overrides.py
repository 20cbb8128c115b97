"""``surge run`` with k6's overriding flags, end to end against the demo target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, Target, run_surge, target_env

pytestmark = pytest.mark.integration


def test_vus_duration_and_tag_replace_the_scripts_scenarios(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge(
        "run", "-w", "2", "-q", "--vus", "3", "--duration", "2s", "--tag", "env=ci",
        "--summary-trend-stats", "avg,p(99)", "--summary-export", str(export),
        *target_env(target), str(FIXTURES / "overridable.py"),
    )
    assert res.returncode == 0, res.stderr
    m = json.loads(export.read_text())["metrics"]
    served = target.stats()["requests"]
    assert m["vus_max"]["values"]["value"] == 3  # not the script's 9
    assert m["http_reqs"]["values"]["count"] == served > 0
    assert m["iterations"]["values"]["count"] == served
    assert m["http_reqs{env:ci}"]["values"]["count"] == served  # every sample carries the --tag
    assert m["http_reqs{env:ci}"]["thresholds"] == {"count>0": {"ok": True}}
    assert set(m["http_req_duration"]["values"]) == {"avg", "p(99)"}


def test_no_thresholds_passes_a_run_whose_threshold_cannot_hold(target: Target, tmp_path: Path) -> None:
    args = ["run", "-w", "1", "-q", "--vus", "1", "--duration", "1s", *target_env(target), "-e", "REQS=count<0"]
    crossed = run_surge(*args, str(FIXTURES / "overridable.py"))
    assert crossed.returncode == 99, crossed.stderr
    export = tmp_path / "s.json"
    passed = run_surge(*args, "--no-thresholds", "--summary-export", str(export), str(FIXTURES / "overridable.py"))
    assert passed.returncode == 0, passed.stderr
    m = json.loads(export.read_text())["metrics"]
    assert m["http_reqs"]["values"]["count"] > 0
    assert "thresholds" not in m["http_reqs"]


def test_iterations_runs_exactly_that_many_shared_by_the_fleet(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge(
        "run", "-w", "2", "-q", "--vus", "3", "--iterations", "17", "--tag", "env=ci", "--summary-export", str(export),
        *target_env(target), str(FIXTURES / "overridable.py"),
    )
    assert res.returncode == 0, res.stderr
    m = json.loads(export.read_text())["metrics"]
    assert m["iterations"]["values"]["count"] == m["http_reqs"]["values"]["count"] == target.stats()["requests"] == 17

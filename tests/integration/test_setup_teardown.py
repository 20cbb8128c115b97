"""k6's setup() and teardown() across real worker processes: once per test, data to every VU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, Target, run_surge, target_env

pytestmark = pytest.mark.integration

SCENARIO = str(FIXTURES / "lifecycle.py")


def _run(target: Target, tmp_path: Path, mode: str, *extra: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "-q", "--summary-export", str(export), *target_env(target), "-e", f"MODE={mode}",
                    *extra, SCENARIO)
    data = json.loads(export.read_text())["metrics"] if export.exists() else {}
    return res.returncode, res.stderr, data


def _count(m: dict, name: str) -> float:  # type: ignore[type-arg]
    return float(m[name]["values"]["count"]) if name in m else 0.0


def test_setup_runs_once_its_data_reaches_every_vu_and_teardown_runs_once(target: Target, tmp_path: Path) -> None:
    code, err, m = _run(target, tmp_path, "ok")
    assert code == 0, err
    assert _count(m, "setup_calls") == 1 and _count(m, "teardown_calls") == 1  # once per test, not per worker
    assert m["checks"]["values"]["fails"] == 0  # every VU on both workers, and teardown, got setup()'s data
    assert m["checks"]["values"]["passes"] == _count(m, "iterations") + 1
    # setup's and teardown's own requests are counted like any other
    assert _count(m, "http_reqs") == target.stats()["requests"] == _count(m, "iterations") + 2


def test_a_failing_setup_ends_the_run_before_any_load_with_its_traceback(target: Target, tmp_path: Path) -> None:
    code, err, _ = _run(target, tmp_path, "setup raises")
    assert code == 107, err
    assert "setup() raised RuntimeError: no token today" in err and "lifecycle.py" in err
    assert target.stats()["requests"] == 0


def test_setup_past_its_timeout_exits_100(target: Target, tmp_path: Path) -> None:
    code, err, _ = _run(target, tmp_path, "setup hangs", "-e", "SETUP_TIMEOUT=1s")
    assert code == 100, err
    assert "did not finish within 1s" in err
    assert target.stats()["requests"] == 0


def test_setup_data_that_cannot_travel_is_a_clear_error(target: Target, tmp_path: Path) -> None:
    code, err, _ = _run(target, tmp_path, "setup returns junk")
    assert code == 107, err
    assert "cannot be sent to the workers" in err
    assert target.stats()["requests"] == 1  # setup's own request, nothing more


def test_teardown_still_runs_after_an_abort(target: Target, tmp_path: Path) -> None:
    code, err, m = _run(target, tmp_path, "abort", "-e", "DURATION=20s")
    assert code == 108, err
    assert _count(m, "teardown_calls") == 1
    assert _count(m, "http_reqs") == target.stats()["requests"]


def test_no_setup_and_no_teardown_skip_them(target: Target, tmp_path: Path) -> None:
    code, err, m = _run(target, tmp_path, "ok", "--no-setup", "--no-teardown")
    assert code == 0, err
    assert _count(m, "setup_calls") == 0 and _count(m, "teardown_calls") == 0
    assert m["checks"]["values"]["passes"] == 0  # vu.data is None without setup()
    assert _count(m, "http_reqs") == target.stats()["requests"] == _count(m, "iterations")

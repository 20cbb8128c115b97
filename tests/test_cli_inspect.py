"""``surge inspect`` as a user runs it (a subprocess): text and --json, the split, bad input."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import FIXTURES, run_surge

ENV = ["-e", "BASE_URL=http://127.0.0.1:9", "-e", "ANON_KEY=k"]


def _inspect_json(*args: str) -> dict[str, Any]:
    res = run_surge("inspect", "--json", *ENV, *args, timeout=60)
    assert res.returncode == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def test_text_with_one_worker_shows_each_scenario_the_totals_and_the_split() -> None:
    res = run_surge("inspect", "-w", "1", *ENV, str(FIXTURES / "two_scenarios.py"), timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "ramp: ramping-vus, exec default, start 0s, duration 2s (+30s graceful stop, 5s graceful ramp-down), " \
           "over by 32s, max 5 VUs" in out
    assert "steady: constant-vus, exec steady, start 500ms, duration 2s (+30s graceful stop), over by 32.5s, " \
           "max 3 VUs" in out
    assert "total: 8 max VUs, 32.5s max duration (incl. graceful stop)" in out
    assert "split over 1 worker(s):" in out
    assert "worker 0: 8 max VUs" in out
    assert "ramp: max 5 VUs, VU ids 1-5" in out and "steady: max 3 VUs, VU ids 6-8" in out
    assert '"executor": "ramping-vus"' in out  # the consolidated options


def test_json_with_three_workers_splits_the_vus_and_their_ids_exactly() -> None:
    doc = _inspect_json("-w", "3", str(FIXTURES / "two_scenarios.py"))
    assert [sc["name"] for sc in doc["scenarios"]] == ["ramp", "steady"]
    ramp, steady = doc["scenarios"]
    assert (steady["start_time_s"], steady["duration_s"], steady["graceful_stop_s"], steady["end_s"]) == (0.5, 2.0, 30.0, 32.5)
    assert ramp["graceful_ramp_down_s"] == 5.0 and "graceful_ramp_down_s" not in steady
    assert doc["total"] == {"max_vus": 8, "max_duration_s": 32.5}
    assert len(doc["workers"]) == 3
    for i, sc in enumerate(doc["scenarios"]):
        parts = [w["scenarios"][i] for w in doc["workers"]]
        assert sum(p["max_vus"] for p in parts) == sc["max_vus"]
        ids = sorted(n for p in parts for a, b in p["vu_ids"] for n in range(a, b + 1))
        first = 1 if i == 0 else 6
        assert ids == list(range(first, first + sc["max_vus"]))
    assert sum(w["max_vus"] for w in doc["workers"]) == 8
    assert doc["options"]["thresholds"]["http_reqs{scenario:ramp}"] == ["count>0"]


def test_the_command_lines_overrides_are_what_inspect_shows() -> None:
    doc = _inspect_json(
        "-w", "2", "--vus", "3", "--duration", "2s", "--tag", "env=ci", "--no-thresholds",
        "--summary-trend-stats", "avg,p(99)", str(FIXTURES / "overridable.py"),
    )
    assert doc["options"] == {"vus": 3, "duration": "2s", "summaryTrendStats": ["avg", "p(99)"]}
    [sc] = doc["scenarios"]
    assert (sc["name"], sc["executor"], sc["max_vus"], sc["tags"]) == ("default", "constant-vus", 3, {"env": "ci"})
    assert [w["max_vus"] for w in doc["workers"]] == [2, 1]

    staged = _inspect_json("-w", "1", "--stage", "1s:4", "--stage", "2s:0", str(FIXTURES / "overridable.py"))
    [sc] = staged["scenarios"]
    assert (sc["executor"], sc["duration_s"], sc["max_vus"]) == ("ramping-vus", 3.0, 4)


def test_bad_options_exit_104_with_every_problem_the_scripts_and_the_command_lines() -> None:
    res = run_surge("inspect", *ENV, "--stage", "30s", "--tag", "oops", str(FIXTURES / "malformed.py"), timeout=60)
    assert res.returncode == 104, res.stderr
    assert res.stdout == ""
    err = res.stderr
    assert "ramping-vus" in err and "htp_req_failed" in err  # the script's
    assert "--stage '30s' (command line)" in err and "--tag 'oops' (command line)" in err


def test_a_bad_value_for_a_flag_says_it_came_from_the_command_line() -> None:
    res = run_surge("inspect", *ENV, "--vus", "0", "--duration", "2s", str(FIXTURES / "overridable.py"), timeout=60)
    assert res.returncode == 104, res.stderr
    assert "options.vus (from --vus on the command line): expected a whole number >= 1, got 0" in res.stderr


def test_a_script_error_exits_107() -> None:
    res = run_surge("inspect", str(FIXTURES / "syntax_error.py"), timeout=60)
    assert res.returncode == 107, res.stderr
    assert "syntax_error.py:4" in res.stderr

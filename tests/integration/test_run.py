"""``surge run`` end to end: coordinator, worker processes, ZeroMQ, the demo target, exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, REPO, Target, run_surge, surge_cmd, target_env

pytestmark = pytest.mark.integration


def _summary(path: Path) -> dict:  # type: ignore[type-arg]
    data: dict = json.loads(path.read_text())  # type: ignore[type-arg]
    return data


def test_seed_scenario_passes_and_every_request_is_counted(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "summary.json"
    res = run_surge(
        "run", "-w", "2", "--report-interval", "200ms", "--summary-export", str(export),
        *target_env(target),
        "-e", "RAMP_UP=1s", "-e", "HOLD=2s", "-e", "RAMP_DOWN=1s", "-e", "TARGET_VUS=10",
        "-e", f"RESULTS_DIR={tmp_path / 'results'}",
        "scenarios/ticket_purchase.py",
    )
    assert res.returncode == 0, res.stderr
    data = _summary(export)
    served = target.stats()
    m = data["metrics"]
    assert m["http_reqs"]["values"]["count"] == served["requests"] == served["by_status"]["200"] > 0
    assert m["iterations"]["values"]["count"] == served["requests"]
    assert m["checks"]["values"]["fails"] == 0
    assert m["vus_max"]["values"]["value"] == 10
    # per-worker figures: each worker's own share, adding up to the fleet's
    workers = data["state"]["workers"]
    assert len(workers) == 2 and all(w["name"] for w in workers)
    assert sum(w["requests"] for w in workers) == served["requests"]
    assert all(w["failures"] == 0 and w["requests"] > 0 and w["cpuMax"] >= w["cpuMean"] > 0 for w in workers)
    assert "thresholds" not in m["http_req_duration"]  # only the scenario-scoped sub-metric has them
    assert m["http_req_duration{scenario:purchase}"]["thresholds"] == {"p(95)<500": {"ok": True}, "p(99)<1500": {"ok": True}}
    assert m["checkout_duration"]["type"] == "trend" and m["checkout_duration"]["contains"] == "time"
    assert set(m["checkout_duration"]["values"]) == {"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"}
    # handle_summary's outputs: its text on stdout, the data in RESULTS_DIR
    assert "TICKET PURCHASE LOAD TEST RESULTS" in res.stdout
    # text_summary (k6 v1's layout): the scenario-scoped thresholds first, each with its value
    assert res.stdout.index("  █ THRESHOLDS") < res.stdout.index("  █ TOTAL RESULTS") < res.stdout.index("TICKET PURCHASE")
    assert "\n    http_req_duration{scenario:purchase}\n    ✓ 'p(95)<500' p(95)=" in res.stdout
    written = json.loads((tmp_path / "results" / "ticket-purchase-results.json").read_text())
    assert written["metrics"]["http_reqs"]["values"]["count"] == served["requests"]
    # the run over time: every request in exactly one interval point, 200 ms apart
    tl = data["timeline"]
    assert sum(tl["series"]["http_reqs"]["values"]["count"]) == served["requests"]
    assert tl["bucketS"] == 0.2 and all(round(b - a, 6) == 0.2 for a, b in zip(tl["t"], tl["t"][1:]))
    assert max(v for v in tl["vus"] if v is not None) == 10
    assert [w for w in tl["workers"]["names"]] == [w["name"] for w in workers]


def test_an_impossible_threshold_exits_99(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge(
        "run", "-w", "2", "-q", "--no-summary", "--summary-export", str(export), *target_env(target),
        "-e", "P95=p(95)<0.001", "-e", "HOLD=1s", str(FIXTURES / "quick_purchase.py"),
    )
    assert res.returncode == 99, res.stderr
    assert "thresholds have been crossed" in res.stderr
    assert "TOTAL RESULTS" not in res.stdout  # --no-summary: no text, but the export is written
    data = _summary(export)
    assert data["metrics"]["http_req_duration{scenario:purchase}"]["thresholds"] == {"p(95)<0.001": {"ok": False}}
    assert data["metrics"]["http_reqs"]["values"]["count"] == target.stats()["requests"]


def test_malformed_options_exit_104_listing_every_problem_before_any_request(target: Target) -> None:
    res = run_surge("run", "-w", "1", *target_env(target), str(FIXTURES / "malformed.py"))
    assert res.returncode == 104, res.stderr
    err = res.stderr
    assert "malformed.py" in err
    assert "ramping-vu" in err and "ramping-vus" in err  # the executor, with a suggestion
    assert "stages[0].duration" in err
    assert "p95<500" in err and "p(95)" in err
    assert "htp_req_failed" in err and "http_req_failed" in err
    assert "avg" in err
    assert target.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("syntax_error.py", "syntax_error.py:4"), ("no_default.py", "no function 'default'")],
)
def test_script_errors_exit_107_naming_the_file(target: Target, fixture: str, expected: str) -> None:
    res = run_surge("run", "-w", "1", *target_env(target), str(FIXTURES / fixture))
    assert res.returncode == 107, res.stderr
    assert expected in res.stderr
    assert target.stats()["requests"] == 0


def test_a_failing_target_is_counted_not_a_crash(error_target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge(
        "run", "-w", "2", "-q", "--summary-export", str(export), *target_env(error_target),
        "-e", "DEAD_URL=http://127.0.0.1:9", str(FIXTURES / "failing_target.py"),
    )
    assert res.returncode == 99, res.stderr
    m = _summary(export)["metrics"]
    served = error_target.stats()
    assert served["by_status"] == {"500": served["requests"]}
    failed = m["http_req_failed"]["values"]
    assert failed["fails"] == 0  # every single request failed
    assert failed["passes"] == m["http_reqs"]["values"]["count"] > served["requests"]  # refused ones too
    checks = {c["name"]: c for c in _summary(export)["root_group"]["checks"]}
    assert checks["refused is status 0"]["fails"] == 0 and checks["refused is status 0"]["passes"] > 0
    assert checks["is 500"]["passes"] == served["requests"]
    # failures over time by kind: the target's 500s and the refused connections (status 0)
    series = _summary(export)["timeline"]["series"]
    kinds = {k: sum(v["values"]["count"]) for k, v in series.items() if k.startswith("surge_http_failures")}
    assert kinds["surge_http_failures{status:500,error_code:1500}"] == served["requests"]
    assert sum(kinds.values()) == failed["passes"]
    assert any(k.startswith("surge_http_failures{status:0,") for k in kinds)
    assert not any(k.startswith("surge_http_failures") for k in m)  # surge's own: not in the summary


def test_abort_on_fail_stops_the_run_early(error_target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "--summary-export", str(export), *target_env(error_target),
                    str(FIXTURES / "abort_on_fail.py"))
    assert res.returncode == 99, res.stderr
    assert "abortOnFail" in res.stderr
    data = _summary(export)
    assert data["state"]["testRunDurationMs"] < 60_000
    assert data["metrics"]["http_reqs"]["values"]["count"] == error_target.stats()["requests"]


def test_two_scenarios_get_fleet_unique_vu_ids(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "-q", "--summary-export", str(export), "--summary-mode", "full",
                    "--summary-time-unit", "us", *target_env(target), str(FIXTURES / "two_scenarios.py"))
    assert res.returncode == 0, res.stderr
    m = _summary(export)["metrics"]
    assert m["http_reqs{scenario:ramp}"]["values"]["count"] + m["http_reqs{scenario:steady}"]["values"]["count"] \
        == m["http_reqs"]["values"]["count"] == target.stats()["requests"]
    assert m["vus_max"]["values"]["value"] == 5 + 3
    # broken down per scenario over time, though no threshold names iterations{scenario:...}
    data = _summary(export)
    series = data["timeline"]["series"]
    for name in ("ramp", "steady"):
        assert sum(series[f"http_reqs{{scenario:{name}}}"]["values"]["count"]) == m[f"http_reqs{{scenario:{name}}}"]["values"]["count"]
        assert f"iterations{{scenario:{name}}}" in series and f"iterations{{scenario:{name}}}" not in m
    # --summary-mode full: a section per scenario, with the session's own per-scenario series
    for name in ("ramp", "steady"):
        scenario = res.stdout.split(f"  █ SCENARIO: {name}\n", 1)[1].split("  █ ", 1)[0]
        count = m[f"http_reqs{{scenario:{name}}}"]["values"]["count"]
        assert re.search(rf"\n    http_reqs\.+: {count} ", scenario), scenario
        assert re.search(r"\n    iterations\.+: \d+ ", scenario), scenario
    assert "http_req_duration...: avg=" in res.stdout and re.search(r"med=\d+\.\d\dµs", res.stdout)  # --summary-time-unit us


def test_sigint_stops_the_run_reports_and_exits_105(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    proc = subprocess.Popen(
        surge_cmd("run", "-w", "2", "--summary-export", str(export), *target_env(target), str(FIXTURES / "long_running.py")),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while target.stats()["requests"] < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 105, err
    assert "http_reqs" in out  # the summary is still printed
    data = _summary(export)
    # requests cut short by the stop were already on the wire: counted on both sides
    assert data["metrics"]["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0


def test_abort_test_from_the_scenario_stops_every_worker_and_exits_108(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "--summary-export", str(export), *target_env(target),
                    str(FIXTURES / "abort_test.py"))
    assert res.returncode == 108, res.stderr
    assert "sold out" in res.stderr
    data = _summary(export)
    assert data["state"]["testRunDurationMs"] < 60_000
    assert data["metrics"]["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0


def test_the_aiohttp_transport_is_selectable_and_counts_exactly(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "-q", "--http-transport", "aiohttp", "--summary-export", str(export),
                    *target_env(target), "-e", "HOLD=1s", str(FIXTURES / "quick_purchase.py"))
    assert res.returncode == 0, res.stderr
    m = _summary(export)["metrics"]
    assert m["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0
    assert m["checks"]["values"]["fails"] == 0


def test_k6s_http_options_travel_to_the_workers(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "-q", "--summary-export", str(export), *target_env(target),
                    str(FIXTURES / "http_options.py"))
    assert res.returncode == 0, res.stderr + res.stdout
    m = _summary(export)["metrics"]
    # 2 VUs x 3 iterations x a batch of 2, every one through the hosts entry
    assert m["http_reqs"]["values"]["count"] == target.stats()["requests"] == target.stats()["by_status"]["200"] == 12
    assert m["checks"]["values"]["fails"] == 0


def test_a_data_file_opened_at_init_travels_to_the_workers(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "-q", "--summary-export", str(export), *target_env(target),
                    "-e", "HOLD=1s", str(FIXTURES / "open_data.py"))
    assert res.returncode == 0, res.stderr
    m = _summary(export)["metrics"]
    assert m["http_reqs"]["values"]["count"] == target.stats()["requests"] == target.stats()["by_status"]["200"] > 0
    assert m["checks"]["values"]["fails"] == 0


def test_an_exception_in_an_imported_helper_exits_107_with_the_scenarios_frames(target: Target) -> None:
    # run from the scenario's root, as CI does from the repository: importlib's frames used to
    # pass for the scenario's there, since "<frozen ...>" resolves against the cwd
    res = subprocess.run(
        surge_cmd("run", "-w", "1", *target_env(target), "import_error.py"), capture_output=True, text=True,
        timeout=120, cwd=FIXTURES, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 107, res.stderr
    err = res.stderr
    assert "<frozen" not in err
    assert f"{FIXTURES / 'fixture_helpers' / 'broken.py'}:5: ZeroDivisionError while loading the scenario" in err
    assert "from fixture_helpers.broken import PRICES" in err and "PRICES = load_prices()" in err
    assert 'return {"general": 10 / 0}' in err
    assert target.stats()["requests"] == 0


def test_local_workers_do_not_outlive_a_coordinator_killed_outright(target: Target) -> None:
    # Killed (SIGKILL: no cleanup) at once, before its workers have joined: nothing tells them
    # the run is off, and a --once worker that never joined waits for its coordinator.
    proc = subprocess.Popen(surge_cmd("run", "-w", "2", "-q", *target_env(target), str(FIXTURES / "long_running.py")),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "surge run started no workers"
            time.sleep(0.02)
            workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while alive := [pid for pid in workers if _running(pid)]:
            if time.monotonic() > deadline:
                for pid in alive:
                    os.kill(pid, signal.SIGKILL)
                pytest.fail(f"workers {alive} outlived their killed coordinator")
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

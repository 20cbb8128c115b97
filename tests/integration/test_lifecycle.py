"""A worker obeys whatever its scenario does and whatever phase the run is in (real processes).

Scenarios that never await, that block the event loop, that take seconds to import; workers
that arrive early, late, during a run, or where nobody listens; Ctrl-C while gathering; bad
bind addresses; a coordinator killed with SIGKILL. In each case the load stops when it must,
nothing is sent when it must not be, and the user is told in words what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FIXTURES,
    Target,
    free_port,
    run_surge,
    start,
    stop,
    target_env,
    wait_for_bind,
    wait_for_line,
    wait_for_requests,
    wait_until_quiet,
)

pytestmark = pytest.mark.integration


def _metrics(path: Path) -> dict:  # type: ignore[type-arg]
    data: dict = json.loads(path.read_text())["metrics"]  # type: ignore[type-arg]
    return data


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- scenarios that never await


@pytest.mark.parametrize("fixture", ["empty_default.py", "raises_at_once.py", "no_scheme.py"])
def test_an_iteration_that_never_awaits_iterates_and_the_run_ends_on_time(fixture: str, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "1", "-q", "--summary-export", str(export), str(FIXTURES / fixture), timeout=60)
    assert res.returncode == 0, res.stderr
    m = _metrics(export)
    assert m["iterations"]["values"]["count"] > 100  # as fast as it can, as in k6
    if fixture == "no_scheme.py":  # refused before it was sent: counted, and failed
        assert m["http_reqs"]["values"]["count"] == m["iterations"]["values"]["count"]
        assert m["http_req_failed"]["values"]["rate"] == 1.0
    if fixture == "raises_at_once.py":
        assert m["surge_script_errors"]["values"]["count"] == m["iterations"]["values"]["count"]


def test_a_long_lived_worker_spinning_an_empty_default_stops_when_its_coordinator_goes(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    worker = start("worker", "--connect", endpoint, "--coordinator-timeout", "2")
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "1", "-e", "DURATION=60s",
                  str(FIXTURES / "empty_default.py"))
    try:
        wait_for_line(coord, "running (", within_s=30)  # the progress line: the run has gone 5 s
        coord.kill()
        coord.communicate()
        wait_for_line(worker, "stopping the load now", within_s=20)
        assert worker.poll() is None, "a long-lived worker survives and waits for the next coordinator"
        before = _cpu_s(worker.pid)
        time.sleep(1.0)
        assert _cpu_s(worker.pid) - before < 0.5, "the worker still spins"
    finally:
        stop(coord, worker)


# --------------------------------------------------------------------------- scenarios that block the loop


def test_scenario_code_that_blocks_the_loop_is_named_as_the_cause(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "1", "-q", "--summary-export", str(export), *target_env(target),
                    str(FIXTURES / "blocking.py"), timeout=90)
    assert res.returncode == 0, res.stderr
    assert "event loop has not run" in res.stderr
    assert "blocking.py:19 in default" in res.stderr  # the line with time.sleep
    assert _metrics(export)["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0


def test_a_wedged_worker_ends_itself_when_its_coordinator_is_gone(target: Target) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    worker = start("worker", "--connect", endpoint, "--coordinator-timeout", "2")
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "1", "-q", *target_env(target),
                  "-e", "BLOCK_S=60", "-e", "DURATION=60s", str(FIXTURES / "blocking.py"))
    try:
        wait_for_requests(target, 1)
        coord.kill()
        coord.communicate()
        # its loop is held by time.sleep(60): only the link's own thread can end the load
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 120, err
        assert "exiting so that no load is left running" in err
        assert "blocking.py:19 in default" in err
        wait_until_quiet(target, quiet_s=1.0, within_s=10.0)
    finally:
        stop(coord, worker)


# --------------------------------------------------------------------------- heartbeats in every phase


def test_a_once_worker_waits_for_a_late_peer(target: Target, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "-q", "--summary-export", str(export),
                  *target_env(target), "-e", "HOLD=1s", str(FIXTURES / "quick_purchase.py"))
    early = late = None
    try:
        wait_for_bind(coord, endpoint)
        early = start("worker", "--connect", endpoint, "--once", "--coordinator-timeout", "2", "--name", "early")
        time.sleep(4.0)  # twice the early worker's coordinator timeout, while the coordinator gathers
        assert early.poll() is None, early.communicate()[1]
        late = start("worker", "--connect", endpoint, "--once", "--name", "late")
        _, err = coord.communicate(timeout=90)
        assert coord.returncode == 0, err
        assert _metrics(export)["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0
    finally:
        stop(coord, *(p for p in (early, late) if p is not None))


def test_a_slow_import_on_the_workers_loses_nobody_and_vu_env_is_each_machines_own(
    target: Target, tmp_path: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "-q", "--summary-export", str(export),
                  *target_env(target), "-e", "FROM_CLI=yes", str(FIXTURES / "slow_import.py"),
                  env={"SURGE_TEST_COORDINATOR_SECRET": "hunter2"})
    workers: list[subprocess.Popen[str]] = []
    try:
        wait_for_bind(coord, endpoint)
        # 6 s of import on each worker: longer than either side's 5 s silence timeout
        worker_env = {"SURGE_TEST_SLOW_IMPORT": "6", "SURGE_TEST_WORKER_ENV": "here"}
        workers = [start("worker", "--connect", endpoint, "--once", "--name", f"w{i}", env=worker_env) for i in range(2)]
        _, err = coord.communicate(timeout=90)
        assert coord.returncode == 0, err
        m = _metrics(export)
        assert m["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0
        # every VU saw its own machine's environment and the -e pair, never the coordinator's secret
        assert m["checks"]["values"]["passes"] > 0 and m["checks"]["values"]["fails"] == 0
    finally:
        stop(coord, *workers)


# --------------------------------------------------------------------------- worker lifecycle


def test_a_worker_that_arrives_during_a_run_waits_for_the_next(target: Target) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    first = start("worker", "--connect", endpoint, "--name", "first")
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "1", "-q", *target_env(target),
                  str(FIXTURES / "long_running.py"))
    latecomer = None
    try:
        wait_for_requests(target, 10)
        latecomer = start("worker", "--connect", endpoint, "--name", "latecomer")
        wait_for_line(latecomer, "waiting for its next run", within_s=20)
        assert latecomer.poll() is None, "a latecomer waits; under honcho its leaving would stop every process"
        coord.send_signal(signal.SIGINT)
        coord.communicate(timeout=60)
        assert coord.returncode == 105
        time.sleep(1.0)
        assert latecomer.poll() is None and first.poll() is None
    finally:
        stop(coord, first, *([latecomer] if latecomer else []))


def test_a_worker_with_nobody_to_talk_to_says_where_it_waits() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    worker = start("worker", "--connect", endpoint)
    try:
        wait_for_line(worker, f"waiting for the coordinator at {endpoint}", within_s=15)
    finally:
        stop(worker)


def test_ctrl_c_while_gathering_ends_the_run_with_nothing_sent(target: Target) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", *target_env(target),
                  str(FIXTURES / "quick_purchase.py"))
    worker = None
    try:
        wait_for_bind(coord, endpoint)
        worker = start("worker", "--connect", endpoint, "--name", "stays")
        wait_for_line(coord, "(1 of 2)")  # the one worker has joined
        coord.send_signal(signal.SIGINT)
        _, err = coord.communicate(timeout=20)
        assert coord.returncode == 105, err
        assert "no load was sent" in err
        time.sleep(1.0)
        assert worker.poll() is None, "a long-lived worker waits for the next run, whoever was interrupted"
        assert target.stats()["requests"] == 0
    finally:
        stop(coord, *([worker] if worker else []))


def test_bind_errors_are_one_line(target: Target) -> None:
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    first = start("coordinator", "--bind", endpoint, "--expect-workers", "1", "--wait", "30s", *target_env(target),
                  str(FIXTURES / "tiny.py"))
    try:
        wait_for_bind(first, endpoint)
        busy = run_surge("coordinator", "--bind", endpoint, "--expect-workers", "1", str(FIXTURES / "tiny.py"))
        assert busy.returncode == 104, busy.stderr
        assert f"cannot listen on {endpoint}: Address already in use" in busy.stderr
        assert "Traceback" not in busy.stderr and len(busy.stderr.strip().splitlines()) <= 2
        bad = run_surge("coordinator", "--bind", "tcp://127.0.0.1:99999", "--expect-workers", "1", str(FIXTURES / "tiny.py"))
        assert bad.returncode == 2, bad.stderr
        assert "port '99999' is not a number in 1..65535" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        stop(first)


def _orphan_targets() -> list[int]:
    """Demo targets left without their parent (reparented), started by this test run's surge."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"target" in cmd and b"--parent-pid" in cmd and ppid == 1:
            pids.append(int(proc.name))
    return pids


def test_the_demo_target_dies_with_its_coordinator_even_on_sigkill() -> None:
    coord = start("run", "-w", "1", "--demo-target", str(FIXTURES / "long_running.py"))
    try:
        lines = wait_for_line(coord, "demo target listening on ", within_s=30)
        url = lines[-1].split("demo target listening on ", 1)[1].strip()
        deadline = time.monotonic() + 30
        while json.loads(urllib.request.urlopen(url + "/__surge/stats", timeout=5).read())["requests"] < 5:
            assert time.monotonic() < deadline, "the load never started"
            time.sleep(0.1)
        coord.kill()  # SIGKILL: no cleanup of its own runs
        coord.communicate()
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url + "/__surge/stats", timeout=1).read()
            except (urllib.error.URLError, OSError):
                break
            assert time.monotonic() < deadline, "the demo target outlived its coordinator"
            time.sleep(0.2)
    finally:
        for pid in _orphan_targets():  # first: an orphan holds the coordinator's stderr open
            os.kill(pid, signal.SIGKILL)
        stop(coord)

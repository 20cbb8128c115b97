"""Coordinator and workers as separate processes, and what happens when one of them dies."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FIXTURES,
    REPO,
    Target,
    free_port as _free_port,
    start as _start,
    stop as _stop,
    surge_cmd,
    target_env,
    wait_for_bind as _wait_for_bind,
    wait_for_requests as _wait_for_requests,
    wait_until_quiet as _wait_until_quiet,
)

pytestmark = pytest.mark.integration












def test_coordinator_with_separate_long_lived_workers(target: Target, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    export = tmp_path / "s.json"
    workers = [_start("worker", "--connect", endpoint, "--name", f"w{i}") for i in range(2)]
    coord = _start("coordinator", "--bind", endpoint, "--expect-workers", "2", "-q", "--summary-export", str(export),
                   *target_env(target), "-e", "HOLD=1s", str(FIXTURES / "quick_purchase.py"))
    try:
        out, err = coord.communicate(timeout=120)
        assert coord.returncode == 0, err
        data = json.loads(export.read_text())
        assert data["metrics"]["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0
        time.sleep(0.5)
        assert all(w.poll() is None for w in workers), "long-lived workers wait for the next run"
    finally:
        _stop(coord, *workers)


def test_a_lost_worker_ends_the_run_with_exit_120(target: Target, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    export = tmp_path / "s.json"
    workers = [_start("worker", "--connect", endpoint, "--name", f"w{i}") for i in range(2)]
    coord = _start("coordinator", "--bind", endpoint, "--expect-workers", "2", "--summary-export", str(export),
                   *target_env(target), str(FIXTURES / "long_running.py"))
    try:
        _wait_for_requests(target, 20)
        workers[0].kill()
        out, err = coord.communicate(timeout=60)
        assert coord.returncode == 120, err
        assert "silent" in err
        # the last word: which worker, when, and what of its data the summary holds
        last = err.strip().splitlines()[-1]
        assert last.startswith("surge: error: worker w0 was lost ") and "into the run (silent for 5s)" in last, last
        assert "kept: its " in last and "requests)" in last
        assert json.loads(export.read_text())["metrics"]["http_reqs"]["values"]["count"] > 0
    finally:
        _stop(coord, *workers)


def test_a_worker_that_loses_its_coordinator_stops_its_load(target: Target) -> None:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    worker = _start("worker", "--connect", endpoint, "--coordinator-timeout", "2")
    coord = _start("coordinator", "--bind", endpoint, "--expect-workers", "1", "-q",
                   *target_env(target), str(FIXTURES / "long_running.py"))
    try:
        _wait_for_requests(target, 20)
        coord.kill()
        coord.communicate()
        # the 60 s scenario stops within the 2 s timeout plus a heartbeat, not after 60 s
        _wait_until_quiet(target, quiet_s=2.0, within_s=20.0)
        assert worker.poll() is None, "a long-lived worker survives and waits for a coordinator"
        worker.kill()
        _, err = worker.communicate(timeout=30)
        assert "stopping the load now" in err
    finally:
        _stop(coord, worker)




def test_a_worker_elsewhere_reads_the_opened_file_from_the_bundle(target: Target, tmp_path: Path) -> None:
    scenario_dir = tmp_path / "scenario"
    scenario_dir.mkdir()
    shutil.copy(FIXTURES / "open_data.py", scenario_dir)
    shutil.copytree(FIXTURES / "data", scenario_dir / "data")
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    export = tmp_path / "s.json"
    coord = _start("coordinator", "--bind", endpoint, "--expect-workers", "1", "-q", "--summary-export", str(export),
                   *target_env(target), "-e", "HOLD=1s", str(scenario_dir / "open_data.py"))
    worker = None
    try:
        _wait_for_bind(coord, endpoint)
        # the coordinator has read the CSV; now no copy is left on disk but the bundle's
        shutil.rmtree(scenario_dir)
        worker = subprocess.Popen(
            surge_cmd("worker", "--connect", endpoint, "--once"), cwd=elsewhere, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        out, err = coord.communicate(timeout=120)
        assert coord.returncode == 0, err
        data = json.loads(export.read_text())
        assert data["metrics"]["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0
        assert data["metrics"]["checks"]["values"]["fails"] == 0
        assert worker.wait(timeout=30) == 0
    finally:
        _stop(coord, *([worker] if worker else []))

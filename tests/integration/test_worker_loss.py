"""--on-worker-loss: a worker killed mid-run, and what the fleet does about it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FIXTURES,
    Target,
    free_port,
    start,
    stop,
    target_env,
    wait_for_requests,
)

pytestmark = pytest.mark.integration


def test_continue_hands_a_killed_workers_remaining_shared_iterations_to_the_survivor(target: Target, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    workers = [start("worker", "--connect", endpoint, "--name", f"w{i}", "--coordinator-timeout", "2") for i in range(2)]
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "--summary-export", str(export),
                  "--on-worker-loss", "continue", "--worker-timeout", "2s", *target_env(target),
                  str(FIXTURES / "shared_takeover.py"))
    try:
        wait_for_requests(target, 12)
        workers[0].kill()
        out, err = coord.communicate(timeout=90)
        assert coord.returncode == 0, err  # judged by its thresholds (it has none), not failed by the loss
        data = json.loads(export.read_text())
        # Exactly what the scenario asked, whatever w0 had done when it died: the survivor ran
        # what w0 had not reported done.
        assert data["metrics"]["iterations"]["values"]["count"] == 80, err
        assert data["metrics"]["http_reqs"]["values"]["count"] == 80
        (lost,) = data["state"]["lostWorkers"]
        assert lost["name"] == "w0" and lost["handedOver"] is True and lost["atSeconds"] > 0
        assert "its share goes to w1" in err
        last = err.strip().splitlines()[-1]
        assert last.startswith("surge: warning: worker w0 was lost ") and "took over its share" in last, last
        # the target saw those 80 and whatever w0 sent but never reported
        assert target.stats()["requests"] >= 80
    finally:
        stop(coord, *workers)


def test_fail_is_the_default_and_a_lost_worker_still_ends_the_run_with_exit_120(target: Target, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    workers = [start("worker", "--connect", endpoint, "--name", f"w{i}", "--coordinator-timeout", "2") for i in range(2)]
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "--summary-export", str(export),
                  "--worker-timeout", "2s", *target_env(target), str(FIXTURES / "shared_takeover.py"))
    try:
        wait_for_requests(target, 12)
        workers[0].kill()
        out, err = coord.communicate(timeout=90)
        assert coord.returncode == 120, err
        data = json.loads(export.read_text())
        assert data["metrics"]["iterations"]["values"]["count"] < 80
        (lost,) = data["state"]["lostWorkers"]
        assert lost["handedOver"] is False
        assert err.strip().splitlines()[-1].startswith("surge: error: worker w0 was lost ")
    finally:
        stop(coord, *workers)

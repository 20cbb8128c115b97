"""--on-worker-loss: a worker killed mid-run, and what the fleet does about it."""

from __future__ import annotations

import collections
import http.server
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import (
    FIXTURES,
    Target,
    free_port,
    start,
    stop,
    target_env,
    wait_for_line,
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
        assert "worker w0's share from " in err and "goes to w1" in err
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


class _PerWorker(http.server.BaseHTTPRequestHandler):
    counts: collections.Counter[str] = collections.Counter()
    last_sent: dict[str, float] = {}  # worker -> the latest X-Sent-At among its requests

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        worker = self.headers.get("X-Surge-Worker", "?")
        _PerWorker.counts[worker] += 1
        sent = float(self.headers.get("X-Sent-At", "0"))
        _PerWorker.last_sent[worker] = max(sent, _PerWorker.last_sent.get(worker, 0.0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


def test_a_worker_declared_lost_that_comes_back_sends_no_more_load(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PerWorker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    counts = _PerWorker.counts
    counts.clear()
    _PerWorker.last_sent.clear()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    workers = [start("worker", "--connect", endpoint, "--name", f"w{i}", "--coordinator-timeout", "2") for i in range(2)]
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "--on-worker-loss", "continue",
                  "--worker-timeout", "2s", "-e", f"BASE_URL=http://127.0.0.1:{server.server_address[1]}",
                  str(FIXTURES / "tagged_by_worker.py"))
    w0 = str(workers[0].pid)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (counts[w0] > 20 and counts[str(workers[1].pid)] > 20):
            time.sleep(0.05)
        os.kill(workers[0].pid, signal.SIGSTOP)  # frozen: silent, as a machine behind a dead link
        wait_for_line(coord, "worker w0 was lost", within_s=30)
        resumed = time.monotonic()
        os.kill(workers[0].pid, signal.SIGCONT)  # back, with its VUs' timers all due at once
        time.sleep(3.0)
        # By when each request was sent (this host's clock, stamped by the VU), not by when this
        # threaded server got to it: on a busy machine it may count requests seconds late.
        assert counts[w0] > 0 and _PerWorker.last_sent[w0] < resumed, (
            f"a worker declared lost sent a request {_PerWorker.last_sent[w0] - resumed:.3f}s after it came back"
        )
        out, err = coord.communicate(timeout=60)
        assert coord.returncode == 0, err
        assert counts[str(workers[1].pid)] > 0
    finally:
        os.kill(workers[0].pid, signal.SIGCONT)
        stop(coord, *workers)
        server.shutdown()
        server.server_close()


def test_continue_spreads_a_lost_machines_share_over_the_processes_of_the_others(target: Target, tmp_path: Path) -> None:
    # Two machines of two processes each: the lost machine's four-way share goes to the two
    # processes of the other (Takeover slices carry their member), and the total stays exact.
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    machines = [start("worker", "--connect", endpoint, "--name", f"m{i}", "--processes", "2",
                      "--coordinator-timeout", "2") for i in range(2)]
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "--summary-export", str(export),
                  "--on-worker-loss", "continue", "--worker-timeout", "2s", *target_env(target),
                  str(FIXTURES / "shared_takeover.py"))
    try:
        wait_for_requests(target, 12)
        machines[0].kill()  # its processes follow their relay within half a second
        out, err = coord.communicate(timeout=90)
        assert coord.returncode == 0, err
        data = json.loads(export.read_text())
        assert data["metrics"]["iterations"]["values"]["count"] == 80, err
        (lost,) = data["state"]["lostWorkers"]
        assert lost["name"] == "m0" and lost["handedOver"] is True
    finally:
        stop(coord, *machines)
    _, merr = machines[1].communicate(timeout=30)
    assert merr.count("taking over") == 2, merr  # both of m1's processes took a part


def test_a_share_handed_to_a_process_whose_own_run_is_over_goes_to_one_still_playing(
    target: Target, tmp_path: Path
) -> None:
    # 3 VUs over 4 processes: m1's process without a VU finished at Start. m0's share, handed
    # to m1's two processes, must all be played (by the one still playing), not half dropped.
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    machines = [start("worker", "--connect", endpoint, "--name", f"m{i}", "--processes", "2",
                      "--coordinator-timeout", "2") for i in range(2)]
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "--summary-export", str(export),
                  "--on-worker-loss", "continue", "--worker-timeout", "2s", *target_env(target),
                  str(FIXTURES / "shared_three_vus.py"))
    try:
        wait_for_requests(target, 9)
        machines[0].kill()
        out, err = coord.communicate(timeout=90)
        assert coord.returncode == 0, err
        data = json.loads(export.read_text())
        assert data["metrics"]["iterations"]["values"]["count"] == 60, err
        assert data["state"]["lostWorkers"][0]["handedOver"] is True
    finally:
        stop(coord, *machines)

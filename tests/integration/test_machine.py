"""One `surge worker --processes N` per load machine: N processes, one member, one report per interval."""

from __future__ import annotations

import json
import os
import signal
import time
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
    wait_for_line,
    wait_for_requests,
    wait_until_quiet,
)

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return sorted(out)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_children(pid: int, n: int, within_s: float = 30) -> list[int]:
    deadline = time.monotonic() + within_s
    while len(kids := _children(pid)) != n:
        assert time.monotonic() < deadline, f"{pid} has children {kids}, expected {n}"
        time.sleep(0.1)
    return kids


def test_one_machine_of_two_processes_is_one_member_and_counts_every_request(target: Target, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    machine = start("worker", "--connect", endpoint, "--processes", "2", "--once", "--name", "m1")
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "1", "--summary-export", str(export),
                  "--report-interval", "500ms", *target_env(target), "-e", "HOLD=1s", "-e", "VUS=4",
                  str(FIXTURES / "quick_purchase.py"))
    try:
        out, err = coord.communicate(timeout=120)
        assert coord.returncode == 0, err
        assert machine.wait(timeout=30) == 0
        data = json.loads(export.read_text())
        assert data["metrics"]["http_reqs"]["values"]["count"] == target.stats()["requests"] > 0
        assert data["metrics"]["vus_max"]["values"]["value"] == 4  # each process's 2, summed
        # one member, of two processes: what the coordinator heard from, and planned for
        assert err.count(" joined from ") == 1 and "worker m1 joined from 127.0.0.1 with 2 processes (1 of 1)" in err
        assert "1 worker(s) (2 processes)" in err
        assert "lostWorkers" not in data["state"]
        # the machine's timeline: every request in one 500 ms point, none lost in the relay
        tl = data["timeline"]
        assert tl["bucketS"] == 0.5 and sum(tl["series"]["http_reqs"]["values"]["count"]) == target.stats()["requests"]
    finally:
        stop(coord, machine)


def test_a_process_killed_mid_run_ends_the_run_with_exit_120_naming_the_machine(target: Target) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    machine = start("worker", "--connect", endpoint, "--processes", "2", "--once", "--name", "m1")
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "1", *target_env(target),
                  str(FIXTURES / "long_running.py"))
    try:
        kids = _wait_children(machine.pid, 2)
        wait_for_requests(target, 20)
        os.kill(kids[1], signal.SIGKILL)
        _, err = coord.communicate(timeout=60)
        assert coord.returncode == 120, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("surge: error: worker m1 was lost "), last
        assert machine.wait(timeout=30) == 120
        assert not _alive(kids[0]), "the machine's other process stopped with it"
        wait_until_quiet(target, quiet_s=1.0, within_s=10)
        _, machine_err = machine.communicate()
        assert "process 1 (pid" in machine_err and "count this machine as lost" in machine_err
    finally:
        stop(coord, machine)


def test_processes_auto_starts_one_per_cpu_this_process_may_use() -> None:
    cpus = len(os.sched_getaffinity(0))
    if cpus < 2:
        pytest.skip("one CPU: --processes auto is a single agent")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    machine = start("worker", "--connect", endpoint, "--processes", "auto")
    try:
        _wait_children(machine.pid, cpus)
        wait_for_line(machine, f"{cpus} processes ready")
    finally:
        stop(machine)


def test_the_machine_s_processes_never_outlive_it() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    relay = start("worker", "--connect", endpoint, "--processes", "2")
    killed = start("worker", "--connect", endpoint, "--processes", "2")
    try:
        wait_for_line(relay, "2 processes ready")
        wait_for_line(killed, "2 processes ready")
        in_order, orphaned = _children(relay.pid), _children(killed.pid)
        relay.send_signal(signal.SIGTERM)  # stops its processes in order
        killed.kill()  # no cleanup at all: its processes see their parent gone
        assert relay.wait(timeout=30) == 105
        deadline = time.monotonic() + 10
        while any(map(_alive, in_order + orphaned)):
            assert time.monotonic() < deadline, "a machine's process outlived its relay"
            time.sleep(0.1)
    finally:
        stop(relay, killed)


@pytest.mark.parametrize("value", ["0", "lots", "1025"])
def test_processes_must_be_a_positive_count_or_auto(value: str) -> None:
    done = run_surge("worker", "--connect", "tcp://127.0.0.1:5557", "--processes", value, timeout=60)
    assert done.returncode == 2
    assert "--processes" in done.stderr and "'auto'" in done.stderr

"""Fixtures for end-to-end tests: a demo target process and a way to run the surge command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from surge.coordinator.local import DemoTarget

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
REPO = Path(__file__).resolve().parents[2]
ANON_KEY = "surge-demo-anon-key"


class Target:
    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/__surge/stats", timeout=5) as resp:
            data: dict[str, int] = json.loads(resp.read())
            return data


def _start_target(args: list[str]) -> tuple[DemoTarget, Target]:
    import asyncio

    t = DemoTarget(args)
    url = asyncio.run(t.start())
    return t, Target(url)


@pytest.fixture
def target() -> Iterator[Target]:
    proc, tgt = _start_target(["--latency-median-ms", "5", "--latency-sigma", "0.3"])
    try:
        yield tgt
    finally:
        proc.stop()


@pytest.fixture
def error_target() -> Iterator[Target]:
    proc, tgt = _start_target(["--latency-median-ms", "2", "--latency-sigma", "0", "--error-rate", "1.0"])
    try:
        yield tgt
    finally:
        proc.stop()


def surge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "surge", *args]


def run_surge(*args: str, timeout: float = 120, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run the surge command to completion (bounded), capturing its output."""
    return subprocess.run(
        surge_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def target_env(t: Target) -> list[str]:
    return ["-e", f"BASE_URL={t.url}", "-e", f"ANON_KEY={ANON_KEY}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start a surge process (its output captured), for a test to drive and stop."""
    return subprocess.Popen(
        surge_cmd(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def stop(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()


def wait_for_requests(target: Target, n: int, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while target.stats()["requests"] < n:
        assert time.monotonic() < deadline, "the load never started"
        time.sleep(0.1)


def wait_until_quiet(target: Target, quiet_s: float, within_s: float) -> float:
    """Seconds until the target's request count stopped moving for ``quiet_s``."""
    begin = time.monotonic()
    last, since = target.stats()["requests"], time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() - begin < within_s, "load is still running"
        time.sleep(0.2)
        now = target.stats()["requests"]
        if now != last:
            last, since = now, time.monotonic()
    return since - begin


def wait_for_bind(coord: subprocess.Popen[str], endpoint: str, within_s: float = 60) -> None:
    """Until the coordinator listens, which it does only after it has loaded the scenario."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    deadline = time.monotonic() + within_s
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if coord.poll() is not None:
                _, err = coord.communicate()
                raise AssertionError(f"the coordinator exited {coord.returncode}: {err}") from None
            assert time.monotonic() < deadline, "the coordinator never listened"
            time.sleep(0.1)


_unread: dict[int, str] = {}  # pid -> stderr text read but not yet looked at


def wait_for_line(proc: subprocess.Popen[str], needle: str, within_s: float = 30) -> list[str]:
    """Read ``proc``'s stderr until a line contains ``needle``; the lines read up to it.

    Reads the raw descriptor (a text wrapper's read-ahead would hide lines from select), and
    keeps what comes after the matching line for the next call.
    """
    import selectors

    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    pending = _unread.pop(proc.pid, "")
    lines: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + within_s
    try:
        while True:
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                lines.append(line + "\n")
                if needle in line:
                    _unread[proc.pid] = pending
                    return lines
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk.decode("utf-8", "replace")
    finally:
        sel.close()
    _unread[proc.pid] = pending
    raise AssertionError(f"no line with {needle!r} within {within_s}s; got:\n{''.join(lines)}{pending}")

"""The live progress of a real run: in a real terminal (tmux), in a CI log, and silenced by -q.

The tmux test starts its own tmux server (``-L`` with a name of its own), runs a short
``surge run --demo-target`` in a 160x50 pane, reads the pane while the run goes and again when
it is over, and stops that server. It skips only where tmux is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import REPO, run_surge

SHORT = ["run", "scenarios/ticket_purchase.py", "--demo-target", "-e", "RAMP_UP=2s", "-e", "HOLD=4s",
         "-e", "RAMP_DOWN=1s", "-e", "TARGET_VUS=10", "-w", "2"]
PLAIN = re.compile(
    r"^surge: running \(\d+s/\d+s\), \d+ VUs, \d+ iterations, \d+ requests, \d+\.\d req/s, p95=\S+, "
    r"\d+ failed \(\d+\.\d\d%\)", re.M,
)


class Tmux:
    def __init__(self) -> None:
        self.server = f"surge-test-{os.getpid()}"

    def __call__(self, *args: str) -> str:
        res = subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=30, check=True)
        return res.stdout

    def pane(self, history: bool = False) -> str:
        return self("capture-pane", "-p", "-J", "-t", "surge", *(["-S", "-"] if history else []))


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: the live progress cannot be tried in a real terminal here")
    t = Tmux()
    try:
        yield t
    finally:
        subprocess.run(["tmux", "-L", t.server, "kill-server"], capture_output=True, timeout=30)


def _wait(tmux: Tmux, done: "re.Pattern[str]", within_s: float, history: bool = False) -> str:
    deadline = time.monotonic() + within_s
    while True:
        text = tmux.pane(history)
        if done.search(text):
            return text
        assert time.monotonic() < deadline, f"never saw {done.pattern!r} in the pane:\n{text}"
        time.sleep(0.2)


def _start(tmux: Tmux, *args: str) -> None:
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "surge", *args])
    # COLUMNS as a shell may leave it, stale: the frames must follow the terminal's real width.
    tmux("new-session", "-d", "-s", "surge", "-x", "160", "-y", "50", "-c", str(REPO),
         f"export COLUMNS=80; {command}; echo SURGE-EXIT=$?; sleep 600")
    tmux("set-option", "-t", "surge", "history-limit", "5000")


def test_a_terminal_shows_the_live_frame_while_the_run_goes_and_only_the_summary_after(tmux: Tmux) -> None:
    _start(tmux, *SHORT)
    mid = _wait(tmux, re.compile(r"purchase .*\d+/10 VUs"), within_s=90)
    assert re.search(r"^running \(0m\d\d\.\ds/0m37\.0s\), \d+ VUs", mid, re.M), mid
    assert re.search(r"^✓ http_req_duration\{scenario:purchase\} +p\(95\)<500 +p\(95\)=\S+ms", mid, re.M), mid
    assert "http_reqs......" not in mid  # the summary is not there yet

    end = _wait(tmux, re.compile(r"SURGE-EXIT=\d+"), within_s=120, history=True)
    assert "SURGE-EXIT=0" in end, end
    lines = end.splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("running (")]
    assert len(frames) == 1, f"each frame was drawn over the last; one should be left:\n{end}"
    assert end.count("thresholds (now):") == 1
    summary = next(i for i, line in enumerate(lines) if "http_reqs......" in line)
    assert frames[0] < summary, "the last frame stays above the summary, not over it"
    assert "\x1b" not in end and "[J" not in end and "[1A" not in end  # no control sequence printed as text
    assert all(len(line) <= 160 for line in lines)
    assert any(len(line) > 100 for line in lines[frames[0]:frames[0] + 2])  # the pane's width, not $COLUMNS


def test_ctrl_c_still_stops_the_run_under_the_live_frame(tmux: Tmux) -> None:
    _start(tmux, *SHORT[:-4], "-e", "HOLD=60s", *SHORT[-4:])
    _wait(tmux, re.compile(r"purchase .*\d+/10 VUs"), within_s=90)
    tmux("send-keys", "-t", "surge", "C-c")
    end = _wait(tmux, re.compile(r"SURGE-EXIT=\d+"), within_s=120, history=True)
    assert "SURGE-EXIT=105" in end, end  # EXTERNAL_ABORT, after the summary
    assert "SIGINT: stopping the run" in end and "http_reqs......" in end
    lines = end.splitlines()
    said = next(i for i, line in enumerate(lines) if "SIGINT: stopping the run" in line)
    assert lines[said - 1].startswith("✓ purchase_errors"), "the frame above the message was left whole"
    assert "\x1b" not in end and "[J" not in end


def test_a_log_gets_plain_progress_lines_and_no_escape_sequences() -> None:
    res = run_surge(*SHORT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert PLAIN.search(res.stderr), res.stderr
    assert "thresholds (now)" not in res.stderr  # no frame: not a terminal
    assert "\x1b" not in res.stderr and "\x1b" not in res.stdout
    assert "http_reqs......" in res.stdout  # the summary stays on stdout


def test_quiet_has_no_progress_of_either_kind() -> None:
    res = run_surge(*SHORT, "-q", timeout=120)
    assert res.returncode == 0, res.stderr
    assert "running (" not in res.stderr and "thresholds (now)" not in res.stderr
    assert "\x1b" not in res.stderr
    assert "http_reqs......" in res.stdout

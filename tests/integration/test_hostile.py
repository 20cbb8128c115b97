"""A real ``surge coordinator`` against peers that are real sockets sending real bytes.

The peer in these tests is a plain ZeroMQ DEALER driven by hand: it speaks the protocol where
the test wants it to, and sends what no surge worker would (a report that does not validate,
a frame of 64 MiB, twenty thousand frames of garbage). The coordinator must refuse each
alone, stay small and quiet, answer no stranger, and finish the run.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from surge.common.metrics import CounterSink
from surge.common.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Hello,
    Message,
    Ready,
    Reject,
    Report,
    Run,
    Start,
    Welcome,
    decode,
    encode,
)
from surge.common.sketch import pack_centroids
from tests.integration.conftest import FIXTURES, free_port, start, stop, wait_for_bind, wait_for_line

pytestmark = pytest.mark.integration


class HandWorker:
    """A DEALER that speaks the protocol by hand (the test decides every frame)."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.frames: list[bytes] = []

    def send(self, msg: Message) -> None:
        self.sock.send(encode(msg))

    def send_raw(self, frame: bytes) -> None:
        self.sock.send(frame)

    def expect(self, kind: type[Any], within_s: float = 30) -> Any:
        """The next message of ``kind`` (heartbeats and others are skipped)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.sock.poll(100):
                frame = self.sock.recv()
                self.frames.append(frame)
                msg = decode(frame)
                if isinstance(msg, kind):
                    return msg
        raise AssertionError(f"no {kind.__name__} within {within_s}s")

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def _report(run_id: str, seq: int, requests: int, *, final: bool = False) -> Report:
    return Report(run_id, seq, float(seq), {"http_reqs": CounterSink(float(requests))}, {}, final)


def _rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_report_that_does_not_validate_is_dropped_alone_and_only_e_pairs_cross_the_wire(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "1", "-q", "--summary-export", str(export),
                  "-e", "FROM_CLI=yes", str(FIXTURES / "tiny.py"), env={"SURGE_TEST_COORDINATOR_SECRET": "hunter2"})
    hand = HandWorker(endpoint)
    try:
        wait_for_bind(coord, endpoint)
        hand.send(Hello("hand", "here", os.getpid()))
        hand.expect(Welcome)
        run: Run = hand.expect(Run)
        # k6's rule: only the -e pairs travel; the coordinator's own environment stays with it
        assert run.env == {"FROM_CLI": "yes"}
        assert b"hunter2" not in hand.frames[-1] and b"SURGE_TEST_COORDINATOR_SECRET" not in hand.frames[-1]
        hand.send(Ready(run.run_id))
        hand.expect(Start)
        hand.send(_report(run.run_id, 1, 5))
        assert hand.expect(Ack).seq == 1
        # seq 2 carries an infinite sum: real msgpack, a real report, one value no sketch can hold
        bad = {"v": PROTOCOL_VERSION, "k": "report", "run_id": run.run_id, "seq": 2, "elapsed_s": 2.0,
               "series": {"latency": ["trend", [1, float("inf"), 1.0, 1.0, pack_centroids([1.0], [1.0])]]}, "checks": {},
               "final": False, "aborted": ""}
        hand.send_raw(msgpack.packb(bad))
        rejected: Reject = hand.expect(Reject)
        assert rejected.seq == 2 and "finite" in rejected.reason
        hand.send(_report(run.run_id, 3, 7, final=True))
        assert hand.expect(Ack).seq == 3
        _, err = coord.communicate(timeout=60)
        assert coord.returncode == 0, err
        data = json.loads(export.read_text())
        assert data["metrics"]["http_reqs"]["values"]["count"] == 12  # 5 + 7: the bad report alone is gone
        assert list(data["state"]["rejectedReports"]) == ["hand"]
        assert "report 2" in data["state"]["rejectedReports"]["hand"][0]
    finally:
        hand.close()
        stop(coord)


def test_huge_and_garbage_frames_cost_neither_memory_nor_logs_and_strangers_get_no_reply(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "1", "--summary-export", str(export),
                  str(FIXTURES / "tiny.py"))
    hostile = HandWorker(endpoint)
    flooder = HandWorker(endpoint)
    worker = None
    try:
        wait_for_bind(coord, endpoint)
        baseline_mb = _rss_peak_mb(coord.pid)
        hostile.send_raw(b"\x00" * (64 * 2**20))  # far past the frame limit: libzmq drops the peer unread
        for i in range(20_000):
            flooder.send_raw(b"\xc1 not msgpack %d" % i)
        time.sleep(3.0)  # let the coordinator read all of it
        assert _rss_peak_mb(coord.pid) - baseline_mb < 40, "a frame past the limit was read into memory"
        assert not flooder.sock.poll(500), "a stranger's garbage got a reply"
        worker = start("worker", "--connect", endpoint, "--once")
        out, err = coord.communicate(timeout=60)
        assert coord.returncode == 0, err
        refusals = [line for line in err.splitlines() if "refused a frame" in line]
        assert 1 <= len(refusals) <= 3, refusals  # one line per peer and window...
        held = [int(m.group(1)) for m in re.finditer(r"(\d+) more refused frame\(s\) from 127\.0\.0\.1", err)]
        counted = [int(m.group(1)) for m in re.finditer(r"\((\d+) more like this", err)]
        assert len(refusals) + sum(held) + sum(counted) == 20_000  # ... and every frame counted
        assert json.loads(export.read_text())["metrics"]["iterations"]["values"]["count"] > 0
    finally:
        hostile.close()
        flooder.close()
        stop(coord, *([worker] if worker else []))


def test_a_worker_without_the_fleets_keys_cannot_join(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = start("keys", str(keys))
    _, err = made.communicate(timeout=30)
    assert made.returncode == 0, err
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    coord = start("coordinator", "--bind", endpoint, "--keys", str(keys / "coordinator"), "--expect-workers", "1",
                  "--summary-export", str(export), str(FIXTURES / "tiny.py"))
    intruder = member = None
    try:
        wait_for_bind(coord, endpoint)
        intruder = start("worker", "--connect", endpoint, "--once", "--name", "intruder")
        wait_for_line(coord, "refused", within_s=20)  # the ZAP handler names the refusal
        wait_for_line(intruder, "waiting for the coordinator", within_s=20)
        member = start("worker", "--connect", endpoint, "--once", "--keys", str(keys / "worker"), "--name", "member")
        _, err = coord.communicate(timeout=60)
        assert coord.returncode == 0, err
        assert "worker member joined" in err and "worker intruder joined" not in err
        assert json.loads(export.read_text())["metrics"]["iterations"]["values"]["count"] > 0
        assert intruder.poll() is None, "the intruder never got a run"
    finally:
        stop(coord, *(p for p in (intruder, member) if p is not None))


def test_a_coordinator_beyond_loopback_needs_keys_or_insecure() -> None:
    port = free_port()
    refused = start("coordinator", "--bind", f"tcp://0.0.0.0:{port}", "--expect-workers", "1", "--wait", "1s",
                    str(FIXTURES / "tiny.py"))
    _, err = refused.communicate(timeout=30)
    assert refused.returncode == 104, err
    assert "without keys" in err and "--insecure" in err and "Traceback" not in err
    told = start("coordinator", "--bind", f"tcp://0.0.0.0:{port}", "--insecure", "--expect-workers", "1", "--wait",
                 "1s", str(FIXTURES / "tiny.py"))
    _, err = told.communicate(timeout=30)
    assert told.returncode == 120, err  # it listened, and nobody came within the second
    assert "only 0 of 1 workers connected" in err

"""One start instant across machines whose clocks differ: a worker on a shifted clock starts with the rest.

Two workers on this host, one of them under libfaketime, whose monotonic clock reads the wall
clock minus 30 minutes: an offset of decades from this host's monotonic clock, as between two
machines booted at different times. Without the offset correction, that worker would take the
coordinator's start instant as long past and start the moment Start reached it, a start lead
(0.25 s) before the others; with it, both first requests reach the target together.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, free_port, start, stop

pytestmark = pytest.mark.integration

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


class _FirstSeen(http.server.BaseHTTPRequestHandler):
    first: dict[str, float] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _FirstSeen.first.setdefault(self.headers.get("X-Surge-Worker", "?"), time.monotonic())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@pytest.mark.skipif(not LIBFAKETIME.exists() or shutil.which("faketime") is None,
                    reason="libfaketime is not installed (Debian package faketime; .ci/run installs it)")
def test_a_worker_whose_clock_is_decades_off_starts_at_the_same_instant(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FirstSeen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FirstSeen.first = {}
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    export = tmp_path / "s.json"
    shifted = {**os.environ, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "-30m"}
    workers = [
        start("worker", "--connect", endpoint, "--name", "plain", "--once"),
        start("worker", "--connect", endpoint, "--name", "shifted", "--once", env=shifted),
    ]
    coord = start("coordinator", "--bind", endpoint, "--expect-workers", "2", "--summary-export", str(export),
                  "-e", f"BASE_URL=http://127.0.0.1:{server.server_address[1]}", str(FIXTURES / "first_requests.py"))
    try:
        _, err = coord.communicate(timeout=60)
        assert coord.returncode == 0, err
        first = _FirstSeen.first
        plain, other = first[str(workers[0].pid)], first[str(workers[1].pid)]
        assert abs(plain - other) < 0.1, f"first requests {abs(plain - other) * 1000:.1f} ms apart"
        clocks = {w["name"]: w for w in json.loads(export.read_text())["state"]["workers"]}
        # the shifted worker's clock reads the wall clock - 30 min; this host's monotonic clock does not
        expected_ms = ((time.time() - 1800) - time.monotonic()) * 1000
        assert abs(clocks["shifted"]["clockOffsetMs"] - expected_ms) < 1000
        assert abs(clocks["plain"]["clockOffsetMs"]) <= clocks["plain"]["roundTripMs"] / 2 + 1e-6
        assert 0 <= clocks["plain"]["roundTripMs"] < 1000
    finally:
        stop(coord, *workers)
        server.shutdown()
        server.server_close()

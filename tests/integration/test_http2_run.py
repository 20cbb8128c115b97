"""``surge run`` of a tiny scenario against a real HTTP/2 server (hypercorn, its own process, TLS).

The workers trust the test's CA through ``SSL_CERT_FILE`` (OpenSSL's default verify paths),
as a user would point them at a private CA; nothing in surge is told about HTTP/2: ALPN picks it.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, REPO, free_port, surge_cmd

pytestmark = pytest.mark.integration
trustme = pytest.importorskip("trustme")
pytest.importorskip("hypercorn")


@pytest.fixture
def h2_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """hypercorn serving tests/fixtures/h2_app.py over TLS on 127.0.0.1; its URL and the CA file.

    ``--workers 0``: one process, the server itself (with workers it spawns children, which a
    kill of the parent would leave behind)."""
    ca = trustme.CA()
    pem, ca_file = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--workers", "0", "--certfile", str(pem), "--keyfile", str(pem),
         "--bind", f"127.0.0.1:{port}", "tests.fixtures.h2_app:app"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "hypercorn never listened"
                time.sleep(0.1)
        yield f"https://127.0.0.1:{port}", ca_file
    finally:
        proc.kill()
        proc.communicate()


def _stats(url: str, ca_file: Path) -> dict[str, int]:
    context = ssl.create_default_context(cafile=str(ca_file))  # urllib speaks HTTP/1.1: not counted as h2
    with urllib.request.urlopen(url + "/__stats", timeout=5, context=context) as resp:
        data: dict[str, int] = json.loads(resp.read())
        return data


def test_surge_run_speaks_http2_to_an_h2_server(h2_server: tuple[str, Path], tmp_path: Path) -> None:
    url, ca_file = h2_server
    export = tmp_path / "summary.json"
    res = subprocess.run(
        surge_cmd("run", "-w", "2", "-q", "--summary-export", str(export), "-e", f"BASE_URL={url}",
                  str(FIXTURES / "http2.py")),
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SSL_CERT_FILE": str(ca_file)},
    )
    assert res.returncode == 0, res.stderr
    metrics = json.loads(export.read_text())["metrics"]
    served = _stats(url, ca_file)
    assert metrics["http_reqs"]["values"]["count"] == served["2"] == 30
    assert "1.1" not in served
    assert metrics["checks"]["values"]["fails"] == 0 and metrics["checks"]["values"]["passes"] == 60
    assert metrics["http_reqs{proto:HTTP/2.0}"]["values"]["count"] == 30  # the recorder's proto tag
    assert served["connections"] == 2  # one per VU: the 2 VUs' 30 requests came as streams on 2 connections

"""The server every tool is pointed at: nginx with a generated config, or surge's demo target.

nginx is the reference server because it is far cheaper per request than any generator
measured here, so on its own core it is never the thing being measured: the figure of merit
is the *generator's* CPU per request, and that does not depend on how fast the server is as
long as the server is not starved. Its config, written to a temporary directory:

* one worker process (pinned with the master to the server core), ``worker_connections``
  high enough for the 10,000-VU memory runs, and ``worker_rlimit_nofile`` to match;
* ``POST /checkout`` answered by ``return 200`` with a small static JSON body. ``return``
  goes through ``ngx_http_send_response``, which reads and discards the request body, so a
  POST with a body keeps its connection alive;
* keep-alive for far longer than any run, ``keepalive_requests`` effectively unbounded (its
  default of 1000 would make every tool reconnect every 1000 requests and measure dialling),
  ``access_log off`` (disk writes would cost the server core for nothing).

Without nginx the bench falls back to ``surge target --latency-median-ms 0`` (lognormal
latency with median 0 is no sleep at all), whose aiohttp server is much slower; the figures
are then marked as such, since a slower server lowers every tool's rate, though CPU per
request stays comparable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import taskset

DEMO_ANON_KEY = "surge-demo-anon-key"
DEMO_PATH = "/functions/v1/create-checkout-session"
NGINX_PATH = "/checkout"
RESPONSE_JSON = '{"url":"https://checkout.stripe.com/c/pay/cs_test_x"}'

# One request, byte for byte the same for every tool: a small order that the demo target's
# validation also accepts, so the same body serves both servers.
BODY = json.dumps(
    {
        "eventId": "evt_bench",
        "ticketTypeId": "tt_general",
        "quantity": 2,
        "email": "bench@example.com",
        "successUrl": "https://example.com/ok",
        "cancelUrl": "https://example.com/cancel",
    },
    separators=(",", ":"),
)
HEADERS = {
    "Content-Type": "application/json",
    "Authorization": f"Bearer {DEMO_ANON_KEY}",
    "apikey": DEMO_ANON_KEY,
}

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 30000;
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 600s;
    keepalive_requests 1000000000;
    server {{
        listen 127.0.0.1:{port} backlog=16384;
        location = {path} {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


@dataclass
class Target:
    """A running server and what a request to it looks like."""

    kind: str  # "nginx" or "surge-demo-target"
    base_url: str
    path: str
    version: str
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.base_url + self.path

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # nginx: fast shutdown; surge target: graceful, nothing in flight
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp is not None:
            self.tmp.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout_s:g}s")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def start_nginx(server_cores: str | None) -> Target:
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx")
    tmp = tempfile.TemporaryDirectory(prefix="surge-bench-nginx-")
    port = free_port()
    conf = Path(tmp.name) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp.name, port=port, path=NGINX_PATH, body=RESPONSE_JSON))
    version = subprocess.run([binary, "-v"], check=False, capture_output=True, text=True).stderr.strip()
    proc = subprocess.Popen(
        [*taskset(server_cores), binary, "-p", tmp.name, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=open(Path(tmp.name) / "stderr.log", "wb"),  # noqa: SIM115 - lives as long as nginx
        start_new_session=True,
    )
    target = Target("nginx", f"http://127.0.0.1:{port}", NGINX_PATH, version.replace("nginx version: ", ""), proc, tmp)
    try:
        _wait_listening(port, proc)
    except RuntimeError as exc:
        err = (Path(tmp.name) / "error.log")
        detail = err.read_text()[-2000:] if err.exists() else ""
        target.stop()
        raise RuntimeError(f"nginx did not start: {exc}\n{detail}") from None
    return target


def start_demo_target(server_cores: str | None) -> Target:
    port = free_port()
    proc = subprocess.Popen(
        [*taskset(server_cores), sys.executable, "-m", "surge", "target", "--host", "127.0.0.1", "--port", str(port),
         "--latency-median-ms", "0", "--latency-sigma", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=tempfile.gettempdir(),  # not the repository: see bench.machine.snapshot_surge
    )
    target = Target("surge-demo-target", f"http://127.0.0.1:{port}", DEMO_PATH, "surge target (aiohttp)", proc)
    _wait_listening(port, proc)
    return target


def start_target(server_cores: str | None, *, prefer: str = "nginx") -> tuple[Target, str]:
    """Start nginx if it is installed, else the demo target; the note says what happened."""
    if prefer == "nginx" and nginx_binary() is not None:
        return start_nginx(server_cores), ""
    note = (
        "nginx is not installed (`apt-get install nginx` on Debian/Ubuntu), so the server is "
        "`surge target --latency-median-ms 0 --latency-sigma 0`, an aiohttp app far slower than nginx: "
        "rates are lower for every tool; CPU per request is still comparable."
    )
    return start_demo_target(server_cores), note

"""Memory per VU: surge's worker and k6 at 1,000 and 10,000 VUs, each VU on its own connection.

Every VU sends a POST and sleeps 1 s, so it holds one keep-alive connection for the whole run
and the load is ~N requests a second. The figure is the peak RSS of the process holding the
VUs (surge: the worker, ``VmHWM``; k6: its one process, ``ru_maxrss``), as a total and per VU;
the *marginal* cost per VU, (RSS at 10k - RSS at 1k) / 9,000, removes the interpreter's and
runtime's fixed footprint and is the number to compare.

That every VU really held its own connection is checked, not assumed: while the run goes the
harness counts ESTABLISHED client sockets to the server's port in ``/proc/net/tcp`` and keeps
the peak. A 10k run that falls short says how many connections it got and how many requests
failed, rather than passing silently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bench import run_k6, run_surge
from bench.common import Context, RunResult


def established_to(port: int) -> int:
    """ESTABLISHED IPv4/IPv6 sockets whose *remote* port is ``port``: the clients' ends."""
    hex_port = f"{port:04X}"
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split(None, 4)
                    # parts[2] is "REMOTEADDR:PORT", parts[3] the state (01 = ESTABLISHED)
                    if parts[3] == "01" and parts[2].endswith(":" + hex_port):
                        n += 1
        except OSError:
            continue
    return n


class ConnCounter:
    """Samples :func:`established_to` at most once a second (a 10k-line table is not free)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.peak = 0
        self._last = 0.0

    def maybe_sample(self) -> None:
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            self.peak = max(self.peak, established_to(self.port))


def _with_conn_count(fn: Callable[[Context, int], RunResult], ctx: Context, counter: ConnCounter) -> RunResult:
    """Run ``fn`` while a background thread counts connections (the main thread polls /proc)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            counter.maybe_sample()
            stop.wait(0.5)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        return fn(ctx, 1)
    finally:
        stop.set()
        t.join()


def run(base: Context, vu_counts: list[int], tools: list[str], duration_s: float,
        say: Callable[[str], None] = print, k6_max_vus: int | None = None,
        close_vu_counts: list[int] | None = None) -> list[dict[str, Any]]:
    """One run per (VU count, tool); k6 only up to ``k6_max_vus`` (at 50,000 VUs it would need ~12 GB).

    ``close_vu_counts``: VU counts run (surge only) with a new connection per request (k6's
    ``noConnectionReuse``), so that a sleeping VU holds no socket: how far one core goes past
    the process's open-file limit, which caps VUs with a connection each (one socket per VU).
    """
    runners: dict[str, Callable[[Context, int], RunResult]] = {"surge": run_surge.run, "k6": run_k6.run}
    rows: list[dict[str, Any]] = []
    cells = [(n, tool, False) for n in vu_counts for tool in tools]
    cells += [(n, "surge", True) for n in close_vu_counts or [] if "surge" in tools]
    for n, tool, close in cells:
        if tool == "k6" and k6_max_vus is not None and n > k6_max_vus:
            continue
        workdir = base.workdir / f"mem_{tool}_{n}{'_close' if close else ''}"
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = replace(base, vus=n, duration_s=duration_s, think_s=1.0, workdir=workdir, no_connection_reuse=close)
        counter = ConnCounter(base.target.port)
        t0 = time.monotonic()
        res = _with_conn_count(runners[tool], ctx, counter)
        row = {
            "tool": tool,
            "vus": n,
            "connection_per_request": close,
            "ok": res.ok,
            "error": res.error,
            "peak_rss_kb": res.peak_rss_kb,
            "kb_per_vu": res.peak_rss_kb / n if res.peak_rss_kb else None,
            "peak_connections": counter.peak,
            "requests": res.requests,
            "failed": res.failed,
            "rps": res.rps,
            "expected_rps": n / 1.0,
            "cpu_s": res.cpu_s,
            "p50_ms": res.p50_ms,
            "p95_ms": res.p95_ms,
            "p99_ms": res.p99_ms,
            "duration_s": res.duration_s,
            "command": res.command,
            "extra": res.extra,
        }
        rows.append(row)
        say(f"  {tool:>5} {n:>6} VUs{' (a connection per request)' if close else ''}: peak RSS {res.peak_rss_kb / 1024:.0f} MB "
            f"({row['kb_per_vu'] or 0:.1f} KB/VU), {counter.peak} connections, {res.requests} requests, "
            f"{res.failed} failed{', ERROR ' + res.error[:200] if res.error else ''} "
            f"({time.monotonic() - t0:.0f}s)")
    return rows


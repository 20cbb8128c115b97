"""wrk: the floor. One thread, N connections, a Lua script that sets POST, body and headers.

wrk is the cheapest HTTP/1.1 generator there is (C, epoll, a pre-built request buffer), so
surge's ratio to it says how far surge is from the cost of the syscalls themselves. Numbers
are parsed from its text output; ``--latency`` adds the distribution, which has p50, p75,
p90 and p99 but no p95.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from bench.common import Context, RunResult, steady_cpu_per_1k
from bench.procs import run_watched, taskset
from bench.target import BODY, HEADERS

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def available() -> str | None:
    return None if shutil.which("wrk") else "wrk is not installed: apt-get install wrk"


def version() -> str:
    if not shutil.which("wrk"):
        return "wrk (not installed)"
    # wrk has no --version; its usage text starts with the version line
    out = subprocess.run(["wrk", "-v"], check=False, capture_output=True, text=True)
    line = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "wrk"
    return line.split(" Copyright")[0].strip()


def _lua() -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = [[{BODY}]]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items()]
    return "\n".join(lines) + "\n"


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse(out: str) -> dict[str, float]:
    """The numbers wrk prints: requests, seconds, non-2xx, socket errors, p50/p99 (ms)."""
    got: dict[str, float] = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        got["requests"] = float(m.group(1))
        got["duration_s"] = _ms(m.group(2) + m.group(3)) / 1000.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    got["non2xx"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    got["socket_errors"] = float(sum(int(x) for x in m.groups())) if m else 0.0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        if m:
            got[f"p{pct}"] = _ms(m.group(1))
    return got


def run(ctx: Context, round_no: int) -> RunResult:
    script = ctx.workdir / "wrk_post.lua"
    script.write_text(_lua())
    argv = [
        *taskset(ctx.gen_cores), "wrk", "-t1", f"-c{ctx.vus}", f"-d{ctx.duration_s:g}s", "--latency",
        "-s", str(script), ctx.target.url,
    ]
    res = RunResult("wrk", round_no, ctx.vus, command=" ".join(argv))
    log = ctx.workdir / "wrk.log"
    usage, watch = run_watched(argv, timeout_s=ctx.duration_s + 60, log_path=log)
    res.wall_s, res.cpu_s, res.peak_rss_kb = usage.wall_s, usage.cpu_s, usage.max_rss_kb
    out = log.read_text(errors="replace")
    got = parse(out)
    res.extra = {"exit_code": usage.returncode, "socket_errors": got.get("socket_errors", 0.0)}
    if "requests" not in got:
        res.error = f"wrk exited {usage.returncode}; output: {out[-600:]}"
        return res
    res.requests = int(got["requests"])
    res.failed = int(got["non2xx"] + got["socket_errors"])
    res.duration_s = ctx.duration_s  # the configured load window, as for every tool
    res.extra["reported_duration_s"] = got["duration_s"]
    res.p50_ms, res.p99_ms = got.get("p50"), got.get("p99")
    root = watch.procs.get(watch.root_pid) if watch else None
    res.steady_cpu_per_1k = steady_cpu_per_1k(root, res.rps)
    res.ok = res.requests > 0
    return res

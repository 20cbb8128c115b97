"""What every tool runner gets and gives back.

A runner turns one :class:`Context` (the server, the load shape, where to write) into one
:class:`RunResult`. Every number a runner returns is the tool's own (requests, latency
percentiles as that tool computes them) except CPU and memory, which the harness measures
from outside the same way for every tool (:mod:`bench.procs`), so that the one figure the
issue is about, *generator CPU seconds per 1000 requests*, is measured identically for all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import ProcSample
from bench.target import Target


@dataclass(frozen=True)
class Context:
    target: Target
    duration_s: float
    vus: int
    workdir: Path  # a temporary directory of this run: scripts, exports, logs
    gen_cores: str | None  # taskset list for the generator, None when not pinning
    think_s: float = 0.0  # sleep between requests (the memory runs use 1 s)
    no_connection_reuse: bool = False  # k6's noConnectionReuse: a new connection per request


@dataclass
class RunResult:
    tool: str
    round: int
    vus: int
    ok: bool = False
    error: str = ""
    requests: int = 0
    failed: int = 0  # requests the tool counted as failed (errors or unexpected status)
    duration_s: float = 0.0  # the configured load window (rps = requests / this, for every tool)
    cpu_s: float = 0.0  # the generator's CPU: user + system, all of its process tree (surge: the worker)
    steady_cpu_per_1k: float | None = None  # CPU slope in the middle of the run over the mean rate
    peak_rss_kb: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    wall_s: float = 0.0
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def cpu_per_1k(self) -> float | None:
        return 1000.0 * self.cpu_s / self.requests if self.requests > 0 else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["rps"] = self.rps
        d["cpu_per_1k"] = self.cpu_per_1k
        return d


def steady_cpu_per_1k(proc: ProcSample | None, rps: float) -> float | None:
    """CPU-s per 1000 requests from the CPU slope over the middle half of a process's life.

    Start-up (imports, JIT, spawning) and shut-down are fixed costs that a longer run would
    dilute; the slope between 30 % and 80 % of the process's sampled lifetime, when the load is
    certainly running, is the per-request cost alone. It assumes the rate was steady, which
    holds for these closed-model runs against a server that is not the bottleneck.
    """
    if proc is None or rps <= 0 or len(proc.timeline) < 10:
        return None
    t_first, t_last = proc.timeline[0][0], proc.timeline[-1][0]
    span = t_last - t_first
    lo, hi = t_first + 0.3 * span, t_first + 0.8 * span
    window = [(t, c) for t, c in proc.timeline if lo <= t <= hi]
    if len(window) < 2 or window[-1][0] - window[0][0] <= 0:
        return None
    slope = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
    return 1000.0 * slope / rps

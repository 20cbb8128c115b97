"""What the per-endpoint rows cost: the worker's recorder per request, the coordinator per report.

    python -m bench.recorder_rows [--rounds 7] [--requests 200000] [--base main]

Worker: ``record_http`` + one ``flush`` per 1,000 requests, this checkout's recorder against the
``--base`` branch's (loaded from ``git show``), interleaved round by round, for one URL and for
20,000 distinct URLs (the cap at work). Coordinator: ``Aggregate.accept`` of one worker's report
of a 1,000-request interval, with the rows the recorder made (1 URL, 6 rows, the cap's 101)
against the same report without its ``surge_endpoint_*`` series. Prints medians and ranges of
the ratios; nothing is sent anywhere, nothing is written.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from surge.common.endpoint_stats import KEY_PREFIX
from surge.common.protocol import Report
from surge.coordinator.aggregate import Aggregate
from surge.results.timeline import Timeline
from surge.worker import recorder as current
from surge.worker.http import Response, Timings

FLUSH_EVERY = 1000


def _base_recorder(branch: str) -> ModuleType:
    source = subprocess.run(["git", "show", f"{branch}:surge/worker/recorder.py"], check=True, capture_output=True,
                            text=True).stdout
    path = Path(tempfile.mkdtemp()) / "base_recorder.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("base_recorder", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _responses(n: int, distinct: int) -> list[Response]:
    out = []
    for i in range(n):
        r = Response("GET", f"http://127.0.0.1:8787/shop/events/{i % distinct}", 200)
        r.timings = Timings(waiting=1.0 + i % 7, duration=1.0 + i % 7)
        r.bytes_sent, r.bytes_received = 120, 300
        out.append(r)
    return out


def _worker_s(module: Any, responses: list[Response]) -> float:
    rec = module.Recorder(clock=lambda: 0.0, metric_defs={})
    t0 = time.perf_counter()
    for i, r in enumerate(responses, 1):
        rec.record_http(r, None)
        if i % FLUSH_EVERY == 0:
            rec.flush()
    rec.flush()
    return time.perf_counter() - t0


def _report(distinct: int) -> dict[str, Any]:
    rec = current.Recorder(clock=lambda: 0.0, metric_defs={})
    for r in _responses(FLUSH_EVERY, distinct):
        rec.record_http(r, None)
    series, _ = rec.flush()
    return series


def _coordinator_s(series: dict[str, Any], reports: int) -> float:
    agg = Aggregate(1, timeline=Timeline(1.0, float(reports), ["w0"]))
    t0 = time.perf_counter()
    for seq in range(1, reports + 1):
        agg.accept(0, Report("run", seq, float(seq), series, {}, seq == reports))
    return time.perf_counter() - t0


def _ratios(label: str, rounds: int, new: Callable[[], float], old: Callable[[], float]) -> None:
    ratios, news = [], []
    for _ in range(rounds):
        a, b = new(), old()
        ratios.append(a / b)
        news.append(a)
    print(f"{label}: new/old median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
          f"new median {statistics.median(news) * 1e3:.1f} ms")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--reports", type=int, default=300)
    ap.add_argument("--base", default="main")
    args = ap.parse_args(argv)
    base = _base_recorder(args.base)
    for distinct in (1, 20_000):
        responses = _responses(args.requests, distinct)
        _ratios(f"worker, {args.requests} requests to {distinct} URL(s), per request", args.rounds,
                lambda: _worker_s(current, responses), lambda: _worker_s(base, responses))
    for distinct, what in ((1, "1 URL"), (6, "6 URLs"), (20_000, "20,000 URLs (cap: 100 rows + overflow)")):
        with_rows = _report(distinct)
        without = {k: v for k, v in with_rows.items() if not k.startswith(KEY_PREFIX)}
        rows = sum(1 for k in with_rows if k.startswith("surge_endpoint_duration"))
        _ratios(f"coordinator, {args.reports} reports, {what}: {rows} rows", args.rounds,
                lambda: _coordinator_s(with_rows, args.reports), lambda: _coordinator_s(without, args.reports))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

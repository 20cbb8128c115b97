"""``--prometheus``, scraped by a real Prometheus (Debian's ``prometheus`` package) and read back
through its query API: what a Grafana panel would see.

Prometheus scrapes the surge endpoint every second on 127.0.0.1 while a short demo-target run
goes; once the run is over, the endpoint is gone (Prometheus marks the series stale), so the
queries read the last scraped value with ``last_over_time(...[5m])``, which looks past the
staleness marker. Every wait is bounded; both processes are stopped in ``finally``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surge.common.metrics import BUILTIN_METRICS, CounterSink
from surge.common.options import Options
from surge.results.live import LiveSnapshot
from surge.results.prometheus_server import PrometheusView
from surge.results.timeline import TimelineData
from tests.integration.conftest import FIXTURES, REPO, Target, free_port, run_surge, target_env

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector: [{"metric": labels, "value": [t, "v"]}, ...]."""
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=10) as resp:  # noqa: S310 - 127.0.0.1
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Each series's labels (without job and instance) -> value."""
        out = {}
        for r in self.query(promql):
            labels = tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("job", "instance", "__name__")))
            out[labels] = float(r["value"][1])
        return out


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as resp:  # noqa: S310 - 127.0.0.1
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, int]]:
    """A Prometheus on 127.0.0.1 scraping 127.0.0.1:<port> every second; yields it and that port."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (Debian package prometheus; .ci/run installs it)")
    surge_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: surge\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{surge_port}']\n",
        encoding="utf-8",
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{prom_port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("prometheus did not get ready:\n" + (tmp_path / "prometheus.log").read_text()[-3000:])
            time.sleep(0.2)
        yield Prometheus(url), surge_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_a_real_prometheus_scrapes_the_run_while_it_goes(prometheus: tuple[Prometheus, int], tmp_path: Path) -> None:
    prom, surge_port = prometheus
    summary_path = tmp_path / "summary.json"
    r = run_surge(
        "run", "scenarios/ticket_purchase.py", "--demo-target", "-q",
        "-e", "RAMP_UP=2s", "-e", "HOLD=6s", "-e", "RAMP_DOWN=1s", "-e", "TARGET_VUS=10", "-w", "2",
        "--prometheus", f"127.0.0.1:{surge_port}", "--summary-export", str(summary_path),
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(summary_path.read_text())

    # The endpoint went away with the run.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", surge_port), timeout=2):
        pass

    # Prometheus scraped it several times, successfully.
    up = prom.values('sum_over_time(up{job="surge"}[5m])')
    assert up and next(iter(up.values())) >= 3, up

    reqs = prom.values('last_over_time(surge_http_reqs_total{job="surge"}[5m])')
    total = reqs[()]  # the untagged, fleet-wide series
    assert 0 < total <= summary["metrics"]["http_reqs"]["values"]["count"]

    # Every threshold the summary judged is there, 1 for this passing run, labelled as written.
    ok = prom.values('last_over_time(surge_threshold_ok{job="surge"}[5m])')
    expected = {(("metric", key), ("threshold", source))
                for key, m in summary["metrics"].items() for source in m.get("thresholds", {})}
    assert set(ok) == expected
    assert (("metric", "http_req_duration{scenario:purchase}"), ("threshold", "p(95)<500")) in ok
    assert set(ok.values()) == {1.0}
    observed = prom.values('last_over_time(surge_threshold_observed{job="surge"}[5m])')
    assert set(observed) == expected

    # Tags became labels; times are seconds; the VU gauge stayed within the plan.
    p95 = prom.values('last_over_time(surge_http_req_duration_p95{job="surge"}[5m])')
    assert (("scenario", "purchase"),) in p95 and () in p95
    assert 0 < p95[()] < 0.5  # the passing p(95)<500 (ms) threshold, in seconds
    vus = prom.values('max_over_time(surge_vus{job="surge"}[5m])')
    assert 1 <= vus[()] <= 10
    elapsed = prom.values('last_over_time(surge_run_elapsed_seconds{job="surge"}[5m])')
    assert 0 < elapsed[()] <= summary["state"]["testRunDurationMs"] / 1000 + 1


def test_a_port_in_use_fails_before_any_load(target: Target) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_surge("run", str(FIXTURES / "quick_purchase.py"), *target_env(target), "-w", "1", "-q",
                      "--prometheus", f"127.0.0.1:{port}")
    assert r.returncode == 104, r.stderr
    assert f"cannot serve --prometheus on 127.0.0.1:{port}" in r.stderr
    assert "hint:" in r.stderr
    assert target.stats()["requests"] == 0


def test_the_view_serves_the_latest_snapshot_and_frees_its_port_on_close() -> None:
    view = PrometheusView("127.0.0.1", free_port(), BUILTIN_METRICS)
    try:
        with urllib.request.urlopen(view.url, timeout=5) as resp:  # noqa: S310 - 127.0.0.1
            assert resp.read() == b""  # no snapshot yet: an empty exposition
        view.update(LiveSnapshot(
            elapsed_s=3.0, max_duration_s=10.0, series={"http_reqs": CounterSink(42)},
            timeline=TimelineData(1.0, 1.0, (), {}, ()), verdicts=(), options=Options(scenarios=()), workers=(),
        ))
        with urllib.request.urlopen(view.url, timeout=5) as resp:  # noqa: S310 - 127.0.0.1
            assert b"surge_http_reqs_total 42.0" in resp.read()
    finally:
        view.close(None)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", view.port), timeout=2):
        pass
    with socket.socket() as again:
        # SO_REUSEADDR: the closed connections' TIME_WAIT may linger; a listening socket would not be passed over
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", view.port))
        again.listen()

"""The HTML report and the live dashboard, opened in headless Chromium (tests/cdp.py).

Each test runs the ticket-purchase scenario for real, opens the page, and checks what a person
would see: every chart's canvas has coloured pixels (its data lines) in a screenshot of the
page, the tables are there, the console stayed clean, and the page asked nothing of any
server (the report: no request at all; the dashboard: only its own 127.0.0.1 origin).

Chromium is Debian's ``chromium`` (``.ci/run`` installs it); without it these tests skip.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cdp import Browser, find_chromium
from tests.integration.conftest import REPO, Target, run_surge, start, stop, target_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (apt-get install chromium)"),
]

HOSTILE = "</script><script>window.__pwned=1</script><!-- \u2028\u2029 & <b>bold</b>"

# Each chart box: its title, whether uPlot drew a canvas, and the canvas's place on the page.
CHARTS_JS = """Array.from(document.querySelectorAll('.chart')).map(box => {
  const c = box.querySelector('canvas'); const r = c ? c.getBoundingClientRect() : null;
  return {id: box.dataset.chart, title: box.querySelector('h3').textContent, noData: box.classList.contains('no-data'),
          rect: r && {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height}};
})"""


def _run_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "scenarios/ticket_purchase.py", "-w", "2", "-e", "TARGET_VUS=10",
            "-e", f"RESULTS_DIR={tmp_path / 'results'}", *extra]


async def _drawn_charts(b: Browser, shot: Path) -> list[dict[str, Any]]:
    """The charts, each with how many coloured pixels the screenshot has inside its canvas."""
    charts: list[dict[str, Any]] = await b.evaluate(CHARTS_JS)
    png = await b.screenshot(shot)
    drawn = [c for c in charts if c["rect"] is not None]
    counts = await b.colored_pixels(png, [c["rect"] for c in drawn])
    for c, n in zip(drawn, counts):
        c["colored"] = n
    return charts


def _assert_charts_drew(charts: list[dict[str, Any]], must: set[str]) -> None:
    ids = {c["id"] for c in charts}
    assert must <= ids, f"missing charts: {must - ids}"
    for c in charts:
        if c["id"] in must:
            assert c["rect"] is not None, f"{c['title']}: no canvas (no data?)"
        if c["rect"] is not None:
            assert c["rect"]["width"] > 200 and c["rect"]["height"] > 150, c
            assert c["colored"] > 100, f"{c['title']}: nothing drawn in its canvas ({c['colored']} coloured pixels)"


def test_report_file_draws_offline_and_a_hostile_name_stays_text(error_rate_target: Target, tmp_path: Path) -> None:
    export, report = tmp_path / "summary.json", tmp_path / "report.html"
    res = run_surge(*_run_args(tmp_path, "--summary-export", str(export), "--report", str(report),
                               "-e", "RAMP_UP=2s", "-e", "HOLD=3s", "-e", "RAMP_DOWN=1s", *target_env(error_rate_target)))
    assert res.returncode == 99, res.stderr  # the injected errors cross http_req_failed's threshold
    assert report.exists()
    # surge report renders the same run afterwards; a stranger's check name must stay text
    data = json.loads(export.read_text())
    data["root_group"]["checks"].append({"name": HOSTILE, "path": "::" + HOSTILE, "id": "x", "passes": 1, "fails": 1})
    hostile_export = tmp_path / "hostile.json"
    hostile_export.write_text(json.dumps(data))
    res2 = run_surge("report", str(hostile_export), "-o", str(tmp_path / "hostile.html"))
    assert res2.returncode == 0, res2.stderr

    async def check() -> None:
        async with Browser() as b:
            for page in (report, tmp_path / "hostile.html"):
                b.log.requests.clear()
                await b.navigate(page.as_uri())
                await b.wait_for("window.__surgeRendered >= 1")
                charts = await _drawn_charts(b, tmp_path / f"{page.stem}.png")
                _assert_charts_drew(charts, {"vus-rps", "latency", "failures", "iterations", "transfer", "checks",
                                             "phases", "worker-rps"})
                text = await b.evaluate("document.body.innerText")
                assert "Thresholds" in text and "http_req_failed{scenario:purchase}" in text and "✗ crossed" in text
                assert "status 503 · error 1503" in text  # the failures chart's legend names the kind
                assert "local-0" in text and "local-1" in text  # the per-worker table
                assert "status is 200" in text
                assert (await b.evaluate("document.querySelectorAll('script').length")) == 3
                assert await b.evaluate("typeof window.__pwned") == "undefined"
                if page.stem == "hostile":
                    assert HOSTILE.split("\u2028")[0] in text
                    assert await b.evaluate("document.querySelectorAll('b').length") == 0
                assert b.log.errors() == []
                others = [u for u in b.log.requests if u != page.as_uri() and not u.startswith("data:")]
                assert others == [], f"the report asked for {others}"

    asyncio.run(check())


def _wait_for_line(proc: subprocess.Popen[str], needle: str, within_s: float = 60) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + within_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no {needle!r} on stderr: {''.join(seen)}")


def test_live_dashboard_updates_while_the_run_goes(error_rate_target: Target, tmp_path: Path) -> None:
    proc = start(*_run_args(tmp_path, "--dashboard", "0", "-e", "RAMP_UP=3s", "-e", "HOLD=6s", "-e", "RAMP_DOWN=2s",
                            *target_env(error_rate_target)))
    try:
        line = _wait_for_line(proc, "dashboard on ")
        url = line.split("dashboard on ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        origin = url.rstrip("/")

        async def check() -> None:
            async with Browser() as b:
                await b.navigate(url)
                # updates arrive while the run goes: documents past the inlined one, with points enough
                # for lines (the ramp reaches its 10 VUs at 3s)
                await b.wait_for("window.__surgeRendered >= 3 && window.__surgePoints >= 5", within_s=60)
                assert await b.evaluate("window.__surgeFinished") is False
                assert proc.poll() is None, "the run ended before the page could watch it"
                before = await b.evaluate("document.querySelector('.badge').textContent")
                assert before.startswith("running ")
                charts = await _drawn_charts(b, tmp_path / "dashboard.png")
                _assert_charts_drew(charts, {"vus-rps", "latency", "failures", "iterations", "transfer", "phases",
                                             "worker-rps"})
                assert b.log.errors() == []
                others = [u for u in b.log.requests if not u.startswith(origin + "/") and not u.startswith("data:")]
                assert others == [], f"the dashboard page asked for {others}"
                # the end: the final document (the summary's) reaches the page before surge exits
                await b.wait_for("window.__surgeFinished === true", within_s=90)
                text = await b.evaluate("document.body.innerText")
                assert "The run is over" in text and "status is 200" in text

        asyncio.run(check())
        assert proc.wait(timeout=60) == 99
    finally:
        stop(proc)


def test_a_dashboard_port_in_use_fails_before_any_load(target: Target, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run_surge(*_run_args(tmp_path, "--dashboard", str(port), "-e", "RAMP_UP=1s", "-e", "HOLD=1s",
                                   "-e", "RAMP_DOWN=1s", *target_env(target)))
    assert res.returncode == 104, res.stderr
    assert f"--dashboard 127.0.0.1:{port}: cannot listen" in res.stderr
    assert target.stats()["requests"] == 0


@pytest.fixture
def error_rate_target() -> Any:
    from tests.integration.conftest import _start_target

    proc, tgt = _start_target(["--latency-median-ms", "20", "--latency-sigma", "0.4", "--error-rate", "0.05",
                               "--error-status", "503", "--seed", "3"])
    try:
        yield tgt
    finally:
        proc.stop()


_ = REPO

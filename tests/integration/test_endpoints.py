"""The per-endpoint table end to end: real workers, the demo target, every output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surge.common.endpoint_stats import OVERFLOW_NAME
from tests.integration.conftest import FIXTURES, REPO, Target, run_surge, target_env

pytestmark = pytest.mark.integration

HINT = f"went to the {OVERFLOW_NAME!r} row of the per-endpoint table"


def test_twenty_thousand_distinct_urls_keep_the_table_at_the_cap_and_say_so_once(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "summary.json"
    res = run_surge("run", "-w", "2", "--max-endpoints", "50", "--summary-export", str(export),
                    "--summary-mode", "full", *target_env(target), str(FIXTURES / "many_urls.py"))
    assert res.returncode == 0, res.stderr
    data = json.loads(export.read_text())

    rows = data["endpoints"]["rows"]
    assert data["endpoints"]["maxRows"] == 50
    assert len(rows) == 51 and rows[-1]["name"] == OVERFLOW_NAME  # the cap, plus the one overflow row
    assert sum(r["requests"] for r in rows) == data["metrics"]["http_reqs"]["values"]["count"] == 20_000
    assert target.stats()["catalog_requests"] == 20_000
    over = data["endpoints"]["overflow"]
    assert over["requests"] == rows[-1]["requests"] == 20_000 - 50
    assert over["suggestions"] == [f"{target.url}/shop/events/${{}}"]
    assert (res.stderr + res.stdout).count(HINT) == 1, res.stderr  # said once, on stderr
    assert f"{target.url}/shop/events/${{}}" in res.stderr.split(HINT)[1]
    assert not any(k.startswith("surge_endpoint") for k in data["metrics"])
    assert not any(k.startswith("surge_endpoint") for k in data["timeline"]["series"])


def test_the_shop_journey_shows_its_endpoints_in_the_text_the_export_and_the_report(target: Target, tmp_path: Path) -> None:
    export, report = tmp_path / "summary.json", tmp_path / "report.html"
    res = run_surge("run", "-w", "2", "--summary-export", str(export), "--summary-mode", "full", "--report", str(report),
                    *target_env(target), "-e", "DURATION=2s", "-e", "VUS=4", str(REPO / "scenarios" / "shop_journey.py"))
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(export.read_text())

    rows = {(r["scenario"], r["group"], r["method"], r["name"]): r for r in data["endpoints"]["rows"]}
    base = target.url
    assert set(rows) == {
        ("shoppers", "::browse", "GET", f"{base}/shop/events"),
        ("shoppers", "::search", "GET", f"{base}/shop/search?q=${{}}"),
        ("shoppers", "::search", "GET", f"{base}/shop/events/${{}}"),
        ("shoppers", "::checkout", "POST", "checkout"),
        ("window_shoppers", "::browse", "GET", f"{base}/shop/events"),
        ("window_shoppers", "::browse", "GET", f"{base}/shop/events/${{}}"),
    }
    checkout = rows[("shoppers", "::checkout", "POST", "checkout")]
    assert checkout["requests"] == target.stats()["requests"] > 0  # the target's own count
    assert sum(r["requests"] for r in rows.values()) == data["metrics"]["http_reqs"]["values"]["count"]
    assert data["endpoints"]["overflow"] is None and HINT not in res.stderr
    # the threshold on the named request, as today: a sub-metric judged by the fleet
    named = data["metrics"]["http_req_duration{name:checkout}"]
    assert named["thresholds"] == {"p(95)<500": {"ok": True}}
    assert named["values"]["max"] == checkout["duration"]["max"]  # the same requests (max is exact)

    assert "█ ENDPOINTS" in res.stdout and "SCENARIO: window_shoppers  GROUP: ::browse" in res.stdout
    assert f"{base}/shop/events/${{}}" in res.stdout
    page = report.read_text()
    assert "Requests by endpoint" in page and f"{base}/shop/search?q=${{}}" in page

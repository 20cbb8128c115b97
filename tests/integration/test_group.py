"""``group()`` end to end: two workers, nested groups, group-scoped thresholds, root_group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, Target, run_surge, target_env

pytestmark = pytest.mark.integration


def test_nested_groups_tag_requests_and_group_checks_across_two_workers(target: Target, tmp_path: Path) -> None:
    export = tmp_path / "summary.json"
    res = run_surge("run", "-w", "2", "--summary-export", str(export), "--summary-mode", "full", *target_env(target),
                    str(FIXTURES / "groups.py"))
    assert res.returncode == 0, res.stderr
    data = json.loads(export.read_text())
    served = target.stats()["requests"]
    m = data["metrics"]
    iterations = m["iterations"]["values"]["count"]
    assert iterations > 0 and m["http_reqs"]["values"]["count"] == served == 3 * iterations
    assert m["http_req_duration{group:::checkout}"]["thresholds"] == {"p(95)<1000": {"ok": True}}
    assert m["http_req_duration{group:::checkout}"]["values"]  # the sub-metric was filled
    assert m["http_reqs{group:}"]["values"]["count"] == iterations  # the request outside any group
    assert m["group_duration{group:::checkout}"]["values"]["count"] == iterations
    assert m["group_duration{group:::checkout::pay}"]["values"]["count"] == iterations
    assert m["group_duration"]["values"]["count"] == 2 * iterations

    root = data["root_group"]
    assert (root["name"], root["path"]) == ("", "")
    assert [(c["name"], c["path"], c["passes"], c["fails"]) for c in root["checks"]] == [
        ("home is 200", "::home is 200", iterations, 0)
    ]
    [checkout] = root["groups"]
    assert (checkout["name"], checkout["path"]) == ("checkout", "::checkout")
    assert [(c["path"], c["passes"], c["fails"]) for c in checkout["checks"]] == [("::checkout::cart is 200", iterations, 0)]
    [pay] = checkout["groups"]
    assert (pay["name"], pay["path"], pay["groups"]) == ("pay", "::checkout::pay", [])
    assert [(c["path"], c["passes"], c["fails"]) for c in pay["checks"]] == [("::checkout::pay::paid is 200", iterations, 0)]
    assert m["checks"]["values"]["passes"] == served
    # the text summary (full mode) lists every check, then shows each under its group
    text = res.stdout
    total = text.split("  █ TOTAL RESULTS\n", 1)[1].split("  █ ", 1)[0].splitlines()
    assert ["    ✓ home is 200", "    ✓ cart is 200", "    ✓ paid is 200"] == [l for l in total if "✓" in l]
    checkout = text.split("  █ GROUP: checkout\n", 1)[1].splitlines()
    assert "    ✓ cart is 200" in checkout and "    ↳ GROUP: pay" in checkout and "      ✓ paid is 200" in checkout
    assert any(l.startswith("    http_req_duration...: avg=") for l in checkout)  # its {group:::checkout} series

"""The summary's ``root_group``: k6's group tree, built from the check keys, and its text."""

from __future__ import annotations

import hashlib
from typing import Any

from surge.common.api import check_key
from surge.results.summary import build_summary, text_summary


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _check(path: str, name: str, passes: int, fails: int) -> dict[str, Any]:
    return {"name": name, "path": f"{path}::{name}", "id": _md5(f"{path}::{name}"), "passes": passes, "fails": fails}


def _group(path: str, groups: list[dict[str, Any]], checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": path.rpartition("::")[2], "path": path, "id": _md5(path), "groups": groups, "checks": checks}


CHECKS = {
    "status is 200": (10, 0),
    check_key("::checkout", "has cart"): (9, 1),
    check_key("::checkout::pay", "paid"): (8, 2),
    check_key("::checkout::pay", ""): (0, 0),  # group markers, as the recorder sends them
    check_key("::checkout", ""): (0, 0),
    check_key("::browse", ""): (0, 0),  # a group that ran with no checks
    check_key("::checkout", "has receipt"): (10, 0),
    check_key("::deep::er::still", "x"): (1, 0),  # parents it never announced are made
}


def test_root_group_is_k6s_tree_in_first_seen_order() -> None:
    data = build_summary(series=[], verdicts=[], checks=CHECKS, duration_s=1.0)
    assert data["root_group"] == {
        "name": "",
        "path": "",
        "id": _md5(""),
        "checks": [_check("", "status is 200", 10, 0)],
        "groups": [
            _group(
                "::checkout",
                [_group("::checkout::pay", [], [_check("::checkout::pay", "paid", 8, 2)])],
                [_check("::checkout", "has cart", 9, 1), _check("::checkout", "has receipt", 10, 0)],
            ),
            _group("::browse", [], []),
            _group("::deep", [_group("::deep::er", [_group("::deep::er::still", [], [_check("::deep::er::still", "x", 1, 0)])], [])], []),
        ],
    }
    # k6's ids and paths, e.g. the check inside pay
    assert data["root_group"]["groups"][0]["groups"][0]["checks"][0]["path"] == "::checkout::pay::paid"


def test_without_groups_root_group_is_as_before() -> None:
    data = build_summary(series=[], verdicts=[], checks={"ok": (1, 0)}, duration_s=1.0)
    assert data["root_group"] == {"name": "", "path": "", "id": _md5(""), "groups": [], "checks": [_check("", "ok", 1, 0)]}


def test_a_check_named_empty_with_counts_is_a_check_not_a_marker() -> None:
    data = build_summary(series=[], verdicts=[], checks={check_key("::g", ""): (2, 0)}, duration_s=1.0)
    assert data["root_group"]["groups"][0]["checks"] == [_check("::g", "", 2, 0)]


def test_text_lists_every_check_once_and_full_mode_shows_each_group_as_k6_does() -> None:
    data = build_summary(series=[], verdicts=[], checks=CHECKS, duration_s=1.0)
    compact = text_summary(data).split("\n")
    assert compact[6:] == [  # after the checks_* lines: root_group's order, each group before its sub-groups
        "    ✓ status is 200",
        "    ✗ has cart",
        "      ↳  90% — ✓ 9 / ✗ 1",
        "    ✓ has receipt",
        "    ✗ paid",
        "      ↳  80% — ✓ 8 / ✗ 2",
        "    ✓ x",
    ]
    full = text_summary(data, summary_mode="full").split("\n")
    assert full[: len(compact)] == compact
    groups = [line for line in full[len(compact):] if "GROUP:" in line or line.lstrip().startswith(("✓ ", "✗ "))]
    assert groups == [
        "  █ GROUP: checkout",
        "    ✗ has cart",
        "    ✓ has receipt",
        "    ↳ GROUP: pay",
        "      ✗ paid",
        "  █ GROUP: browse",
        "  █ GROUP: deep",
        "    ↳ GROUP: er",
        "      ↳ GROUP: still",
        "        ✓ x",
    ]
    assert "      checks_total.......: 10     10/s" in full  # pay's own checks
    assert "          ↳  80% — ✓ 8 / ✗ 2" in full  # k6 indents a failed check's detail so, two levels down

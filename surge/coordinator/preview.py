"""What a run would do, without running it: ``surge inspect`` (pure: no clock, no socket, no print).

:func:`describe` turns a prepared scenario and a worker count into one JSON-ready document:
the consolidated options (the script's with the command line's overrides), each scenario's
timing and peak, the totals, and each worker's share, computed by the same
:func:`~surge.coordinator.plan.plan_slices` a run uses, so what it shows is what a run with as
many equal workers would send. :func:`render_text` writes the same document for people.

Document shape (times in seconds)::

    {"scenario_file": str, "options": {...},
     "scenarios": [{"name", "executor", "exec", "start_time_s", "duration_s", "graceful_stop_s",
                    "graceful_ramp_down_s" (ramping-vus only), "end_s", "max_vus", "tags"}],
     "total": {"max_vus", "max_duration_s"},
     "workers": [{"worker", "max_vus", "scenarios": [{"name", "max_vus", "vu_ids": [[first, last], ...]}]}]}

A worker's ``max_vus`` is the sum of its scenarios' peaks (as ``total.max_vus`` is the fleet's):
the VUs it may hold at once if every scenario peaked together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from surge.common.durations import format_duration
from surge.common.options import Executor
from surge.coordinator.plan import plan_slices, scenario_duration_s
from surge.coordinator.prepare import Prepared


def id_ranges(ids: Sequence[int]) -> list[list[int]]:
    """``[1, 2, 3, 7]`` as ``[[1, 3], [7, 7]]``."""
    ranges: list[list[int]] = []
    for i in sorted(ids):
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges


def _jsonable(value: object) -> Any:
    """The options as JSON would carry them (a user's odd value shown by its ``str``)."""
    return json.loads(json.dumps(value, default=str))


def describe(prepared: Prepared, workers: int) -> dict[str, Any]:
    """The document above for a run of ``prepared`` over ``workers`` equal workers."""
    options = prepared.options
    scenarios = []
    for sc in options.scenarios:
        entry: dict[str, Any] = {
            "name": sc.name,
            "executor": sc.executor.value,
            "exec": sc.exec_name,
            "start_time_s": sc.start_time_s,
            "duration_s": scenario_duration_s(sc),
            "graceful_stop_s": sc.graceful_stop_s,
        }
        if sc.executor is Executor.RAMPING_VUS:
            entry["graceful_ramp_down_s"] = sc.graceful_ramp_down_s
        entry.update(end_s=sc.end_offset_s(), max_vus=sc.max_vus(), tags=dict(sc.tags))
        scenarios.append(entry)
    shares = []
    for w, slices in enumerate(plan_slices(options, [1] * workers)):
        parts: list[dict[str, Any]] = [
            {"name": sl.name, "max_vus": max((v for _, v in sl.steps), default=0), "vu_ids": id_ranges(sl.vu_ids)}
            for sl in slices
        ]
        shares.append({"worker": w, "max_vus": sum(p["max_vus"] for p in parts), "scenarios": parts})
    return {
        "scenario_file": prepared.source,
        "options": _jsonable(dict(options.raw)),
        "scenarios": scenarios,
        "total": {"max_vus": options.total_max_vus(), "max_duration_s": options.max_duration_s()},
        "workers": shares,
    }


def _compact(value: object) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def _ranges_text(ranges: list[list[int]]) -> str:
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges) or "none"


def render_text(doc: Mapping[str, Any]) -> str:
    d = format_duration
    lines = [f"scenario file: {doc['scenario_file']}", "options (the script's, after command-line overrides):"]
    for key, value in doc["options"].items():
        if key == "scenarios" and isinstance(value, dict):
            lines += [f"  scenarios.{name}: {_compact(sc)}" for name, sc in value.items()]
        else:
            lines.append(f"  {key}: {_compact(value)}")
    lines.append("")
    lines.append("scenarios:")
    for sc in doc["scenarios"]:
        grace = f"+{d(sc['graceful_stop_s'])} graceful stop"
        if "graceful_ramp_down_s" in sc:
            grace += f", {d(sc['graceful_ramp_down_s'])} graceful ramp-down"
        lines.append(
            f"  {sc['name']}: {sc['executor']}, exec {sc['exec']}, start {d(sc['start_time_s'])}, "
            f"duration {d(sc['duration_s'])} ({grace}), over by {d(sc['end_s'])}, max {sc['max_vus']} VUs"
        )
        if sc["tags"]:  # the scenario's own and the command line's --tag
            lines.append("    tags: " + ", ".join(f"{k}={v}" for k, v in sc["tags"].items()))
    total = doc["total"]
    lines.append(
        f"total: {total['max_vus']} max VUs, {d(total['max_duration_s'])} max duration (incl. graceful stop)"
    )
    lines.append("")
    lines.append(f"split over {len(doc['workers'])} worker(s):")
    for w in doc["workers"]:
        lines.append(f"  worker {w['worker']}: {w['max_vus']} max VUs")
        for part in w["scenarios"]:
            lines.append(f"    {part['name']}: max {part['max_vus']} VUs, VU ids {_ranges_text(part['vu_ids'])}")
    return "\n".join(lines)

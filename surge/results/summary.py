"""The end-of-test summary data: k6's ``handleSummary`` ``data``, from the merged series.

:func:`build_summary` turns the merged series, the threshold verdicts and the check counts
into exactly the ``data`` object k6 hands to ``handleSummary``, so a k6 user's summary code
ports unchanged::

    {"root_group": {"name": "", "path": "", "id": md5(""),
                    "groups": [{"name", "path": "::name", "id", "groups": [...], "checks": [...]}],
                    "checks": [{"name", "path": "::name", "id": md5(path), "passes", "fails"}]},
     "options":    {"summaryTrendStats": [...], "summaryTimeUnit": "", "noColor": False},
     "state":      {"isStdOutTTY", "isStdErrTTY", "testRunDurationMs", "workers"?: [...]},
     "metrics":    {key: {"type", "contains", "values", "thresholds"?: {source: {"ok"}}}}}

``state.workers`` is surge's own, added by the coordinator
(:func:`surge.coordinator.report.worker_entries`): one entry per worker, in index order, with
its name, requests, failures, CPU, loop lag and saturation, and the text summary prints them
as a table when there is more than one worker.

``values`` holds what the sink reports (:mod:`surge.common.metrics`): trends the
``summaryTrendStats``, counters ``count``/``rate``, rates ``rate``/``passes``/``fails``, gauges
``value``/``min``/``max``. A trend's threshold on a statistic the summary does not list
(``p(99)<800`` with the default stats) adds that statistic to its ``values``, as k6's summary
report does, so that the THRESHOLDS section can show the value that was judged. Time is in
milliseconds, as recorded. The result is plain JSON: NaN and infinities become 0, integral
counts become ints, and quantiles (``med``, ``p(N)``) are rounded to 12 significant digits to
drop interpolation noise.

``root_group`` is k6's group tree: a group's path is its parent's, ``::`` and its name (the
root's is ``""``), a check's path is its group's, ``::`` and its name, and ids are the md5 of
the path. Groups and checks are listed in the order first seen. The tree is read from the check
keys (:func:`surge.common.api.split_check_key`): a check made in group ``::checkout::pay``
comes keyed ``::checkout::pay\x1f<name>``, and a zero-count key with an empty name only says
that the group ran.

Metric order in ``data["metrics"]`` is k6's summary order: by name, each sub-metric
(``name{tag:value}``) right after its parent (a plain string sort would put ``foo_bar`` between
``foo`` and ``foo{tag:x}``, since ``_`` sorts before ``{``).

The text is rendered from this data by :mod:`surge.results.summary_text` (k6 v1's layout) with
numbers formatted by :mod:`surge.results.humanize`; :func:`text_summary` and the ``humanize_*``
functions are importable from here too, where they used to live. Pure: no I/O (printing and
writing files belong to :mod:`surge.results.outputs`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from surge.common.api import split_check_key
from surge.common.metrics import DEFAULT_TREND_STATS, MetricDef, MetricType, Sink
from surge.results.humanize import humanize_bytes, humanize_duration, humanize_value
from surge.results.summary_text import series_sort_key as _series_sort_key
from surge.results.summary_text import text_summary, worker_lines

if TYPE_CHECKING:
    from surge.results.thresholds import Verdict

__all__ = [
    "SeriesResult",
    "build_summary",
    "humanize_bytes",
    "humanize_duration",
    "humanize_value",
    "text_summary",
    "worker_lines",
]


@dataclass(frozen=True)
class SeriesResult:
    """One merged series as the summary sees it."""

    key: str  # display key as the user wrote it: "http_req_duration{scenario:purchase}"
    metric: MetricDef  # the base metric's definition (type, contains)
    sink: Sink


# --------------------------------------------------------------------------- data


def _md5_hex(text: str) -> str:
    # k6 names groups and checks by the md5 of their path; only an identifier, not security.
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


_INT_VALUES = frozenset({"count", "passes", "fails"})


def _json_number(name: str, value: float) -> float | int:
    if isinstance(value, bool):
        return int(value)
    if not math.isfinite(value):
        return 0.0
    if isinstance(value, int):
        return value
    if name in _INT_VALUES and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if name == "med" or name.startswith("p("):
        # Quantiles are sketch estimates; interpolation leaves float noise (270 comes back as
        # 269.9999999999997), which k6's truncating formatter would print as "269.99ms".
        # Twelve significant digits keep every real digit and drop the noise.
        return float(f"{value:.12g}")
    return float(value)


def _root_group(checks: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """k6's ``root_group`` tree from check keys (see the module docstring)."""
    root: dict[str, Any] = {"name": "", "path": "", "id": _md5_hex(""), "groups": [], "checks": []}
    groups = {"": root}

    def node(path: str) -> dict[str, Any]:
        found = groups.get(path)
        if found is None:
            parent_path, _, name = path.rpartition("::")
            found = groups[path] = {"name": name, "path": path, "id": _md5_hex(path), "groups": [], "checks": []}
            node(parent_path)["groups"].append(found)
        return found

    for key, (passes, fails) in checks.items():
        path, name = split_check_key(key)
        group = node(path)
        if path and not name and not passes and not fails:
            continue  # the marker of a group that ran
        check_path = path + "::" + name
        group["checks"].append(
            {"name": name, "path": check_path, "id": _md5_hex(check_path), "passes": int(passes), "fails": int(fails)}
        )
    return root


_AGGREGATION_END = re.compile(r"[=<>]")
_TREND_STAT = re.compile(r"^(?:avg|min|med|max|count|p\((?:\d+(?:\.\d+)?)\))$")


def _judged_stats(sources: Mapping[str, object], stats: tuple[str, ...]) -> tuple[str, ...]:
    """The trend statistics thresholds judged that the summary does not list (``p(99)`` in ``p(99)<800``)."""
    out: list[str] = []
    for source in sources:
        agg = _AGGREGATION_END.split(source, maxsplit=1)[0].strip()
        if _TREND_STAT.match(agg) and agg not in stats and agg not in out:
            out.append(agg)
    return tuple(out)


def build_summary(
    *,
    series: Sequence[SeriesResult],
    verdicts: Sequence[Verdict],
    checks: Mapping[str, tuple[int, int]],
    duration_s: float,
    trend_stats: Sequence[str] = DEFAULT_TREND_STATS,
    options: Mapping[str, Any] | None = None,
    is_stdout_tty: bool = False,
) -> dict[str, Any]:
    """k6's ``handleSummary`` data for a finished run (see the module docstring for the shape).

    ``checks`` maps each check key (its name, or its group path and name as
    :func:`surge.common.api.check_key` joins them) to ``(passes, fails)``, in the order to
    show them.
    ``options`` may carry ``summaryTimeUnit`` and ``noColor``; other keys are ignored, and
    ``summaryTrendStats`` always comes from ``trend_stats``, the stats the values hold.
    A verdict whose key has no series is skipped (the caller guarantees there is none).

    Raises ``ValueError`` for two series with one key, for a sink whose type is not its
    metric's, or for an unknown trend statistic.
    """
    stats = tuple(trend_stats)
    opts = options or {}

    thresholds: dict[str, dict[str, dict[str, bool]]] = {}
    for v in verdicts:
        per_key = thresholds.setdefault(v.key, {})
        # The same expression written twice is one entry, as in k6; it holds only if both did.
        per_key[v.source] = {"ok": bool(v.ok) and per_key.get(v.source, {"ok": True})["ok"]}

    metrics: dict[str, dict[str, Any]] = {}
    for s in sorted(series, key=lambda s: _series_sort_key(s.key)):
        if s.key in metrics:
            raise ValueError(f"two series named {s.key!r} given to the summary")
        if s.sink.type is not s.metric.type:
            raise ValueError(
                f"series {s.key!r}: a {s.sink.type.value} sink for a {s.metric.type.value} metric"
            )
        extra = _judged_stats(thresholds.get(s.key, {}), stats) if s.metric.type is MetricType.TREND else ()
        values = s.sink.values(duration_s, stats + extra)
        entry: dict[str, Any] = {
            "type": s.metric.type.value,
            "contains": s.metric.contains.value,
            "values": {name: _json_number(name, v) for name, v in values.items()},
        }
        if s.key in thresholds:
            entry["thresholds"] = thresholds[s.key]
        metrics[s.key] = entry

    duration_ms = duration_s * 1000.0
    return {
        "root_group": _root_group(checks),
        "options": {
            "summaryTrendStats": list(stats),
            "summaryTimeUnit": str(opts.get("summaryTimeUnit") or ""),
            "noColor": bool(opts.get("noColor", False)),
        },
        "state": {
            "isStdOutTTY": bool(is_stdout_tty),
            "isStdErrTTY": False,
            "testRunDurationMs": duration_ms if math.isfinite(duration_ms) else 0.0,
        },
        "metrics": metrics,
    }

"""The end-of-test summary: k6's ``handleSummary`` data, and the text k6 prints from it.

Two pure steps, no I/O (printing and writing files belong to :mod:`surge.results.outputs`):

1. :func:`build_summary` turns the merged series, the threshold verdicts and the check
   counts into exactly the ``data`` object k6 hands to ``handleSummary``, so a k6 user's
   summary code ports unchanged::

       {"root_group": {"name": "", "path": "", "id": md5(""),
                       "groups": [{"name", "path": "::name", "id", "groups": [...], "checks": [...]}],
                       "checks": [{"name", "path": "::name", "id": md5(path), "passes", "fails"}]},
        "options":    {"summaryTrendStats": [...], "summaryTimeUnit": "", "noColor": False},
        "state":      {"isStdOutTTY", "isStdErrTTY", "testRunDurationMs", "workers"?: [...]},
        "metrics":    {key: {"type", "contains", "values", "thresholds"?: {source: {"ok"}}}}}

   ``state.workers`` is surge's own, added by the coordinator
   (:func:`surge.coordinator.report.worker_entries`): one entry per worker, in index order,
   with its name, requests, failures, CPU, loop lag and saturation, and :func:`text_summary`
   prints them as a table when there is more than one worker (:func:`worker_lines`).

   ``values`` holds what the sink reports (:mod:`surge.common.metrics`): trends exactly the
   ``summaryTrendStats``, counters ``count``/``rate``, rates ``rate``/``passes``/``fails``,
   gauges ``value``/``min``/``max``. Time is in milliseconds, as recorded. The result is
   plain JSON: NaN and infinities become 0, integral counts become ints, and quantiles
   (``med``, ``p(N)``) are rounded to 12 significant digits to drop interpolation noise.

   ``root_group`` is k6's group tree: a group's path is its parent's, ``::`` and its name
   (the root's is ``""``), a check's path is its group's, ``::`` and its name, and ids are
   the md5 of the path. Groups and checks are listed in the order first seen. The tree is
   read from the check keys (:func:`surge.common.api.split_check_key`): a check made in
   group ``::checkout::pay`` comes keyed ``::checkout::pay\x1f<name>``, and a zero-count
   key with an empty name only says that the group ran.

2. :func:`text_summary` renders that data the way k6's ``textSummary`` (k6 < 1.0, the
   "classic" summary in ``js/summary.js``) does. The formatting rules are k6's, down to
   its rounding quirks, because CI logs and people's eyes are used to them:

   - durations (ms in): ``0s``; below 1 µs ``Nns``; below 1 ms ``N.NNµs``; below 1 s
     ``N.NNms``; below 1 min ``N.NNs``; then ``NmNs`` and ``NhNmNs`` (whole seconds).
     Decimals are *truncated* to 2 and trailing zeros dropped (``45.129`` -> ``45.12ms``).
     With ``summaryTimeUnit`` ``s``/``ms``/``us`` every duration uses that unit, 2 decimals.
   - data: decimal units ``B kB MB GB TB PB``, one decimal below 10 (``1.2 MB``, ``40 kB``).
   - rates: percent truncated to 2 decimals (``98.50%``), then ``✓ passes ✗ fails``.
   - other numbers: up to 6 decimals, trailing zeros dropped (``66.666667``).

   Metrics are sorted by name with each sub-metric (``name{tag:value}``) right under its
   parent, shown as ``{ tag:value }`` two columns further in. Names are padded with dots
   to a common width and each value column to its widest entry. A metric with thresholds
   gets ``✓`` (all held) or ``✗`` (any crossed) in front.

   One deliberate difference from k6: trailing spaces left by column padding are stripped.

Metric order in ``data["metrics"]`` is the same grouped order (a plain string sort would
put ``foo_bar`` between ``foo`` and ``foo{tag:x}``, since ``_`` sorts before ``{``).
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Any

from surge.common.api import split_check_key
from surge.common.metrics import DEFAULT_TREND_STATS, SHARE_METRICS, MetricDef, Sink

if TYPE_CHECKING:
    from surge.results.thresholds import Verdict

__all__ = [
    "SeriesResult",
    "build_summary",
    "humanize_bytes",
    "humanize_duration",
    "humanize_value",
    "text_summary",
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


def _series_sort_key(key: str) -> tuple[str, str, str, str]:
    """k6's order: by parent metric name, then sub-metric, so sub-metrics follow their parent.

    k6 uses ``localeCompare``, which ignores case at first; casefold then raw keeps that
    order while staying deterministic.
    """
    parent, brace, rest = key.partition("{")
    sub = brace + rest
    return parent.casefold(), parent, sub.casefold(), sub


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
        values = s.sink.values(duration_s, stats)
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


# --------------------------------------------------------------------------- number formatting
# JavaScript's number formatting, reproduced so that surge prints what k6 prints.

_DECIMAL_CTX = Context(prec=80)


def _js_str(x: float) -> str:
    """``Number.prototype.toString``: shortest round-trip digits, exponent only outside 1e-7..1e21."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(float(x))
    if "e" not in text:
        return text
    mantissa, exp_text = text.split("e")
    exp = int(exp_text)
    if -7 < exp < 21:
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if exp > 0 else '-'}{abs(exp)}"


def _to_fixed(x: float, digits: int) -> str:
    """``Number.prototype.toFixed``: exact binary value, ties away from zero."""
    if not math.isfinite(x) or abs(x) >= 1e21:
        return _js_str(x)
    if x == 0:
        x = 0.0  # -0 prints as 0
    quantum = Decimal(1).scaleb(-digits)
    return format(Decimal(x).quantize(quantum, rounding=ROUND_HALF_UP, context=_DECIMAL_CTX), "f")


def _fixed_no_trailing_zeros(x: float, digits: int) -> str:
    """k6's ``toFixedNoTrailingZeros``: ``parseFloat(x.toFixed(digits)).toString()``."""
    return _js_str(float(_to_fixed(x, digits)))


def _trunc_no_trailing_zeros(x: float, digits: int) -> str:
    mult = 10.0**digits
    return _fixed_no_trailing_zeros(math.trunc(mult * x) / mult, digits)


_TIME_UNITS: dict[str, tuple[str, float]] = {"s": ("s", 0.001), "ms": ("ms", 1.0), "us": ("µs", 1000.0)}


def humanize_duration(ms: float, time_unit: str = "") -> str:
    """A duration given in milliseconds, as k6 prints it: ``45.12ms``, ``1.2s``, ``1m3s``.

    ``time_unit`` (k6's ``summaryTimeUnit``: ``s``, ``ms`` or ``us``) fixes the unit; an
    empty or unknown one picks the unit by size.
    """
    if time_unit in _TIME_UNITS:
        unit, coef = _TIME_UNITS[time_unit]
        return _to_fixed(ms * coef, 2) + unit
    if not math.isfinite(ms):
        return _js_str(ms)
    if ms == 0:
        return "0s"
    if ms < 0.001:
        return f"{math.trunc(ms * 1_000_000)}ns"
    if ms < 1:
        return _trunc_no_trailing_zeros(ms * 1000, 2) + "µs"
    if ms < 1000:
        return _trunc_no_trailing_zeros(ms, 2) + "ms"
    result = _trunc_no_trailing_zeros(math.fmod(ms, 60000) / 1000, 0 if ms > 60000 else 2) + "s"
    minutes = math.trunc(ms / 60000)
    if minutes < 1:
        return result
    result = f"{minutes % 60}m{result}"
    hours = math.trunc(minutes / 60)
    if hours < 1:
        return result
    return f"{hours}h{result}"


_DATA_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def humanize_bytes(n: float) -> str:
    """A byte count in decimal units, as k6 prints it: ``512 B``, ``1.2 MB``, ``40 kB``."""
    if not math.isfinite(n):
        return _js_str(n) + " B"
    if n < 10:
        return _js_str(n) + " B"
    e = math.floor(math.log(n) / math.log(1000))
    suffix = _DATA_UNITS[min(e, len(_DATA_UNITS) - 1)]
    val = math.floor(n / 1000.0**e * 10 + 0.5) / 10
    return _to_fixed(val, 1 if val < 10 else 0) + " " + suffix


def humanize_value(value: float, metric_type: str, contains: str, time_unit: str = "") -> str:
    """One value of a metric, formatted by its type and what it contains (k6's ``humanizeValue``)."""
    if metric_type == "rate":
        # Truncated, not rounded: 99.999 % must not print as 100.00 %.
        return _to_fixed(math.trunc(value * 100 * 100) / 100, 2) + "%"
    if contains == "data":
        return humanize_bytes(value)
    if contains == "time":
        return humanize_duration(value, time_unit)
    return _fixed_no_trailing_zeros(value, 6)


def _share(value: float) -> str:
    """A share of one as a percentage with up to 2 decimals: 0.0047 -> ``0.47%``, 1.25 -> ``125%``."""
    return _fixed_no_trailing_zeros(value * 100, 2) + "%"


# --------------------------------------------------------------------------- text

_SUCC, _FAIL, _DETAILS, _GROUP = "✓", "✗", "↳", "█"
_GREEN, _RED, _CYAN, _FAINT = 32, 31, 36, 2

Decorate = Callable[..., str]


def _plain(text: str, *codes: int) -> str:
    return text


def _ansi(text: str, *codes: int) -> str:
    return "\x1b[" + ";".join(str(c) for c in codes) + "m" + text + "\x1b[0m"


def _width(text: str) -> int:
    # Widths are taken before colouring, so only Unicode normalisation matters here.
    return len(unicodedata.normalize("NFKC", text))


def _check_lines(indent: str, check: Mapping[str, Any], deco: Decorate) -> str:
    name, passes, fails = str(check.get("name", "")), check.get("passes", 0), check.get("fails", 0)
    if not fails:
        return deco(f"{indent}{_SUCC} {name}", _GREEN)
    total = passes + fails
    pct = math.floor(100 * passes / total) if total else 0
    return deco(
        f"{indent}{_FAIL} {name}\n{indent} {_DETAILS}  {pct}% — {_SUCC} {passes} / {_FAIL} {fails}",
        _RED,
    )


def _group_lines(indent: str, group: Mapping[str, Any], deco: Decorate) -> list[str]:
    lines: list[str] = []
    if group.get("name"):
        lines.append(f"{indent}{_GROUP} {group['name']}\n")
        indent += "  "
    checks = group.get("checks") or []
    lines.extend(_check_lines(indent, c, deco) for c in checks)
    if checks:
        lines.append("")
    for sub in group.get("groups") or []:
        lines.extend(_group_lines(indent, sub, deco))
    return lines


def _display_name(key: str) -> tuple[str, str]:
    """(extra indent, shown name): ``a{b:c}`` is shown as ``{ b:c }`` two columns in."""
    pos = key.find("{")
    if pos >= 0:
        return "  ", "{ " + key[pos + 1 : -1] + " }"
    return "", key


def _non_trend_cells(metric: Mapping[str, Any], time_unit: str) -> list[str]:
    mtype, contains = metric.get("type", ""), metric.get("contains", "default")
    vals = metric.get("values") or {}

    def fmt(name: str) -> str:
        return humanize_value(vals.get(name, 0), mtype, contains, time_unit)

    if mtype == "counter":
        return [fmt("count"), fmt("rate") + "/s"]
    if mtype == "gauge":
        return [fmt("value"), "min=" + fmt("min"), "max=" + fmt("max")]
    if mtype == "rate":
        return [fmt("rate"), f"{_SUCC} {_js_str(vals.get('passes', 0))}", f"{_FAIL} {_js_str(vals.get('fails', 0))}"]
    return ["[no data]"]


def _pad(text: str, width: int) -> str:
    return " " * (width - _width(text))


def _metric_lines(
    indent: str,
    metrics: Mapping[str, Mapping[str, Any]],
    trend_stats: Sequence[str],
    time_unit: str,
    deco: Decorate,
) -> list[str]:
    names = sorted(metrics, key=_series_sort_key)
    name_width = max((_width(a + b) for a, b in map(_display_name, names)), default=0)

    # First pass: every cell as text, so each column can be padded to its widest entry.
    trend_cells: dict[str, list[str]] = {}
    other_cells: dict[str, list[str]] = {}
    trend_widths = [0] * len(trend_stats)
    other_widths = [0, 0, 0]
    for name in names:
        metric = metrics[name]
        if metric.get("type") == "trend":
            vals = metric.get("values") or {}
            share = name.split("{", 1)[0] in SHARE_METRICS
            cells = [
                _js_str(vals.get(stat, 0))
                if stat == "count"
                else _share(vals.get(stat, 0))
                if share
                else humanize_value(vals.get(stat, 0), "trend", metric.get("contains", "default"), time_unit)
                for stat in trend_stats
            ]
            trend_cells[name] = cells
            trend_widths = [max(w, _width(c)) for w, c in zip(trend_widths, cells)]
        else:
            cells = _non_trend_cells(metric, time_unit)
            other_cells[name] = cells
            for i, cell in enumerate(cells):
                other_widths[i] = max(other_widths[i], _width(cell))

    lines: list[str] = []
    for name in names:
        if name in trend_cells:
            data = " ".join(
                f"{stat}={deco(cell, _CYAN)}{_pad(cell, w)}"
                for stat, cell, w in zip(trend_stats, trend_cells[name], trend_widths)
            )
        else:
            first, *extras = other_cells[name]
            parts = [deco(first, _CYAN) + _pad(first, other_widths[0])]
            if len(extras) == 1:
                parts.append(deco(extras[0], _CYAN, _FAINT))
            else:
                parts.extend(
                    deco(cell, _CYAN, _FAINT) + _pad(cell, w) for cell, w in zip(extras, other_widths[1:])
                )
            data = " ".join(parts)

        thresholds = metrics[name].get("thresholds")
        if thresholds is None:
            mark = " "
        elif all(t.get("ok") for t in thresholds.values()):
            mark = deco(_SUCC, _GREEN)
        else:
            mark = deco(_FAIL, _RED)
        sub_indent, shown = _display_name(name)
        dots = deco("." * (name_width - _width(shown) - _width(sub_indent) + 3) + ":", _FAINT)
        lines.append(f"{indent}{sub_indent}{mark} {shown}{dots} {data}".rstrip())
    return lines


def text_summary(data: Mapping[str, Any], indent: str = " ", enable_colors: bool = False) -> str:
    """k6's ``textSummary(data, {indent, enableColors})``: checks, then one line per metric.

    ``data`` is :func:`build_summary`'s result, possibly edited by a ``handle_summary``;
    missing parts are treated as empty. Trend columns follow
    ``data["options"]["summaryTrendStats"]``. Colours are ANSI: ✓ green, ✗ red, values cyan.
    """
    opts = data.get("options") or {}
    trend_stats: Sequence[str] = opts.get("summaryTrendStats") or DEFAULT_TREND_STATS
    time_unit = str(opts.get("summaryTimeUnit") or "")
    deco: Decorate = _ansi if enable_colors else _plain

    lines = _group_lines(indent + "    ", data.get("root_group") or {}, deco)
    lines += _metric_lines(indent + "  ", data.get("metrics") or {}, trend_stats, time_unit, deco)
    lines += worker_lines(indent + "  ", (data.get("state") or {}).get("workers") or [], deco)
    return "\n".join(lines)


_WORKER_COLUMNS = ("worker", "requests", "failed", "cpu avg", "cpu max", "loop lag avg", "loop lag max", "saturated")


def worker_lines(indent: str, workers: Sequence[Mapping[str, Any]], deco: Decorate = _plain) -> list[str]:
    """surge's own: one row per worker (``state.workers``), when there is more than one.

    So that a load machine that was the bottleneck is seen: its CPU near a core, its event
    loop late, its seconds marked saturated; such a row is flagged ``overloaded`` (the
    entry's ``overloaded``, decided by the coordinator). Entries missing a figure show 0.
    """
    if len(workers) < 2:
        return []

    def num(w: Mapping[str, Any], key: str) -> float:
        v = w.get(key, 0)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else 0.0

    rows = []
    for w in workers:
        requests, failures = num(w, "requests"), num(w, "failures")
        rows.append([
            str(w.get("name", "")),
            _js_str(requests),
            f"{_js_str(failures)} ({_share(failures / requests if requests else 0.0)})",
            _share(num(w, "cpuMean")),
            _share(num(w, "cpuMax")),
            humanize_duration(num(w, "loopLagMeanMs")),
            humanize_duration(num(w, "loopLagMaxMs")),
            _share(num(w, "saturatedShare")),
        ])
    widths = [max(_width(c) for c in col) for col in zip(_WORKER_COLUMNS, *rows)]
    out = ["", indent + "  ".join(h + _pad(h, wd) for h, wd in zip(_WORKER_COLUMNS, widths)).rstrip()]
    for w, row in zip(workers, rows):
        cells = "  ".join(deco(c, _CYAN) + _pad(c, wd) if i else c + _pad(c, wd) for i, (c, wd) in enumerate(zip(row, widths)))
        flag = "  " + deco("overloaded", _RED) if w.get("overloaded") else ""
        if w.get("lost"):
            flag += "  " + deco("lost", _RED)
        out.append((indent + cells).rstrip() + flag)
    return out

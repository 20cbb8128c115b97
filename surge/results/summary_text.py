"""The end-of-test text, in k6 v1's layout, from ``handleSummary``'s ``data``.

k6 1.x prints its summary in two steps, and so does this module, so that each can be held
against k6's own code (``internal/output/summary`` builds a *report*; ``internal/js/summary.js``
renders it; both unchanged from k6 1.2 to 2.2):

1. :func:`build_report` regroups ``data`` (:func:`surge.results.summary.build_summary`'s
   k6-shaped dict, possibly edited by a ``handle_summary``) into k6's report::

       {"thresholds": {key: {"metric": M, "thresholds": [{"source", "ok"}]}},
        "checks":     {"metrics": {"checks_total": M, "checks_succeeded": M, "checks_failed": M},
                       "ordered_checks": [{"name", "passes", "fails"}]} or None,
        "metrics":    {"custom": {key: M}, "http": ..., "execution": ..., "network": ...,
                       "browser": ..., "web_vitals": ..., "grpc": ..., "websocket": ...,
                       "surge": ...},
        "groups":     {name: {"checks", "metrics", "groups"}},      # full mode only
        "scenarios":  {name: {"checks", "metrics", "groups"}}}      # full mode only

   with ``M = {"name", "type", "contains", "values"}``. A metric's section is k6's, by name
   *prefix* as k6 tests it (``http_req*`` the nine HTTP metrics, ``vus``, ``vus_max``,
   ``iterations``, ``iteration_duration``, ``dropped_iterations`` EXECUTION (with surge's own
   ``interrupted_iterations`` and ``iteration_duration_from_schedule``), ``data_sent``,
   ``data_received`` NETWORK, ``browser_``, ``browser_web_vital_``, ``grpc_``, ``ws_``), and
   anything else the scenario declared is CUSTOM. surge's own ``surge_*`` metrics (the load
   generator's CPU, loop lag, saturation, dropped samples, script errors) get a SURGE section
   of their own, after k6's: they describe the generator, not the system under test, and read
   best next to the per-worker table that follows. Compact mode leaves out ``checks`` (shown as
   the CHECKS block instead), ``group_duration`` and the six HTTP phase trends
   (``http_req_blocked``, ``_connecting``, ``_tls_handshaking``, ``_sending``, ``_waiting``,
   ``_receiving``); full mode shows the phases. Sub-metrics (``http_req_duration{scenario:x}``)
   stay in their parent's section, right under it.

   Checks: TOTAL RESULTS lists every check by name, a name used in two groups once with both
   counts (k6 keys that list by name), in ``root_group``'s order: each group's checks, then
   its sub-groups' (k6's is the order first seen across groups, which the tree does not keep).
   ``checks_total`` is a counter over the run's duration, ``checks_succeeded`` and
   ``checks_failed`` rates shown ``N out of M``.

   Full mode adds a section per group (``GROUP: name``, from ``root_group``: that group's own
   checks, the series tagged with its path such as ``http_req_duration{group:::checkout}``,
   and its sub-groups as ``↳ GROUP:`` inside it) and per scenario (``SCENARIO: name``, sorted:
   every series tagged ``scenario:name``, shown under its base name, the other tags kept as a
   sub-metric). Those series come from ``data["metrics"]`` (thresholds on
   ``...{scenario:x}`` put them there) and from ``extra_metrics``, series the caller keeps out
   of ``data`` but wants shown here (the session's own per-scenario series). k6 puts a named
   scenario's groups inside its SCENARIO section; surge's group tree is not split by
   scenario, so its groups are always top-level GROUP sections.

2. :func:`render_report` prints it as k6 does: ``█ THRESHOLDS`` first (per metric, each
   expression with ``✓``/``✗`` and the value it was judged on, ``'p(95)<500' p(95)=102.46ms``; a
   sub-metric whose parent also has thresholds is shown as ``{tag:value}`` one level in), then
   ``█ TOTAL RESULTS`` (the checks block, then each non-empty section, CUSTOM first as k6 puts
   it), then the groups and scenarios. Names are padded with dots to a common width per block
   (at least three), each value column to its widest entry; a sub-metric is shown as
   ``{ tag:value }`` two columns in. Levels are two spaces each. Colours, when enabled, are
   k6's: titles bold, values cyan, dots faint, ✓ green, ✗ red.

   Two deliberate differences from k6's bytes: trailing spaces (left by k6's padding, and after
   its titles) are stripped, and the text starts and ends without blank lines (k6's wrapper
   prints one before and two after; surge's CLI prints its own). Two k6 quirks are not copied:
   a report with a single metric name prints its dots (k6's width computation gives up there),
   and an empty one prints nothing instead of throwing.

:func:`worker_lines` is surge's own table, appended after the k6 part by :func:`text_summary`;
in full mode the per-endpoint table (``█ ENDPOINTS``, :func:`surge.results.endpoints.endpoint_lines`,
from ``data["endpoints"]``) comes between the two.
Pure: no I/O.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from surge.common.metrics import DEFAULT_TREND_STATS, SHARE_METRICS, parse_series_name
from surge.results.endpoints import endpoint_lines
from surge.results.humanize import humanize_duration, humanize_value, js_str, share

__all__ = ["SUMMARY_MODES", "SummaryMode", "build_report", "render_report", "series_sort_key", "text_summary",
           "worker_lines"]

SummaryMode = Literal["compact", "full"]
SUMMARY_MODES: tuple[SummaryMode, ...] = ("compact", "full")

# --------------------------------------------------------------------------- the report

# k6's sections, in the order its report object holds them (the renderer then moves CUSTOM first).
_SECTIONS = ("custom", "http", "execution", "network", "browser", "web_vitals", "grpc", "websocket", "surge")
_HTTP = ("http_reqs", "http_req_failed", "http_req_duration", "http_req_blocked", "http_req_connecting",
         "http_req_tls_handshaking", "http_req_sending", "http_req_waiting", "http_req_receiving")
# (+ surge's own interrupted_iterations; its iteration_duration_from_schedule is there by k6's prefix rule)
_EXECUTION = ("vus", "vus_max", "iterations", "iteration_duration", "dropped_iterations", "interrupted_iterations")
_NETWORK = ("data_sent", "data_received")
_SKIPPED_ALWAYS = ("checks", "group_duration")
_SKIPPED_COMPACT = (*_SKIPPED_ALWAYS, "http_req_blocked", "http_req_connecting", "http_req_receiving",
                    "http_req_sending", "http_req_tls_handshaking", "http_req_waiting")


def series_sort_key(key: str) -> tuple[str, str, str, str]:
    """k6's order: by parent metric name, then sub-metric, so sub-metrics follow their parent.

    k6 uses ``localeCompare``, which ignores case at first; casefold then raw keeps that
    order while staying deterministic.
    """
    parent, brace, rest = key.partition("{")
    sub = brace + rest
    return parent.casefold(), parent, sub.casefold(), sub


def _section(key: str) -> str:
    # k6 tests prefixes (strings.HasPrefix), so a sub-metric goes with its parent.
    if key.startswith("surge_"):
        return "surge"
    if key.startswith(_HTTP):
        return "http"
    if key.startswith(_EXECUTION):
        return "execution"
    if key.startswith(_NETWORK):
        return "network"
    if key.startswith("browser_web_vital_"):
        return "web_vitals"
    if key.startswith("browser_"):
        return "browser"
    if key.startswith("grpc_"):
        return "grpc"
    if key.startswith("ws_"):
        return "websocket"
    return "custom"


def _metric(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": str(entry.get("type", "")), "contains": str(entry.get("contains", "default")),
            "values": dict(entry.get("values") or {})}


def _sections(entries: Mapping[str, Mapping[str, Any]], mode: str) -> dict[str, dict[str, Any]]:
    skipped = _SKIPPED_COMPACT if mode == "compact" else _SKIPPED_ALWAYS
    out: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for key, entry in entries.items():
        if not key.startswith(skipped):
            out[_section(key)][key] = _metric(key, entry)
    return out


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def _checks_block(passes: float, fails: float, duration_s: float, ordered: list[dict[str, Any]]) -> dict[str, Any]:
    """k6's ``Checks``: the three checks_* metrics and the checks in order."""
    total = passes + fails

    def rate(name: str, ok: float, not_ok: float) -> dict[str, Any]:
        return {"name": name, "type": "rate", "contains": "default",
                "values": {"rate": ok / total if total else 0.0, "passes": ok, "fails": not_ok}}

    return {
        "metrics": {
            "checks_total": {"name": "checks_total", "type": "counter", "contains": "default",
                             "values": {"count": total, "rate": total / duration_s if duration_s > 0 else 0.0}},
            "checks_succeeded": rate("checks_succeeded", passes, fails),
            "checks_failed": rate("checks_failed", fails, passes),
        },
        "ordered_checks": ordered,
    }


def _all_checks(group: Mapping[str, Any], into: dict[str, dict[str, Any]]) -> None:
    for check in group.get("checks") or []:
        name = str(check.get("name", ""))
        found = into.setdefault(name, {"name": name, "passes": 0, "fails": 0})
        found["passes"] += _num(check.get("passes"))
        found["fails"] += _num(check.get("fails"))
    for sub in group.get("groups") or []:
        _all_checks(sub, into)


def _tagged(entries: Mapping[str, Mapping[str, Any]], tag: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Series carrying ``tag``, by its value, re-keyed without it: ``m{scenario:a,x:y}`` -> a: ``m{x:y}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, entry in entries.items():
        if "{" not in key:
            continue
        try:
            parsed = parse_series_name(key)
        except ValueError:
            continue  # a key a handle_summary made up; TOTAL RESULTS still shows it as it is
        value = dict(parsed.tags).get(tag)
        if value is None or (tag == "group" and "scenario" in dict(parsed.tags)):
            continue
        rest = ",".join(f"{k}:{v}" for k, v in parsed.tags if k != tag)
        out.setdefault(value, {})[parsed.metric + ("{" + rest + "}" if rest else "")] = dict(entry)
    return out


def _group_report(group: Mapping[str, Any], by_path: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  duration_s: float) -> dict[str, Any]:
    checks: list[dict[str, Any]] = [
        {"name": str(c.get("name", "")), "passes": _num(c.get("passes")), "fails": _num(c.get("fails"))}
        for c in group.get("checks") or []
    ]
    block = None
    if checks:
        block = _checks_block(sum(c["passes"] for c in checks), sum(c["fails"] for c in checks), duration_s, checks)
    return {
        "checks": block,
        "metrics": _sections(by_path.get(str(group.get("path", "")), {}), "full"),
        "groups": {str(g.get("name", "")): _group_report(g, by_path, duration_s) for g in group.get("groups") or []},
    }


def build_report(data: Mapping[str, Any], summary_mode: SummaryMode = "compact",
                 extra_metrics: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """k6's summary report from ``data`` (see the module docstring); missing parts are empty."""
    if summary_mode not in SUMMARY_MODES:
        raise ValueError(f"summary mode must be one of {', '.join(SUMMARY_MODES)}, got {summary_mode!r}")
    metrics: Mapping[str, Mapping[str, Any]] = data.get("metrics") or {}
    root: Mapping[str, Any] = data.get("root_group") or {}
    duration_s = _num((data.get("state") or {}).get("testRunDurationMs")) / 1000.0

    thresholds = {
        key: {"metric": _metric(key, entry),
              "thresholds": [{"source": str(src), "ok": bool((res or {}).get("ok"))}
                             for src, res in entry["thresholds"].items()]}
        for key, entry in metrics.items() if entry.get("thresholds")
    }

    ordered: dict[str, dict[str, Any]] = {}
    _all_checks(root, ordered)
    checks = None
    if "checks" in metrics or ordered:
        vals = (metrics.get("checks") or {}).get("values") or {}
        if "checks" in metrics:
            passes, fails = _num(vals.get("passes")), _num(vals.get("fails"))
        else:
            passes = sum(c["passes"] for c in ordered.values())
            fails = sum(c["fails"] for c in ordered.values())
        checks = _checks_block(passes, fails, duration_s, list(ordered.values()))

    report: dict[str, Any] = {"thresholds": thresholds, "checks": checks, "metrics": _sections(metrics, summary_mode)}
    if summary_mode == "full":
        every = {**(extra_metrics or {}), **metrics}
        by_path = _tagged(every, "group")
        report["groups"] = {str(g.get("name", "")): _group_report(g, by_path, duration_s)
                            for g in root.get("groups") or []}
        scenarios = {}
        for name, entries in sorted(_tagged(every, "scenario").items()):
            check_entry = entries.get("checks")
            block = None
            if check_entry is not None:
                vals = check_entry.get("values") or {}
                block = _checks_block(_num(vals.get("passes")), _num(vals.get("fails")), duration_s, [])
            scenarios[name] = {"checks": block, "metrics": _sections(entries, "full"), "groups": {}}
        report["scenarios"] = scenarios
    return report


# --------------------------------------------------------------------------- rendering

_SUCC, _FAIL, _SUBTITLE, _TITLE = "✓", "✗", "↳", "█"
_BOLD, _FAINT, _RED, _GREEN, _WHITE, _CYAN = 1, 2, 31, 32, 37, 36

Decorate = Callable[..., str]


def _plain(text: str, *codes: int) -> str:
    return text


def _ansi(text: str, *codes: int) -> str:
    return "\x1b[" + ";".join(str(c) for c in codes) + "m" + text + "\x1b[0m"


def _width(text: str) -> int:
    # Widths are taken before colouring, so only Unicode normalisation matters here.
    return len(unicodedata.normalize("NFKC", text))


def _pad(text: str, width: int) -> str:
    return " " * (width - _width(text))


def _indent(level: int) -> str:
    """k6's ``RenderContext(level).indent``: two spaces per level, one level past the context's."""
    return " " * ((level + 1) * 2)


def _display_name(key: str) -> str:
    pos = key.find("{")
    return key if pos < 0 else "  { " + key[pos + 1 : -1] + " }"


class _Info:
    """k6's ``computeSummaryInfo``: every cell of a block as text, and each column's width."""

    def __init__(self, metrics: Mapping[str, Mapping[str, Any]], level: int, trend_stats: Sequence[str],
                 time_unit: str) -> None:
        self.trend_stats = list(trend_stats)
        self.name_width = max((_width(_indent(level) + _display_name(n)) for n in metrics), default=0)
        self.trend_cols: dict[str, list[str]] = {}
        self.trend_keys: dict[str, dict[str, str]] = {}
        self.trend_widths = [0] * len(self.trend_stats)
        self.values: dict[str, str] = {}
        self.extras: dict[str, list[str]] = {}
        self.value_width = 0
        self.extra_widths: list[int] = []
        for name in sorted(metrics, key=series_sort_key):
            metric = metrics[name]
            vals = metric.get("values") or {}
            if metric.get("type") == "trend":
                fmt = self._trend_formatter(name, metric, time_unit)
                self.trend_keys[name] = {k: fmt(k, v) for k, v in vals.items() if k not in self.trend_stats}
                cols = [fmt(stat, vals.get(stat, 0)) for stat in self.trend_stats]
                self.trend_cols[name] = cols
                self.trend_widths = [max(w, _width(c)) for w, c in zip(self.trend_widths, cols)]
            else:
                main, *extras = _non_trend_cells(metric, time_unit)
                self.values[name], self.extras[name] = main, extras
                self.value_width = max(self.value_width, _width(main))
                for i, extra in enumerate(extras):
                    if i == len(self.extra_widths):
                        self.extra_widths.append(0)
                    self.extra_widths[i] = max(self.extra_widths[i], _width(extra))

    @staticmethod
    def _trend_formatter(name: str, metric: Mapping[str, Any], time_unit: str) -> Callable[[str, Any], str]:
        as_share = name.split("{", 1)[0] in SHARE_METRICS  # surge_cpu: a share of one core, as a percentage
        contains = str(metric.get("contains", "default"))

        def fmt(stat: str, value: Any) -> str:
            v = _num(value)
            if stat == "count":
                return js_str(v)
            return share(v) if as_share else humanize_value(v, "trend", contains, time_unit)

        return fmt


def _non_trend_cells(metric: Mapping[str, Any], time_unit: str) -> list[str]:
    mtype, contains = metric.get("type", ""), str(metric.get("contains", "default"))
    vals = metric.get("values") or {}

    def fmt(name: str) -> str:
        return humanize_value(_num(vals.get(name)), str(mtype), contains, time_unit)

    if mtype == "counter":
        return [fmt("count"), fmt("rate") + "/s"]
    if mtype == "gauge":
        return [fmt("value"), "min=" + fmt("min"), "max=" + fmt("max")]
    if mtype == "rate":
        passes, fails = _num(vals.get("passes")), _num(vals.get("fails"))
        return [fmt("rate"), f"{js_str(passes)} out of {js_str(passes + fails)}"]
    return ["[no data]"]


def _metric_line(name: str, metric: Mapping[str, Any], info: _Info, level: int, deco: Decorate) -> str:
    shown = _display_name(name)
    dots = max(3, info.name_width - _width(shown) - _width(_indent(level)) + 3)
    if metric.get("type") == "trend":
        data = " ".join(
            f"{stat}={deco(col, _CYAN)}{_pad(col, w)}"
            for stat, col, w in zip(info.trend_stats, info.trend_cols[name], info.trend_widths)
        )
    else:
        value, extras = info.values[name], info.extras[name]
        data = deco(value, _CYAN) + _pad(value, info.value_width)
        if len(extras) == 1:
            data += " " + deco(extras[0], _FAINT, _CYAN)
        elif extras:
            data += " " + " ".join(deco(e, _FAINT, _CYAN) + _pad(e, w) for e, w in zip(extras, info.extra_widths))
    return _indent(level) + shown + deco("." * dots + ":", _FAINT, _WHITE) + " " + data


def _metric_block(metrics: Mapping[str, Mapping[str, Any]], level: int, info: _Info, deco: Decorate,
                  *, sort: bool = True) -> list[str]:
    names = sorted(metrics, key=series_sort_key) if sort else list(metrics)
    return [_metric_line(n, metrics[n], info, level, deco) for n in names]


class _Renderer:
    """k6's ``ReportBuilder``: a list of items, each a line or ``"\\n"`` (which ends a block)."""

    def __init__(self, trend_stats: Sequence[str], time_unit: str, deco: Decorate) -> None:
        self.trend_stats, self.time_unit, self.deco = trend_stats, time_unit, deco

    def title(self, text: str, level: int, prefix: str = _TITLE) -> str:
        return _indent(level) + f"{prefix} {self.bold(text)} \n"

    def bold(self, text: str) -> str:
        return self.deco(text, _BOLD)

    def thresholds(self, thresholds: Mapping[str, Mapping[str, Any]]) -> list[str]:
        level = 1
        metrics = {name: {**t["metric"], "thresholds": t["thresholds"]} for name, t in thresholds.items()}
        info = _Info(metrics, level, self.trend_stats, self.time_unit)
        out: list[str] = []
        for name in sorted(metrics, key=series_sort_key):
            parent = name.split("{", 1)[0]
            nested = parent != name and parent in metrics
            inner = level + 1 if nested else level
            out.append(_indent(inner) + (name[len(parent):] if nested else name))
            for threshold in metrics[name]["thresholds"]:
                out.append(_indent(inner) + self._threshold_line(metrics[name], threshold, info))
            out.append("\n")
        return out

    def _threshold_line(self, metric: Mapping[str, Any], threshold: Mapping[str, Any], info: _Info) -> str:
        source = str(threshold.get("source", "")).strip()
        agg = source.split("=", 1)[0].split(">", 1)[0].split("<", 1)[0].strip()
        name = metric["name"]
        if metric.get("type") == "trend":
            if agg in info.trend_stats:
                value = info.trend_cols[name][info.trend_stats.index(agg)]
            else:
                value = info.trend_keys[name].get(agg, "undefined")  # what k6 prints for a stat it lacks
        elif metric.get("type") == "counter" and agg != "count":
            value = info.extras[name][0]
        else:
            value = info.values[name]
        mark = self.deco(_SUCC, _GREEN) if threshold.get("ok") else self.deco(_FAIL, _RED)
        return " ".join([mark, self.deco(f"'{source}'", _WHITE), self.deco(agg, _WHITE) + "=" + self.deco(value, _CYAN)])

    def checks(self, checks: Mapping[str, Any] | None, level: int) -> list[str]:
        """k6's ``_renderChecks``: the checks_* lines, a blank, each check, a blank."""
        if checks is None:
            return []
        level += 1
        deco = self.deco
        lines: list[str] = []
        for check in checks.get("ordered_checks") or []:
            name, passes, fails = check["name"], check["passes"], check["fails"]
            if not fails:
                lines.append(_indent(level) + deco(f"{_SUCC} {name}", _GREEN))
                continue
            pct = math.floor(100 * passes / (passes + fails))
            detail = f"{_SUBTITLE}  {pct}% — {_SUCC} {js_str(passes)} / {_FAIL} {js_str(fails)}"
            # k6 indents the detail line as its level + (level + 1), not one level past the check.
            lines.append(_indent(level) + deco(f"{_FAIL} {name}", _RED) + "\n" + _indent(2 * level) + deco(detail, _RED))
        metrics = checks["metrics"]
        info = _Info(metrics, level, self.trend_stats, self.time_unit)
        return [*_metric_block(metrics, level, info, deco, sort=False), "\n", *lines, "\n"]

    def metrics(self, sections: Mapping[str, Mapping[str, Any]], level: int) -> list[str]:
        """k6's ``_renderMetrics``: one width for all sections; CUSTOM first, empty ones left out."""
        level += 1
        every = {k: v for section in sections.values() for k, v in section.items()}
        info = _Info(every, level, self.trend_stats, self.time_unit)
        order = [s for s in sections if s == "custom"] + [s for s in sections if s != "custom"]
        out: list[str] = []
        for name in order:
            if sections[name]:
                out.append(_indent(level) + self.bold(name.upper()))
                out.extend(_metric_block(sections[name], level, info, self.deco))
                out.append("\n")
        return out

    def group_content(self, group: Mapping[str, Any], level: int) -> list[str]:
        out = [*self.checks(group.get("checks"), level), *self.metrics(group.get("metrics") or {}, level)]
        for name, sub in (group.get("groups") or {}).items():
            out.append(self.title(f"GROUP: {name}", level + 1, prefix=_SUBTITLE))
            out.extend(self.group_content(sub, level + 1))
        return out

    def render(self, report: Mapping[str, Any]) -> str:
        sections: list[tuple[str, list[str]]] = []
        if report.get("thresholds"):
            sections.append(("THRESHOLDS", self.thresholds(report["thresholds"])))
        sections.append(("TOTAL RESULTS", [*self.checks(report.get("checks"), 0),
                                           *self.metrics(report.get("metrics") or {}, 0)]))
        for name, group in (report.get("groups") or {}).items():
            sections.append((f"GROUP: {name}", self.group_content(group, 0)))
        for name, scenario in sorted((report.get("scenarios") or {}).items()):
            sections.append((f"SCENARIO: {name}", self.group_content(scenario, 0)))
        if len(sections) == 1 and not sections[0][1]:
            return ""  # nothing to show (k6 would throw)
        text = ""
        for title, content in sections:
            for item in [self.title(title, 0), *content, "\n"]:
                text += item if item == "\n" else "\n" + item
        return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def render_report(report: Mapping[str, Any], *, trend_stats: Sequence[str] = DEFAULT_TREND_STATS,
                  time_unit: str = "", enable_colors: bool = False) -> str:
    """k6's ``textSummary(report, options)`` for a :func:`build_report` report (see the module docstring)."""
    return _Renderer(trend_stats, time_unit, _ansi if enable_colors else _plain).render(report)


def text_summary(
    data: Mapping[str, Any],
    indent: str = "",
    enable_colors: bool = False,
    *,
    summary_mode: SummaryMode = "compact",
    extra_metrics: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The end-of-test text for ``data``: k6 v1's summary, then surge's per-worker table.

    ``data`` is :func:`surge.results.summary.build_summary`'s result, possibly edited by a
    ``handle_summary``; missing parts are treated as empty. Trend columns follow
    ``data["options"]["summaryTrendStats"]``, durations ``summaryTimeUnit``. ``indent`` is put
    before every line that is not blank (k6 1.x's own ``textSummary`` takes the option and
    ignores it; the default ``""`` prints what k6 prints). ``summary_mode`` is k6's
    ``--summary-mode``; ``extra_metrics`` (entries shaped like ``data["metrics"]``'s) only feed
    full mode's GROUP and SCENARIO sections. Raises ``ValueError`` for an unknown mode.
    """
    opts = data.get("options") or {}
    report = build_report(data, summary_mode, extra_metrics)
    deco: Decorate = _ansi if enable_colors else _plain
    text = render_report(report, trend_stats=opts.get("summaryTrendStats") or DEFAULT_TREND_STATS,
                         time_unit=str(opts.get("summaryTimeUnit") or ""), enable_colors=enable_colors)
    lines = text.split("\n") if text else []
    if summary_mode == "full":
        lines += endpoint_lines(_indent(0), data.get("endpoints"), time_unit=str(opts.get("summaryTimeUnit") or ""),
                                bold=lambda text: deco(text, _BOLD))
    lines += worker_lines(_indent(1), (data.get("state") or {}).get("workers") or [], deco)[0 if text else 1 :]
    return "\n".join(indent + line if line else line for line in lines)


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
        return _num(w.get(key, 0))

    rows = []
    for w in workers:
        requests, failures = num(w, "requests"), num(w, "failures")
        rows.append([
            str(w.get("name", "")),
            js_str(requests),
            f"{js_str(failures)} ({share(failures / requests if requests else 0.0)})",
            share(num(w, "cpuMean")),
            share(num(w, "cpuMax")),
            humanize_duration(num(w, "loopLagMeanMs")),
            humanize_duration(num(w, "loopLagMaxMs")),
            share(num(w, "saturatedShare")),
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

"""The per-endpoint table, merged from the fleet: its rows, its overflow hint, and its text.

Workers ship each row's sinks as ``surge_endpoint_*`` series (:mod:`surge.common.endpoint_stats`);
the coordinator's aggregate hands every such series to :meth:`EndpointTable.add` instead of
merging it with the others, so the rows stay out of the timeline and of k6's ``metrics``. The
table caps the merged rows again (workers may each have admitted different first names), and
folds what comes late into the same ``__overflow__`` row. Memory: at most ``max_rows + 1``
rows, each a t-digest, two byte counts and its failures by kind (bounded by the workers' kind
cap), and a few overflowed names for the hint.

In the summary data (surge's own key beside k6's, like ``timeline``)::

    "endpoints": {"maxRows": 100,
                  "rows": [{"name", "method", "scenario", "group", "requests", "failures",
                            "failuresByKind": [{"status", "errorCode", "count"}],
                            "rate",                       # requests per second of the run
                            "duration": {"avg", "min", "med", "p(90)", "p(95)", "p(99)", "max"},  # ms
                            "dataSent", "dataReceived"}],  # bytes
                  "overflow": null | {"requests", "examples": [url...], "suggestions": [template...]}}

Rows come sorted by scenario, group, name and method, the overflow row last. The text
(:func:`endpoint_lines`) is Locust's statistics table, printed by ``--summary-mode full``; the
HTML report and the dashboard draw the same rows. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from surge.common.endpoint_stats import (
    DATA_RECEIVED,
    DATA_SENT,
    DEFAULT_MAX_ENDPOINTS,
    DURATION,
    FAILURES,
    OVERFLOW_NAME,
    OVERFLOW_NAMES,
    EndpointKey,
    EndpointRow,
    RowCap,
    parse_endpoint_key,
    suggest_name,
)
from surge.common.metrics import MAX_FAILURE_KINDS, CounterSink, Sink, TrendSink, trend_stat
from surge.results.humanize import humanize_bytes, humanize_duration, js_str

ROW_STATS = ("avg", "min", "med", "p(90)", "p(95)", "p(99)", "max")
MAX_HINT_EXAMPLES = 10  # overflowed names kept for the hint, from all workers together
MAX_SUGGESTIONS = 3


class _Merged:
    __slots__ = ("duration", "sent", "received", "failures")

    def __init__(self) -> None:
        self.duration = TrendSink()
        self.sent = 0.0
        self.received = 0.0
        self.failures: dict[tuple[str, str], float] = {}


_UNSEEN = object()


def _number(stat: str, value: float) -> float:
    # quantiles are sketch estimates: twelve significant digits drop interpolation noise
    return float(f"{value:.12g}") if stat == "med" or stat.startswith("p(") else float(value)


class EndpointTable:
    """The fleet's endpoint rows, capped at ``max_rows`` (see the module docstring)."""

    def __init__(self, max_rows: int = DEFAULT_MAX_ENDPOINTS) -> None:
        self.max_rows = max_rows
        self._cap = RowCap(max_rows, max_examples=MAX_HINT_EXAMPLES)
        self._rows: dict[EndpointRow, _Merged] = {}
        # Every report carries the same few keys again: parsing each (a regex walk) was most of
        # the cost of a report with a hundred rows. Bounded, so that keys that keep changing
        # (a hostile worker) are parsed each time rather than remembered.
        self._parsed: dict[str, EndpointKey | None] = {}
        self._memo_max = 16 * (max_rows + 1) + 64
        self.refused = 0  # series that were not endpoint keys, or not of their metric's type

    def add(self, key: str, sink: Sink) -> None:
        """Merge one ``surge_endpoint_*`` series of a report (anything else is counted and dropped)."""
        parsed = self._parsed.get(key, _UNSEEN)
        if parsed is _UNSEEN:
            parsed = parse_endpoint_key(key)
            if len(self._parsed) < self._memo_max:
                self._parsed[key] = parsed
        if not isinstance(parsed, EndpointKey):
            self.refused += 1
            return
        if parsed.metric == OVERFLOW_NAMES:
            self._cap.note_example(parsed.row.name)
            return
        if not isinstance(sink, TrendSink if parsed.metric == DURATION else CounterSink):
            self.refused += 1
            return
        row = self._cap.admit(parsed.row)
        merged = self._rows.get(row)
        if merged is None:
            merged = self._rows[row] = _Merged()
        if isinstance(sink, TrendSink):
            merged.duration.merge(sink)
        elif parsed.metric == FAILURES:
            kind = (parsed.status, parsed.error_code)
            if kind not in merged.failures and len(merged.failures) >= MAX_FAILURE_KINDS:
                kind = ("other", "other")  # as a worker lumps them: a row's kinds stay bounded
            merged.failures[kind] = merged.failures.get(kind, 0.0) + sink.total
        elif parsed.metric == DATA_SENT:
            merged.sent += sink.total
        elif parsed.metric == DATA_RECEIVED:
            merged.received += sink.total

    def rows(self, duration_s: float) -> list[dict[str, Any]]:
        """Every row as summary data, sorted (the overflow row last); rates per second of ``duration_s``."""
        out = []
        order = sorted(self._rows, key=lambda r: (r.is_overflow, r.scenario, r.group, r.name, r.method))
        for row in order:
            m = self._rows[row]
            sk = m.duration.sketch
            kinds = sorted(m.failures.items(), key=lambda kv: (-kv[1], kv[0]))
            failures = sum(m.failures.values())
            out.append({
                "name": row.name, "method": row.method, "scenario": row.scenario, "group": row.group,
                "requests": sk.count,
                "failures": int(failures),
                "failuresByKind": [{"status": s, "errorCode": e, "count": int(n)} for (s, e), n in kinds],
                "rate": sk.count / duration_s if duration_s > 0 else 0.0,
                "duration": {stat: _number(stat, trend_stat(sk, stat)) for stat in ROW_STATS},
                "dataSent": m.sent,
                "dataReceived": m.received,
            })
        return out

    def overflow(self) -> dict[str, Any] | None:
        """What the overflow row holds and how to avoid it, or None when nothing overflowed."""
        over = next((m for r, m in self._rows.items() if r.is_overflow), None)
        if over is None:
            return None
        examples = list(self._cap.examples)
        suggestions: list[str] = []
        for name in examples:
            s = suggest_name(name)
            if s != name and s not in suggestions and len(suggestions) < MAX_SUGGESTIONS:
                suggestions.append(s)
        return {"requests": over.duration.sketch.count, "examples": examples, "suggestions": suggestions}

    def summary(self, duration_s: float) -> dict[str, Any]:
        """The summary data's ``endpoints`` section."""
        return {"maxRows": self.max_rows, "rows": self.rows(duration_s), "overflow": self.overflow()}


def overflow_hint(endpoints: Mapping[str, Any]) -> str | None:
    """The words, said once at the end of a run, when requests went to the overflow row."""
    over = endpoints.get("overflow")
    if not isinstance(over, Mapping):
        return None
    examples = [str(e) for e in over.get("examples") or []][:3]
    suggestions = [str(s) for s in over.get("suggestions") or []]
    text = (f"{js_str(float(over.get('requests') or 0))} request(s) went to the {OVERFLOW_NAME!r} row of the "
            f"per-endpoint table: the run had more than {endpoints.get('maxRows')} distinct request names "
            f"(maxEndpoints)")
    if examples:
        text += ", e.g. " + ", ".join(examples)
    text += ". A URL with an id in it makes a name per id: name such requests by a template"
    if suggestions:
        template = suggestions[0].replace("${}", "{}")
        text += (f", e.g. vu.http.get(vu.http.url({template!r}, ...)), named {suggestions[0]!r}"
                 + ("" if len(suggestions) == 1 else " (others: " + ", ".join(suggestions[1:]) + ")"))
    text += ", or give tags={'name': ...}; or raise --max-endpoints."
    return text


# --------------------------------------------------------------------------- text

_COLUMNS = ("method", "name", "reqs", "fails", "req/s", *ROW_STATS, "recv", "sent")


def _cells(row: Mapping[str, Any], time_unit: str) -> list[str]:
    d = row.get("duration") or {}
    requests, failures = float(row.get("requests") or 0), float(row.get("failures") or 0)
    share = f" ({failures / requests:.0%})" if requests else ""
    return [
        str(row.get("method", "")), str(row.get("name", "")),
        js_str(requests), js_str(failures) + share, f"{float(row.get('rate') or 0):.2f}",
        *(humanize_duration(float(d.get(stat) or 0), time_unit) for stat in ROW_STATS),
        humanize_bytes(float(row.get("dataReceived") or 0)), humanize_bytes(float(row.get("dataSent") or 0)),
    ]


def _widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(c) for c in col) for col in zip(header, *rows)]


def _line(indent: str, cells: Sequence[str], widths: Sequence[int]) -> str:
    return (indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths))).rstrip()


def endpoint_lines(indent: str, endpoints: Mapping[str, Any] | None, *, time_unit: str = "",
                   bold: Callable[[str], str] = str) -> list[str]:
    """The ENDPOINTS section: Locust's statistics table per scenario and group, then failures by kind.

    One set of column widths for every block, so the blocks read as one table. Empty when
    ``endpoints`` has no rows (a ``handle_summary`` may have dropped them). ``bold`` dresses the
    title (the text summary's colours, when on). The overflow hint
    is not here: the coordinator says it once, on stderr (:func:`overflow_hint`).
    """
    rows = [r for r in (endpoints or {}).get("rows") or [] if isinstance(r, Mapping)]
    if not rows:
        return []
    cells = [_cells(r, time_unit) for r in rows]
    widths = _widths(_COLUMNS, cells)
    inner = indent + "  "
    out = ["", "", indent + "█ " + bold("ENDPOINTS")]
    last: tuple[str, str] | None = None
    for r, row_cells in zip(rows, cells):
        where = (str(r.get("scenario", "")), str(r.get("group", "")))
        if where != last:
            last = where
            title = "  ".join(p for p in (f"SCENARIO: {where[0]}" if where[0] else "",
                                          f"GROUP: {where[1]}" if where[1] else "") if p)
            out += ["", inner + title] if title else [""]
            out.append(_line(inner, _COLUMNS, widths))
        out.append(_line(inner, row_cells, widths))
    failed = [(r, k) for r in rows for k in r.get("failuresByKind") or [] if isinstance(k, Mapping)]
    if failed:
        header = ("method", "name", "status", "error_code", "count")
        kinds = [[str(r.get("method", "")), str(r.get("name", "")), str(k.get("status", "")),
                  str(k.get("errorCode", "")), js_str(float(k.get("count") or 0))] for r, k in failed]
        kind_widths = _widths(header, kinds)
        out += ["", inner + "failures by kind", _line(inner, header, kind_widths)]
        out += [_line(inner, k, kind_widths) for k in kinds]
    return out

"""``--out csv=FILE``: one row per series per interval point, in k6's csv output columns and more.

k6's csv output (``internal/output/csv`` in k6's source) writes, with default options, the
header ``metric_name,timestamp,metric_value``, one column per indexable default system tag
(sorted), then ``extra_tags`` (the other tags, ``k=v&k=v``) and ``metadata``. surge keeps
those columns, in that order, and fills them as k6 does: ``timestamp`` is whole Unix
seconds (k6's default ``timeFormat: unix``), ``metric_value`` has six decimals (Go's ``%f``);
``metadata`` stays empty (surge has no sample metadata).

A row is one interval of the fleet, not one sample (see :mod:`surge.results.ndjson` for what
``metric_value`` is per type and what a tagged row means). surge appends its own columns:

=================  =================================================================
``elapsed_s``      the interval's end, seconds after the run's start (exact: use it
                   rather than ``timestamp`` for sub-second report intervals)
``type``           counter, rate, gauge or trend
``count``...       every statistic of the point, empty where the type has none:
                   ``count, rate`` (counter: per second), ``passes, fails, rate`` (rate),
                   ``value, min, max`` (gauge), ``count, avg, min, med, max, p(90), p(95),
                   p(99)`` (trend)
=================  =================================================================

Pure: this module formats rows; :mod:`surge.results.outfiles` writes them as the run goes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta

from surge.results.ndjson import IntervalRow, interval_rows
from surge.results.timeline import Point

__all__ = ["CSV_HEADER", "TAG_COLUMNS", "csv_header", "csv_rows"]

# k6's DefaultSystemTagSet minus its non-indexable tags (vu, iter), sorted as k6 sorts them.
TAG_COLUMNS = ("check", "error", "error_code", "expected_response", "group", "method", "name", "proto",
               "scenario", "service", "status", "subproto", "tls_version", "url")
STAT_COLUMNS = ("count", "rate", "passes", "fails", "value", "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)")
CSV_HEADER = ("metric_name", "timestamp", "metric_value", *TAG_COLUMNS, "extra_tags", "metadata",
              "elapsed_s", "type", *STAT_COLUMNS)


def _line(cells: Iterable[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(cells))
    return buf.getvalue()


def csv_header() -> str:
    """The header line (with its newline)."""
    return _line(CSV_HEADER)


def _stat(x: float | None) -> str:
    """Shortest round-trip digits, whole numbers without ``.0``; empty for no value."""
    if x is None or not math.isfinite(x):
        return ""
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(float(x))


def _row(row: IntervalRow, start: datetime) -> list[str]:
    tags = dict(row.tags)
    at = start + timedelta(seconds=row.t_s)
    extra = "&".join(f"{k}={v}" for k, v in row.tags if k not in TAG_COLUMNS)
    return [row.metric, str(math.floor(at.timestamp())), f"{row.value:f}",
            *(tags.get(col, "") for col in TAG_COLUMNS), extra, "",
            _stat(row.t_s), row.type, *(_stat(row.stats.get(col)) for col in STAT_COLUMNS)]


def csv_rows(points: Iterable[Point], types: Mapping[str, str], start: datetime) -> Iterator[str]:
    """The lines (each with its newline) of ``points``; ``start`` is the run's wall-clock start."""
    for point in points:
        for row in interval_rows(point, types):
            yield _line(_row(row, start))

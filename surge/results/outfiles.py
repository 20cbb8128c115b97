"""``--out KIND=FILE`` and ``--junit FILE``: the files, opened before the load and written as the run goes.

Each ``--out`` is a :class:`~surge.results.live.LiveView`. Its file is created (parent
directories too, as ``--summary-export`` does) when the view is built, before any worker
receives the plan, so an unwritable path ends the command at once (exit 104, as k6 fails an
output at start) instead of after an hour of load. Every ``update`` (about once a second)
appends the interval points closed since the last one and flushes, so a long run's file grows
steadily and a coordinator killed outright leaves every point up to its last second; ``close``
appends the points the end of the run closed (from the summary data's ``timeline``) and closes
the file. A view keeps only how many points it wrote and which metrics it announced: memory
does not grow with the run (the timeline itself is bounded, :mod:`surge.results.timeline`).

Times need the run's wall-clock start: the first snapshot gives it (now minus its
``elapsed_s``, which counts from the fleet's shared start instant); a run too short for any
snapshot takes now minus the summary's duration.

``--junit`` is written once, at the end, by the coordinator's report, from the final
threshold verdicts (:mod:`surge.results.junit`): :func:`check_writable` only tries the path
before the load.

This module is the I/O; the formats are :mod:`surge.results.ndjson` and :mod:`surge.results.csv_out`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from surge.common.errors import ExitCode, SurgeError
from surge.common.metrics import MetricDef
from surge.results.csv_out import csv_header, csv_rows
from surge.results.live import LiveSnapshot
from surge.results.ndjson import MetricInfo, catalog, ndjson_lines
from surge.results.thresholds import MetricThresholds
from surge.results.timeline import Point, TimelineData, TimelineFormatError, timeline_from_json

__all__ = ["OUT_KINDS", "IntervalFile", "OutSpec", "OutputError", "check_writable", "open_outputs", "parse_out",
           "write_junit"]

OUT_KINDS = ("json", "csv")


class OutputError(SurgeError):
    """An output file that cannot be written (found before the load: exit 104)."""

    exit_code = ExitCode.INVALID_CONFIG


@dataclass(frozen=True)
class OutSpec:
    kind: str  # one of OUT_KINDS
    path: Path

    def __str__(self) -> str:
        return f"{self.kind}={self.path}"


def parse_out(value: str) -> OutSpec:
    """``json=FILE`` or ``csv=FILE``; raises ``ValueError`` saying what was expected."""
    kind, sep, path = value.partition("=")
    kind = kind.strip()
    expected = f"expected KIND=FILE with KIND one of {', '.join(OUT_KINDS)} (e.g. json=results.ndjson)"
    if kind not in OUT_KINDS:
        raise ValueError(f"{expected}; {kind!r} is not a known output" if kind else f"{expected}, got {value!r}")
    if not sep or not path.strip():
        raise ValueError(f"{expected}; {value!r} names no FILE")
    return OutSpec(kind, Path(path))


def _open(path: Path, what: str, mode: str = "w") -> TextIO:
    if path.is_dir():
        raise OutputError(f"{what}: cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "a":
            return open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller
        return open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - held open for the run
    except OSError as exc:
        raise OutputError(f"{what}: cannot write {path}: {exc.strerror or exc}",
                          hint="pick a path in a directory you can write to") from None


def check_writable(path: Path, what: str) -> None:
    """Raise :class:`OutputError` now if ``path`` could not be written later; change nothing that exists."""
    existed = path.exists()
    _open(path, what, "a").close()  # appending nothing: an existing file keeps its content until the end
    if not existed:
        path.unlink(missing_ok=True)


def write_junit(path: Path, text: str) -> None:
    """Write the JUnit document (parents created); OSError propagates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class IntervalFile:
    """One ``--out`` file, a live view appending closed interval points (see the module docstring)."""

    def __init__(self, spec: OutSpec, metrics: Mapping[str, MetricInfo],
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self._metrics = metrics
        self._clock = wall_clock
        self._start: datetime | None = None
        self._written = 0  # points of the timeline already in the file
        self._seen: set[str] = set()  # metrics announced (json)
        self._file: TextIO | None = _open(spec.path, f"--out {spec}")
        if spec.kind == "csv":
            self._write([csv_header()])

    def _lines(self, points: Sequence[Point], types: Mapping[str, str]) -> Iterator[str]:
        assert self._start is not None
        if self.spec.kind == "json":
            return (line + "\n" for line in ndjson_lines(points, types, self._start, self._metrics, self._seen))
        return csv_rows(points, types, self._start)

    def _write(self, lines: Iterable[str]) -> None:
        if self._file is None:
            return
        self._file.writelines(lines)
        self._file.flush()

    def _append_new(self, timeline: TimelineData) -> None:
        points = timeline.points
        if len(points) > self._written:
            self._write(self._lines(points[self._written:], timeline.types))
            self._written = len(points)

    def update(self, snapshot: LiveSnapshot) -> None:
        if self._start is None:
            self._start = datetime.fromtimestamp(self._clock() - snapshot.elapsed_s, timezone.utc)
        self._append_new(snapshot.timeline)

    def close(self, summary: Mapping[str, Any] | None) -> None:
        try:
            saved = (summary or {}).get("timeline")
            if saved is not None:
                if self._start is None:
                    duration_ms = float((summary or {}).get("state", {}).get("testRunDurationMs", 0.0))
                    self._start = datetime.fromtimestamp(self._clock() - duration_ms / 1000.0, timezone.utc)
                try:
                    final = timeline_from_json(saved)
                except TimelineFormatError:
                    return  # what was written stands
                self._append_new(final)
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None


def open_outputs(specs: Sequence[OutSpec], metric_defs: Mapping[str, MetricDef],
                 thresholds: Sequence[MetricThresholds], wall_clock: Callable[[], float] = time.time,
                 ) -> list[IntervalFile]:
    """Create every ``--out`` file now; if one cannot be, close the others and raise :class:`OutputError`."""
    paths = [spec.path.resolve() for spec in specs]
    twice = sorted({str(s) for s, p in zip(specs, paths) if paths.count(p) > 1})
    if twice:
        raise OutputError(f"--out: one file given twice ({', '.join(twice)}); each output needs a file of its own")
    metrics = catalog(metric_defs, thresholds)
    views: list[IntervalFile] = []
    try:
        for spec in specs:
            views.append(IntervalFile(spec, metrics, wall_clock))
    except OutputError:
        for view in views:
            view.close(None)
        raise
    return views

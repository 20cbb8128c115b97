"""The HTML report as a file: ``--report FILE.html`` after a run, ``surge report RESULTS.json`` after that.

The I/O around :mod:`surge.results.report_data` (the document) and
:mod:`surge.results.html_report` (the page): read a saved ``--summary-export`` file, write the page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from surge.common.errors import ExitCode, SurgeError
from surge.results.html_report import render_html
from surge.results.report_data import ReportDataError, report_document


class ReportInputError(SurgeError):
    """A results file that cannot be rendered: names the file and the key."""

    exit_code = ExitCode.INVALID_CONFIG


def render_report(summary: Mapping[str, Any], *, title: str, source: str = "summary") -> str:
    """The page of a finished run's summary data (raises :class:`ReportDataError`)."""
    return render_html(report_document(summary, title=title, source=source))


def write_report(path: Path, summary: Mapping[str, Any], *, title: str) -> None:
    """Write the report of ``summary`` to ``path`` (its directory made if missing); raises OSError."""
    page = render_report(summary, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def report_from_file(results: Path, output: Path) -> None:
    """``surge report``: render the saved ``--summary-export`` file ``results`` into ``output``."""
    try:
        text = results.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportInputError(f"{results}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{results}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                               hint="give the file --summary-export wrote") from None
    try:
        page = render_report(data, title=results.stem, source=str(results))
    except ReportDataError as exc:
        raise ReportInputError(str(exc), hint="give the file surge run --summary-export FILE wrote") from None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportInputError(f"{output}: cannot write the report ({exc.strerror or exc})") from None

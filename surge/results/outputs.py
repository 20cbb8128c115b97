"""Where the summary goes: k6's ``handleSummary`` return contract, and the JSON form.

A scenario's ``handle_summary(data)`` returns a mapping from destination to content, as in k6::

    {"stdout": text_summary(data), "summary.json": summary_json(data), "/tmp/report.html": html}

- ``"stdout"`` and ``"stderr"`` are written to those streams;
- any other key is a file path, relative paths resolved against ``base_dir`` (the scenario's
  directory, chosen by the caller), missing parent directories created, the file replaced;
- a value is ``str`` (written as UTF-8, newlines untranslated) or ``bytes`` (written as is).

The whole mapping is checked before anything is written, so a typo in one entry cannot
leave half a set of reports behind: :func:`write_outputs` raises ``ValueError`` listing
every bad entry. Once writing starts it goes on past a failing destination, as k6 does,
so the terminal summary still appears when a report path is unwritable; the failures are
raised together afterwards as one :class:`SummaryOutputError`.

This is the only module of ``surge.results`` that touches streams or the file system.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

__all__ = ["SummaryOutputError", "summary_json", "write_outputs"]


class SummaryOutputError(OSError):
    """Some destinations could not be written; ``failures`` pairs each key with its error.

    ``written`` lists the files that were written before and after the failures.
    """

    def __init__(self, failures: list[tuple[str, OSError]], written: list[Path]) -> None:
        self.failures = failures
        self.written = written
        lines = "\n".join(f"  - {key!r}: {err}" for key, err in failures)
        super().__init__(f"could not save some summary outputs:\n{lines}")


def summary_json(data: Mapping[str, Any]) -> str:
    """The summary data as k6-style pretty JSON, ending in a newline."""
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _problems(result: object) -> list[str]:
    if not isinstance(result, Mapping):
        return [f"expected a dict of destination -> str or bytes, got {type(result).__name__}"]
    problems: list[str] = []
    for key, value in result.items():
        if not isinstance(key, str):
            problems.append(f"key {key!r} is a {type(key).__name__}; expected 'stdout', 'stderr' or a file path")
        elif not key:
            problems.append("key '' is empty; expected 'stdout', 'stderr' or a file path")
        elif not isinstance(value, (str, bytes)):
            problems.append(f"value for {key!r} is a {type(value).__name__}; expected str or bytes")
    return problems


def _write_stream(stream: TextIO, content: str | bytes) -> None:
    if isinstance(content, str):
        stream.write(content)
    else:
        binary = getattr(stream, "buffer", None)
        if binary is not None:
            stream.flush()  # keep order with text already written
            binary.write(content)
            binary.flush()
            return
        stream.write(content.decode("utf-8", errors="replace"))
    stream.flush()


def write_outputs(
    result: Mapping[str, str | bytes], *, stdout: TextIO, stderr: TextIO, base_dir: Path
) -> list[Path]:
    """Write what ``handle_summary`` returned; return the files written, in the mapping's order.

    Raises ``ValueError`` naming every bad key or value before writing anything, and
    :class:`SummaryOutputError` after writing everything it could if some destination failed.
    """
    problems = _problems(result)
    if problems:
        raise ValueError("handle_summary returned an invalid result: " + "; ".join(problems))

    written: list[Path] = []
    failures: list[tuple[str, OSError]] = []
    for key, content in result.items():
        try:
            if key == "stdout":
                _write_stream(stdout, content)
            elif key == "stderr":
                _write_stream(stderr, content)
            else:
                path = Path(key)
                if not path.is_absolute():
                    path = base_dir / path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
                written.append(path)
        except OSError as err:
            failures.append((key, err))
    if failures:
        raise SummaryOutputError(failures, written)
    return written

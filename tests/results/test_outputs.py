"""write_outputs follows k6's handleSummary contract; summary_json is k6-style JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from surge.results.outputs import SummaryOutputError, summary_json, write_outputs


class BinaryBackedText(io.TextIOWrapper):
    """A text stream with a ``.buffer``, like sys.stdout."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8")

    def value(self) -> bytes:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        return raw.getvalue()


def write(result: Any, base_dir: Path) -> tuple[list[Path], str, str]:
    out, err = io.StringIO(), io.StringIO()
    paths = write_outputs(result, stdout=out, stderr=err, base_dir=base_dir)
    return paths, out.getvalue(), err.getvalue()


def test_stdout_and_stderr_go_to_their_streams(tmp_path: Path) -> None:
    paths, out, err = write({"stdout": "summary ✓\n", "stderr": "warn\n"}, tmp_path)
    assert (paths, out, err) == ([], "summary ✓\n", "warn\n")
    assert list(tmp_path.iterdir()) == []


def test_files_relative_absolute_and_nested(tmp_path: Path) -> None:
    absolute = tmp_path / "abs" / "report.txt"
    result = {
        "summary.json": '{"a": "é"}\n',
        "reports/deep/er/report.html": "<html>\r\n</html>",
        str(absolute): b"\x00\xffraw",
    }
    paths, out, err = write(result, tmp_path / "base")
    assert paths == [
        tmp_path / "base" / "summary.json",
        tmp_path / "base" / "reports" / "deep" / "er" / "report.html",
        absolute,
    ]
    assert paths[0].read_bytes() == '{"a": "é"}\n'.encode()
    assert paths[1].read_bytes() == b"<html>\r\n</html>"  # newlines untranslated
    assert absolute.read_bytes() == b"\x00\xffraw"
    assert (out, err) == ("", "")


def test_existing_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("a much longer old content")
    write({"s.txt": "new"}, tmp_path)
    assert (tmp_path / "s.txt").read_text() == "new"


def test_bytes_to_a_stream_with_a_buffer_are_written_raw(tmp_path: Path) -> None:
    out, err = BinaryBackedText(), BinaryBackedText()
    out.write("text first, ")
    write_outputs({"stdout": b"\xffbytes", "stderr": "é"}, stdout=out, stderr=err, base_dir=tmp_path)
    assert out.value() == b"text first, \xffbytes"
    assert err.value() == "é".encode()


def test_bytes_to_a_text_only_stream_are_decoded(tmp_path: Path) -> None:
    _, out, _ = write({"stdout": "✓ ok".encode()}, tmp_path)
    assert out == "✓ ok"


@pytest.mark.parametrize(
    ("result", "named"),
    [
        ({"good.txt": "x", 3: "y"}, "key 3"),
        ({"good.txt": "x", "bad.txt": None}, "'bad.txt'"),
        ({"good.txt": "x", "bad.txt": {"a": 1}}, "'bad.txt'"),
        ({"good.txt": "x", "": "y"}, "key ''"),
        ({"good.txt": "x", "stdout": 12}, "'stdout'"),
        (["good.txt"], "got list"),
        (None, "got NoneType"),
    ],
)
def test_bad_entries_raise_before_anything_is_written(tmp_path: Path, result: Any, named: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        write_outputs(result, stdout=out, stderr=err, base_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert out.getvalue() == err.getvalue() == ""


def test_every_bad_entry_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        write({"a": 1, "b": 2.5, "ok": "x"}, tmp_path)
    assert "'a'" in str(info.value) and "'b'" in str(info.value) and "'ok'" not in str(info.value)


def test_an_unwritable_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a directory is needed")
    out, err = io.StringIO(), io.StringIO()
    result = {"blocker/report.json": "{}", "stdout": "summary", "ok.txt": "fine"}
    with pytest.raises(SummaryOutputError) as info:
        write_outputs(result, stdout=out, stderr=err, base_dir=tmp_path)
    assert [key for key, _ in info.value.failures] == ["blocker/report.json"]
    assert info.value.written == [tmp_path / "ok.txt"]
    assert "blocker/report.json" in str(info.value)
    assert out.getvalue() == "summary"
    assert (tmp_path / "ok.txt").read_text() == "fine"


def test_summary_json() -> None:
    data = {"metrics": {"b": {"values": {"rate": 0.5}}, "a": {}}, "name": "✓ ok"}
    text = summary_json(data)
    assert text.endswith("}\n")
    assert "✓ ok" in text  # not \u2713
    assert text.index('"b"') < text.index('"a"')  # order kept
    assert text.splitlines()[1] == '  "metrics": {'
    assert json.loads(text) == data

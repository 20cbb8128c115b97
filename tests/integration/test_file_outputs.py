"""``--out json=FILE --out csv=FILE --junit FILE`` on real runs: the files agree with the summary."""

from __future__ import annotations

import csv
import time
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.integration.conftest import FIXTURES, Target, run_surge, start, stop, target_env

SHORT = ["-e", "RAMP_UP=1s", "-e", "HOLD=2s", "-e", "RAMP_DOWN=1s", "-e", "TARGET_VUS=10"]


def test_ticket_purchase_writes_ndjson_csv_and_junit_that_agree_with_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"  # not there yet: created, as --summary-export's is
    res = run_surge("run", "-w", "2", "-q", "--demo-target", *SHORT, "--summary-export", str(out / "s.json"),
                    "--out", f"json={out / 'a.ndjson'}", "--out", f"csv={out / 'b.csv'}", "--junit", str(out / "j.xml"),
                    "scenarios/ticket_purchase.py")
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "s.json").read_text())
    count = summary["metrics"]["http_reqs"]["values"]["count"]
    assert count > 0

    lines = [json.loads(line) for line in (out / "a.ndjson").read_text().splitlines()]
    points = [p for p in lines if p["type"] == "Point"]
    assert sum(p["data"]["value"] for p in points if p["metric"] == "http_reqs" and not p["data"]["tags"]) == count
    announced = [p["metric"] for p in lines if p["type"] == "Metric"]
    assert len(announced) == len(set(announced)) and {p["metric"] for p in points} == set(announced)
    dur = [p["data"]["stats"] for p in points if p["metric"] == "http_req_duration" and not p["data"]["tags"]]
    assert sum(s["count"] for s in dur) == count  # one duration per request
    assert any(p["metric"] == "vus" and p["data"]["value"] > 0 for p in points)

    with (out / "b.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    whole = [r for r in rows if r["metric_name"] == "http_reqs" and not r["scenario"] and not r["extra_tags"]]
    assert sum(float(r["metric_value"]) for r in whole) == count
    assert len(rows) == len(points)  # the same rows, in both formats

    suite = ET.parse(out / "j.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    expected = [(key, source) for key, entry in summary["metrics"].items() for source in entry.get("thresholds", {})]
    assert sorted((c.get("classname"), c.get("name")) for c in cases) == sorted(expected)
    assert len(cases) == 6 and suite.get("failures") == "0" and not suite.findall(".//failure")


def test_a_crossed_threshold_is_a_junit_failure_naming_the_observed_value(error_target: Target, tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    res = run_surge("run", "-w", "2", "-q", *target_env(error_target), "-e", "DEAD_URL=http://127.0.0.1:9",
                    "--junit", str(junit), str(FIXTURES / "failing_target.py"))
    assert res.returncode == 99, res.stderr
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("1", "1")
    (case,) = root.iter("testcase")
    assert (case.get("classname"), case.get("name")) == ("http_req_failed", "rate<0.01")
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "rate=1, expected rate<0.01"  # every request failed


def test_a_bad_out_or_an_unwritable_path_fails_before_any_load(target: Target, tmp_path: Path) -> None:
    scenario = str(FIXTURES / "quick_purchase.py")
    bad = run_surge("run", "-w", "1", "-q", *target_env(target), "--out", "xml=a.xml", scenario)
    assert bad.returncode == 2 and "--out" in bad.stderr and "expected KIND=FILE" in bad.stderr, bad.stderr
    (tmp_path / "a-file").write_text("")
    for flag, value in (("--out", f"csv={tmp_path / 'a-file' / 'b.csv'}"), ("--junit", str(tmp_path / "a-file" / "j.xml"))):
        res = run_surge("run", "-w", "1", "-q", *target_env(target), flag, value, scenario)
        assert res.returncode == 104 and f"{flag}" in res.stderr and "cannot write" in res.stderr, res.stderr
    assert target.stats()["requests"] == 0


def test_the_ndjson_grows_while_the_run_goes_and_a_killed_coordinator_leaves_whole_lines(
        target: Target, tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    proc = start("run", "-w", "1", "-q", *target_env(target), "--out", f"json={path}", str(FIXTURES / "long_running.py"))
    try:
        deadline = time.monotonic() + 60
        times: set[str] = set()
        while len(times) < 3:  # three intervals written while the run still goes
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no interval points appeared"
            time.sleep(0.2)
            if path.exists():
                text = path.read_text()
                times = {json.loads(line)["data"]["time"] for line in text.splitlines()[:-1] if '"Point"' in line}
        proc.kill()  # no close(): what is in the file is what the updates flushed
        proc.communicate(timeout=60)
    finally:
        stop(proc)
    lines = path.read_text().splitlines()
    assert all(json.loads(line)["type"] in ("Metric", "Point") for line in lines)  # no torn line
    assert len({json.loads(line)["data"]["time"] for line in lines if '"Point"' in line}) >= 3

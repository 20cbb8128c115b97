"""Each k6 executor against a real target: the served request count is what the plan implies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FIXTURES, Target, _start_target, run_surge, target_env

pytestmark = pytest.mark.integration

EXAMPLES = "scenarios/examples"


def _run(target: Target, tmp_path: Path, example: str, workers: int, *env: str) -> dict:  # type: ignore[type-arg]
    export = tmp_path / "summary.json"
    pairs = [x for kv in env for x in ("-e", kv)]
    res = run_surge("run", "-w", str(workers), "--summary-export", str(export), *target_env(target), *pairs,
                    f"{EXAMPLES}/{example}.py")  # fmt: skip
    assert res.returncode == 0, res.stderr
    metrics: dict = json.loads(export.read_text())["metrics"]  # type: ignore[type-arg]
    return metrics


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_per_vu_iterations_serve_exactly_vus_times_iterations(target: Target, tmp_path: Path, workers: int) -> None:
    m = _run(target, tmp_path, "per_vu_iterations", workers, "VUS=4", "ITERATIONS=7")
    assert target.stats()["requests"] == m["iterations"]["values"]["count"] == 28
    assert m["vus_max"]["values"]["value"] == 4


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shared_iterations_serve_exactly_the_total(target: Target, tmp_path: Path, workers: int) -> None:
    m = _run(target, tmp_path, "shared_iterations", workers, "VUS=5", "ITERATIONS=31")
    assert target.stats()["requests"] == m["iterations"]["values"]["count"] == 31


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_constant_arrival_rate_serves_rate_times_duration(target: Target, tmp_path: Path, workers: int) -> None:
    m = _run(target, tmp_path, "constant_arrival_rate", workers, "RATE=20", "DURATION=2s", "PRE_VUS=6", "MAX_VUS=12")
    served = target.stats()["requests"]
    assert abs(served - 40) <= workers and "dropped_iterations" not in m
    assert m["vus_max"]["values"]["min"] == 6  # the pre-allocated VUs, from the first instant
    assert m["iterations"]["values"]["count"] == served
    assert m["iteration_duration_from_schedule"]["values"]["min"] > 0


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_ramping_arrival_rate_serves_the_integral(target: Target, tmp_path: Path, workers: int) -> None:
    m = _run(target, tmp_path, "ramping_arrival_rate", workers, "PEAK=20", "RAMP=1s", "HOLD=1s", "PRE_VUS=6")
    served = target.stats()["requests"]
    assert abs(served - 40) <= workers  # 10 up, 20 held, 10 down
    assert m["iterations"]["values"]["count"] == served


@pytest.fixture
def stalling_target() -> Iterator[Target]:
    proc, tgt = _start_target(["--latency-median-ms", "2000", "--latency-sigma", "0"])
    try:
        yield tgt
    finally:
        proc.stop()


def test_a_stalled_server_shows_as_drops_and_in_the_corrected_latency(stalling_target: Target, tmp_path: Path) -> None:
    m = _run(stalling_target, tmp_path, "constant_arrival_rate", 2,
             "RATE=10", "DURATION=2s", "PRE_VUS=2", "MAX_VUS=4")  # fmt: skip
    # 4 VUs, each busy for 2 s: 4 iterations start, the other 16 of the 20 planned are dropped
    assert m["dropped_iterations"]["values"]["count"] == 16
    assert m["iterations"]["values"]["count"] == 4 == stalling_target.stats()["requests"]
    assert m["vus_max"]["values"]["value"] == 4
    assert m["iteration_duration_from_schedule"]["values"]["min"] >= 2000


def test_a_bad_arrival_rate_scenario_exits_104_before_any_request(target: Target) -> None:
    res = run_surge("run", "-w", "2", *target_env(target), str(FIXTURES / "bad_arrival_rate.py"))
    assert res.returncode == 104, res.stderr
    for expected in ("scenarios.open.maxVUs: must be at least preAllocatedVUs (10), got 5",
                     "scenarios.open.timeUnit", 'scenarios.open.rat: unknown key (did you mean "rate"?)',
                     "scenarios.iters.iterations: 2 iterations cannot be shared among 3 VUs"):  # fmt: skip
        assert expected in res.stderr
    assert target.stats()["requests"] == 0


def test_a_k6_documentation_example_runs_with_its_options_copied(target: Target, tmp_path: Path) -> None:
    """k6's constant-vus example, options verbatim: 10 VUs for 30 s, bodies discarded, 0.5 s think time."""
    export = tmp_path / "s.json"
    res = run_surge("run", "-w", "2", "-q", "--summary-export", str(export), *target_env(target),
                    "scenarios/examples/k6_docs_constant_vus.py", timeout=120)
    assert res.returncode == 0, res.stderr
    m = json.loads(export.read_text())["metrics"]
    served = target.stats()["requests"]
    assert m["vus_max"]["values"]["value"] == 10
    assert m["http_reqs"]["values"]["count"] == served == m["iterations"]["values"]["count"]
    # each VU's iteration is a GET plus 0.5 s of sleep: about 2 a second, 30 s, 10 VUs
    assert 10 * 30 * 2 * 0.8 < served <= 10 * (30 * 2 + 1)

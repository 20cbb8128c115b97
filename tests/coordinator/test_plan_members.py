"""Machines of several processes are planned per process: 2 machines of 2 run what 4 workers would."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.options import Options, parse_options
from surge.coordinator.plan import plan_members, plan_slices

RAW: dict[str, Any] = {
    "scenarios": {
        "ramp": {"executor": "ramping-vus", "startVUs": 0, "gracefulRampDown": "5s",
                 "stages": [{"duration": "10s", "target": 7}, {"duration": "10s", "target": 0}]},
        "steady": {"executor": "constant-vus", "vus": 3, "duration": "20s", "startTime": "5s"},
        "shared": {"executor": "shared-iterations", "vus": 5, "iterations": 40},
        "arrivals": {"executor": "constant-arrival-rate", "rate": 30, "duration": "10s",
                     "preAllocatedVUs": 6, "maxVUs": 9},
    },
}


def _options() -> Options:
    options, problems = parse_options(RAW)
    assert options is not None, problems
    return options


def test_two_machines_of_two_plan_exactly_as_four_single_workers() -> None:
    options = _options()
    singles = plan_slices(options, [1, 1, 1, 1])
    machines = plan_members(options, [2, 2])
    assert len(machines) == 2
    for m, member_slices in enumerate(machines):
        for local in range(2):
            mine = [replace(s, member=0) for s in member_slices if s.member == local]
            assert mine == singles[2 * m + local]  # the same steps, VU ids, iteration ownership
    assert all(s.member == 0 for s in plan_members(options, [1, 1, 1, 1])[3])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_any_mix_of_capacities_plans_as_that_many_processes(capacities: list[int]) -> None:
    options = _options()
    singles = plan_slices(options, [1] * sum(capacities))
    flat = []
    for capacity, member_slices in zip(capacities, plan_members(options, capacities), strict=True):
        assert {s.member for s in member_slices} == set(range(capacity))
        for local in range(capacity):
            flat.append([replace(s, member=0) for s in member_slices if s.member == local])
    assert flat == singles


@pytest.mark.parametrize("capacities", [[], [0], [2, -1]])
def test_capacities_must_be_positive(capacities: list[int]) -> None:
    with pytest.raises(ValueError):
        plan_members(_options(), capacities)

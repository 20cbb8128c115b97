"""surge inspect's document, built without a clock or a socket."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from surge.cli import main
from surge.coordinator.preview import id_ranges


@pytest.mark.parametrize(
    ("ids", "expected"),
    [([], []), ([4], [[4, 4]]), ([1, 2, 3, 7], [[1, 3], [7, 7]]), ([9, 3, 2, 8], [[2, 3], [8, 9]])],
)
def test_vu_ids_are_shown_as_ranges(ids: list[int], expected: list[list[int]]) -> None:
    assert id_ranges(ids) == expected


@pytest.mark.parametrize("command", ["run", "coordinator", "inspect"])
def test_every_command_that_reads_a_scenario_takes_the_overriding_flags(command: str) -> None:
    out = CliRunner().invoke(main, [command, "--help"]).output
    for flag in ("--vus", "--duration", "--stage", "--tag", "--no-thresholds", "--summary-trend-stats"):
        assert flag in out
    assert ("--no-setup" in out) == (command != "inspect")

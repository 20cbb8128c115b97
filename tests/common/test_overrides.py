"""Command-line overrides: k6's precedence on the raw options, checked shapes, attributed problems."""

from __future__ import annotations

from typing import Any

import pytest

from surge.common.options import Executor, parse_options
from surge.common.overrides import Overrides, apply_overrides, attribute, with_tags

SCENARIOS = {"own": {"executor": "constant-vus", "vus": 7, "duration": "1m"}}
THRESHOLDS = {"http_req_failed": ["rate<0.01"]}

# (script options, flags, expected merged options)
PRECEDENCE: list[tuple[str, dict[str, Any], Overrides, dict[str, Any]]] = [
    ("no flags: the script as is", {"vus": 2, "duration": "5s"}, Overrides(), {"vus": 2, "duration": "5s"}),
    ("--vus beside the script's duration", {"vus": 2, "duration": "5s"}, Overrides(vus="3"), {"vus": 3, "duration": "5s"}),
    ("--vus beside the script's stages is startVUs", {"stages": [{"duration": "1s", "target": 4}]}, Overrides(vus="0"),
     {"stages": [{"duration": "1s", "target": 4}], "vus": 0}),
    ("--duration keeps the script's vus", {"vus": 2, "duration": "5s"}, Overrides(duration="9s"), {"vus": 2, "duration": "9s"}),
    ("--duration replaces the script's stages", {"vus": 2, "stages": [{"duration": "1s", "target": 4}]},
     Overrides(duration="9s"), {"vus": 2, "duration": "9s"}),
    ("--duration replaces the script's scenarios", {"scenarios": SCENARIOS, "thresholds": THRESHOLDS},
     Overrides(duration="2s"), {"duration": "2s", "thresholds": THRESHOLDS}),
    ("--vus and --duration replace the scenarios", {"scenarios": SCENARIOS}, Overrides(vus="3", duration="2s"),
     {"vus": 3, "duration": "2s"}),
    ("--duration replaces the script's iterations", {"vus": 2, "iterations": 10}, Overrides(duration="2s"),
     {"vus": 2, "duration": "2s"}),
    ("--stage replaces the script's duration", {"vus": 2, "duration": "5s"}, Overrides(stages=("30s:100", "1m:0")),
     {"vus": 2, "stages": [{"duration": "30s", "target": 100}, {"duration": "1m", "target": 0}]}),
    ("--stage values may be comma-separated, as in k6", {"scenarios": SCENARIOS}, Overrides(stages=("1m30s:5,10s:0",)),
     {"stages": [{"duration": "1m30s", "target": 5}, {"duration": "10s", "target": 0}]}),
    ("--no-thresholds drops them", {"duration": "5s", "thresholds": THRESHOLDS}, Overrides(no_thresholds=True),
     {"duration": "5s"}),
    ("--summary-trend-stats replaces the script's", {"duration": "5s", "summaryTrendStats": ["avg"]},
     Overrides(summary_trend_stats="avg, p(95),p(99.9)"), {"duration": "5s", "summaryTrendStats": ["avg", "p(95)", "p(99.9)"]}),
    ("--summary-time-unit replaces the script's", {"duration": "5s", "summaryTimeUnit": "s"},
     Overrides(summary_time_unit="ms"), {"duration": "5s", "summaryTimeUnit": "ms"}),
    ("--max-endpoints replaces the script's", {"duration": "5s", "maxEndpoints": 10},
     Overrides(max_endpoints="500"), {"duration": "5s", "maxEndpoints": 500}),
    ("--tag leaves the options dict alone", {"scenarios": SCENARIOS}, Overrides(tags=("env=ci",)), {"scenarios": SCENARIOS}),
]


@pytest.mark.parametrize(("script", "cli", "expected"), [c[1:] for c in PRECEDENCE], ids=[c[0] for c in PRECEDENCE])
def test_flags_win_over_the_script_as_in_k6(script: dict[str, Any], cli: Overrides, expected: dict[str, Any]) -> None:
    before = repr(script)
    applied = apply_overrides(script, cli)
    assert applied.problems == []
    assert applied.raw == expected
    assert repr(script) == before  # the script's dict is not modified
    _, problems = parse_options(applied.raw)
    assert problems == []


def test_vus_and_duration_make_one_constant_vus_scenario_in_place_of_the_scripts() -> None:
    applied = apply_overrides({"scenarios": SCENARIOS}, Overrides(vus="3", duration="2s"))
    options, _ = parse_options(applied.raw)
    assert options is not None
    [sc] = options.scenarios
    assert (sc.name, sc.executor, sc.vus, sc.duration_s) == ("default", Executor.CONSTANT_VUS, 3, 2.0)


# (flags, script options, the problems, each naming the flag)
BAD: list[tuple[str, Overrides, dict[str, Any], list[str]]] = [
    ("stage without a target", Overrides(stages=("30s",)), {"duration": "1s"},
     ["--stage '30s' (command line): expected DURATION:TARGET, such as 30s:100"]),
    ("stage without a duration", Overrides(stages=(":5",)), {"duration": "1s"},
     ["--stage ':5' (command line): expected DURATION:TARGET, such as 30s:100"]),
    ("stage target not a number", Overrides(stages=("30s:ten",)), {"duration": "1s"},
     ["--stage '30s:ten' (command line): the target must be a whole number of VUs, got 'ten'"]),
    ("vus not a number", Overrides(vus="many"), {"duration": "1s"},
     ["--vus 'many' (command line): expected a whole number of VUs"]),
    ("negative vus", Overrides(vus="-2"), {"duration": "1s"},
     ["--vus '-2' (command line): expected a whole number of VUs"]),
    ("duration and stage together", Overrides(duration="5s", stages=("1s:1",)), {"duration": "1s"},
     ["--duration and --stage (command line): cannot be used together (k6 refuses that too); the stages set the length"]),
    ("tag without =", Overrides(tags=("env",)), {"duration": "1s"},
     ["--tag 'env' (command line): expected KEY=VALUE, such as env=staging"]),
    ("tag without a key", Overrides(tags=("=x",)), {"duration": "1s"},
     ["--tag '=x' (command line): expected KEY=VALUE, such as env=staging"]),
    ("empty trend stats", Overrides(summary_trend_stats=" , "), {"duration": "1s"},
     ["--summary-trend-stats ' , ' (command line): expected a comma-separated list such as avg,p(95),p(99)"]),
]


@pytest.mark.parametrize(("cli", "script", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_malformed_flag_is_reported_and_not_applied(cli: Overrides, script: dict[str, Any], expected: list[str]) -> None:
    applied = apply_overrides(script, cli)
    assert applied.problems == expected
    assert applied.raw == script


def test_vus_alone_beside_the_scripts_scenarios_is_refused_not_ignored() -> None:
    applied = apply_overrides({"scenarios": SCENARIOS}, Overrides(vus="3"))
    [problem] = applied.problems
    assert problem.startswith("--vus '3' (command line): the scenario file sets options.scenarios")
    assert applied.raw == {"scenarios": SCENARIOS}


@pytest.mark.parametrize(
    ("cli", "expected"),
    [
        (Overrides(vus="0", duration="2s"), ["options.vus (from --vus on the command line): expected a whole number >= 1, got 0"]),
        (Overrides(duration="soon"),
         ["options.duration (from --duration on the command line): expected a duration string such as '30s', '2m' or "
          "'1m30s', got 'soon'"]),
        (Overrides(stages=("1s:2", "1x:3", "1s:-1")),
         ["options.stages[1].duration (from --stage '1x:3' on the command line): expected a duration string such as "
          "'30s', '2m' or '1m30s', got '1x'",
          "options.stages[2].target (from --stage '1s:-1' on the command line): expected a whole number >= 0, got -1"]),
        (Overrides(summary_trend_stats="avg,p(101)"),
         ["options.summaryTrendStats[1] (from --summary-trend-stats on the command line): expected one of avg, min, "
          "med, max, count or p(N) with 0 <= N <= 100, got 'p(101)'"]),
        (Overrides(summary_time_unit="minutes"),
         ["options.summaryTimeUnit (from --summary-time-unit on the command line): expected 's', 'ms' or 'us' (as "
          "k6), got 'minutes'"]),
        (Overrides(max_endpoints="0"),
         ["options.maxEndpoints (from --max-endpoints on the command line): expected a whole number of rows from 1 "
          "to 10000, got 0"]),
    ],
)
def test_problems_with_values_the_flags_set_say_they_came_from_the_command_line(cli: Overrides, expected: list[str]) -> None:
    applied = apply_overrides({"scenarios": SCENARIOS}, cli)
    assert applied.problems == []
    _, problems = parse_options(applied.raw)
    assert attribute(problems, applied.origins) == expected


def test_the_scripts_own_problems_keep_their_path_beside_the_flags() -> None:
    applied = apply_overrides({"duration": "5s", "throw": True}, Overrides(vus="many", duration="2s"))
    _, problems = parse_options(applied.raw)
    assert applied.problems == ["--vus 'many' (command line): expected a whole number of VUs"]
    assert attribute(problems, applied.origins) == ["options.throw: a k6 option, not supported yet by surge"]


def test_tags_reach_every_scenario_and_a_scenarios_own_tag_wins() -> None:
    raw = {
        "scenarios": {
            "a": {"executor": "constant-vus", "duration": "1s", "tags": {"env": "own", "flow": "a"}},
            "b": {"executor": "ramping-vus", "stages": [{"duration": "1s", "target": 1}]},
        }
    }
    applied = apply_overrides(raw, Overrides(tags=("env=ci", "team=pay", "empty=")))
    options, _ = parse_options(applied.raw)
    assert options is not None
    tagged = with_tags(options, applied.tags)
    assert [dict(sc.tags) for sc in tagged.scenarios] == [
        {"env": "own", "team": "pay", "empty": "", "flow": "a"},
        {"env": "ci", "team": "pay", "empty": ""},
    ]


def test_tags_reach_the_shortcuts_scenario_too() -> None:
    applied = apply_overrides({"vus": 1, "duration": "1s"}, Overrides(tags=("env=ci",)))
    options, _ = parse_options(applied.raw)
    assert options is not None
    assert [dict(sc.tags) for sc in with_tags(options, applied.tags).scenarios] == [{"env": "ci"}]


def test_options_that_are_not_a_dict_are_left_for_the_options_check() -> None:
    applied = apply_overrides(5, Overrides(vus="3", duration="1s"))
    assert applied.raw == 5 and applied.problems == []


def test_vus_beside_a_refused_duration_is_not_reported_again() -> None:
    applied = apply_overrides({"scenarios": SCENARIOS}, Overrides(vus="3", duration="1s", stages=("1s:1",)))
    assert applied.problems == [
        "--duration and --stage (command line): cannot be used together (k6 refuses that too); the stages set the length"
    ]
    assert applied.raw == {"scenarios": SCENARIOS}


def test_iterations_makes_k6s_shared_iterations_shortcut_in_place_of_the_scripts() -> None:
    script = {"scenarios": {"s": {"executor": "constant-vus", "vus": 9, "duration": "30s"}}, "thresholds": {}}
    applied = apply_overrides(script, Overrides(vus="3", iterations="12", duration="20s"))
    assert applied.problems == []
    assert applied.raw == {"vus": 3, "iterations": 12, "duration": "20s", "thresholds": {}}
    opts, problems = parse_options(applied.raw)
    assert problems == [] and opts is not None
    (sc,) = opts.scenarios
    assert (sc.executor.value, sc.vus, sc.iterations, sc.max_duration_s) == ("shared-iterations", 3, 12, 20.0)


@pytest.mark.parametrize(
    ("cli", "problem"),
    [
        (Overrides(iterations="ten"), "--iterations 'ten' (command line): expected a whole number of iterations"),
        (Overrides(iterations="5", stages=("1s:2",)), "--iterations and --stage (command line): cannot be used together"),
    ],
)
def test_bad_iterations_flags_are_named(cli: Overrides, problem: str) -> None:
    assert any(p.startswith(problem) for p in apply_overrides({"vus": 1, "duration": "1s"}, cli).problems)


def test_a_max_endpoints_flag_that_is_no_number_is_a_problem_of_the_flag() -> None:
    applied = apply_overrides({"duration": "5s"}, Overrides(max_endpoints="lots"))
    assert applied.problems == ["--max-endpoints 'lots' (command line): expected a whole number of rows, such as 200"]

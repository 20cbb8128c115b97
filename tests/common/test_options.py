"""Options: the seed scenario, every default, every kind of mistake, and no crash on anything."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.endpoint_stats import DEFAULT_MAX_ENDPOINTS
from surge.common.options import Executor, Options, ScenarioConfig, parse_options
from surge.common.schedule import Stage, Step

SEED: dict[str, Any] = {
    "scenarios": {
        "purchase": {
            "executor": "ramping-vus",
            "startVUs": 0,
            "stages": [
                {"duration": "30s", "target": 100},
                {"duration": "2m", "target": 100},
                {"duration": "30s", "target": 0},
            ],
            "gracefulRampDown": "10s",
        },
    },
    "thresholds": {
        "http_req_duration{scenario:purchase}": ["p(95)<500"],
        "checkout_duration": ["p(95)<500"],
        "purchase_errors": ["rate<0.01"],
    },
}


def ok(raw: object) -> Options:
    options, problems = parse_options(raw)
    assert problems == []
    assert options is not None
    return options


def bad(raw: object, **kw: str) -> list[str]:
    options, problems = parse_options(raw, **kw)
    assert options is None
    assert problems
    return problems


def only_scenario(raw: object) -> ScenarioConfig:
    (scenario,) = ok(raw).scenarios
    return scenario


# --------------------------------------------------------------------------- the seed


def test_seed_options_parse_to_the_expected_config() -> None:
    options = ok(SEED)

    assert options.scenarios == (
        ScenarioConfig(
            name="purchase",
            executor=Executor.RAMPING_VUS,
            start_vus=0,
            stages=(Stage(30, 100), Stage(120, 100), Stage(30, 0)),
            graceful_ramp_down_s=10.0,
        ),
    )
    sc = options.scenarios[0]
    assert (sc.exec_name, sc.start_time_s, sc.graceful_stop_s) == ("default", 0.0, 30.0)
    assert dict(sc.env) == {} and dict(sc.tags) == {}
    assert dict(options.thresholds) == SEED["thresholds"]
    assert options.summary_trend_stats == ("avg", "min", "med", "max", "p(90)", "p(95)")
    assert dict(options.raw) == SEED

    steps = sc.steps()
    assert len(steps) == 201 and steps[0] == Step(0, 0) and steps[-1] == Step(180, 0)
    assert sc.max_vus() == 100
    assert sc.end_offset_s() == 180 + 30
    assert options.max_duration_s() == 210
    assert options.total_max_vus() == 100
    hash(options)  # frozen all the way down; mappings are left out of the hash


def test_parsing_does_not_touch_or_alias_the_input() -> None:
    raw = copy.deepcopy(SEED)
    options = ok(raw)
    assert raw == SEED
    raw["thresholds"] = {}
    assert dict(options.raw) == SEED
    with pytest.raises(TypeError):
        options.raw["vus"] = 3  # type: ignore[index]


# --------------------------------------------------------------------------- mistakes, all at once


def test_five_distinct_mistakes_give_five_problems_naming_each_path() -> None:
    raw = {
        "scenarios": {
            "purchase": {
                "executor": "ramping-vu",
                "startVUs": 0,
                "stage": [],
                "stages": [{"duration": "30s", "target": 100}, {"duration": 5, "target": 0}],
            },
            "browse": {"executor": "constant-vus", "vus": 2.5, "duration": "1m"},
        },
        "throw": True,
    }
    assert bad(raw) == [
        "options.throw: a k6 option, not supported yet by surge",
        'options.scenarios.purchase.executor: "ramping-vu" is not a supported executor; '
        'expected one of: constant-arrival-rate, constant-vus, per-vu-iterations, ramping-arrival-rate, ramping-vus, shared-iterations (did you mean "ramping-vus"?)',
        'options.scenarios.purchase.stage: unknown key (did you mean "stages"?)',
        "options.scenarios.purchase.stages[1].duration: "
        "expected a duration string such as '30s' or '2m', got 5",
        "options.scenarios.browse.vus: expected a whole number >= 1, got 2.5",
    ]


def const(**keys: object) -> dict[str, object]:
    return {"executor": "constant-vus", "duration": "1s"} | keys


def ramp(*stages: object, **keys: object) -> dict[str, object]:
    return {"executor": "ramping-vus", "stages": list(stages) or [{"duration": "1s", "target": 1}]} | keys


@pytest.mark.parametrize(
    ("scenario", "problem"),
    [
        (const(vus=True), ".vus: expected a whole number >= 1, got True"),
        (const(vus=0), ".vus: expected a whole number >= 1, got 0"),
        (const(vus="3"), ".vus: expected a whole number >= 1, got '3'"),
        ({"executor": "constant-vus"}, ".duration: required for a constant-vus scenario; expected a duration"),
        (const(duration="0s"), ".duration: must be longer than 0, got '0s'"),
        (const(duration="10"), ".duration: expected a duration string such as '30s'"),
        (const(duration=10), ".duration: expected a duration string such as '30s' or '2m', got 10"),
        (ramp(startVUs=-1), ".startVUs: expected a whole number >= 0, got -1"),
        ({"executor": "ramping-vus"}, ".stages: required for a ramping-vus scenario"),
        (ramp(stages=[]), ".stages: expected at least one stage"),
        (ramp(stages={"duration": "1s"}), ".stages: expected a list of"),
        (ramp("1s"), '.stages[0]: expected a dict with "duration" and "target", got \'1s\''),
        (ramp({"duration": "1s"}), ".stages[0].target: required"),
        (ramp({"target": 1}), ".stages[0].duration: required"),
        (ramp({"duration": "1s", "target": 1.0}), ".stages[0].target: expected a whole number >= 0, got 1.0"),
        (ramp({"duration": "1s", "target": 10**10}), ".stages[0].target: 10000000000 VUs is more than surge plans for"),
        (ramp({"duration": "1s", "target": 1, "x": 2}), '.stages[0].x: unknown key; expected "duration" and "target"'),
        (ramp({"duration": "1s", "target": 0}, startVUs=0), ": startVUs or one of the stages' targets must be above 0"),
        (ramp(vus=3), ".vus: not a ramping-vus option (it belongs to constant-vus, per-vu-iterations, "
                      "shared-iterations); "
                      "a ramping-vus scenario takes startVUs and stages"),
        (const(gracefulRampDown="1s"), ".gracefulRampDown: not a constant-vus option (it belongs to ramping-vus)"),
        (const(maxVUs=3), ".maxVUs: not a constant-vus option (it belongs to constant-arrival-rate, ramping-arrival-rate)"),
        (const(graceful_stop="1s"), '.graceful_stop: unknown key (did you mean "gracefulStop"?)'),
        (const(zzz=1), ".zzz: unknown key; expected one of: duration, env,"),
        (const(exec="check-out"), ".exec: expected the name of a function in the scenario file, got 'check-out'"),
        (const(exec="class"), ".exec: expected the name of a function"),
        (const(startTime=-1), ".startTime: expected a duration string"),
        (const(gracefulStop="soon"), ".gracefulStop: expected a duration string"),
        (const(env={"A": 1}), ".env.A: expected a string, got 1"),
        (const(env=["A=1"]), ".env: expected a dict of strings to strings"),
        (const(tags={"a b": None}), '.tags["a b"]: expected a string, got None'),
        (const(tags={1: "x"}), ".tags: keys must be strings, got 1"),
        ({}, ".executor: required; expected one of: constant-arrival-rate, constant-vus, per-vu-iterations, ramping-arrival-rate, ramping-vus, shared-iterations"),
        ({"executor": 3}, ".executor: expected one of: constant-arrival-rate, constant-vus, per-vu-iterations, ramping-arrival-rate, ramping-vus, shared-iterations; got 3"),
        ("constant-vus", ': expected a dict with an "executor" key, got \'constant-vus\''),
    ],
)
def test_each_scenario_mistake_is_named_by_its_path(scenario: object, problem: str) -> None:
    problems = bad({"scenarios": {"s": scenario}})
    assert any(p.startswith("options.scenarios.s" + problem) for p in problems), problems


def test_externally_controlled_is_not_supported_yet() -> None:
    assert bad({"scenarios": {"s": {"executor": "externally-controlled"}}}) == [
        'options.scenarios.s.executor: "externally-controlled" is not supported yet by surge; '
        "supported executors: constant-arrival-rate, constant-vus, per-vu-iterations, ramping-arrival-rate, ramping-vus, shared-iterations"
    ]


def test_an_unusable_executor_still_gets_its_other_keys_checked() -> None:
    problems = bad({"scenarios": {"s": {"executor": "rampin", "stages": [{"duration": 1, "target": 1}], "vu": 1}}})
    assert problems == [
        'options.scenarios.s.executor: "rampin" is not a supported executor; '
        'expected one of: constant-arrival-rate, constant-vus, per-vu-iterations, ramping-arrival-rate, ramping-vus, shared-iterations (did you mean "ramping-vus"?)',
        'options.scenarios.s.vu: unknown key (did you mean "vus"?)',
        "options.scenarios.s.stages[0].duration: expected a duration string such as '30s' or '2m', got 1",
    ]


def test_scenario_names_follow_k6() -> None:
    assert only_scenario({"scenarios": {"a-B_9": {"executor": "constant-vus", "duration": "1s"}}}).name == "a-B_9"
    assert bad({"scenarios": {"my scenario": {"executor": "constant-vus", "duration": "1s"}}}) == [
        'options.scenarios["my scenario"]: invalid scenario name; use only letters, digits, "_" and "-"'
    ]
    assert bad({"scenarios": {"": {"executor": "constant-vus", "duration": "1s"}}})[0].startswith(
        'options.scenarios[""]: invalid scenario name'
    )


# --------------------------------------------------------------------------- defaults


def test_constant_vus_defaults() -> None:
    sc = only_scenario({"scenarios": {"c": {"executor": "constant-vus", "duration": "45s"}}})
    assert sc == ScenarioConfig(name="c", executor=Executor.CONSTANT_VUS, duration_s=45.0)
    assert (sc.vus, sc.exec_name, sc.start_time_s, sc.graceful_stop_s) == (1, "default", 0.0, 30.0)
    assert dict(sc.env) == {} and dict(sc.tags) == {}
    assert sc.steps() == [Step(0, 1), Step(45, 0)]
    assert sc.end_offset_s() == 75.0


def test_ramping_vus_defaults() -> None:
    sc = only_scenario({"scenarios": {"r": {"executor": "ramping-vus", "stages": [{"duration": "10s", "target": 3}]}}})
    assert sc == ScenarioConfig(name="r", executor=Executor.RAMPING_VUS, stages=(Stage(10, 3),))
    assert (sc.start_vus, sc.graceful_ramp_down_s, sc.graceful_stop_s, sc.start_time_s) == (1, 30.0, 30.0, 0.0)
    assert sc.exec_name == "default"
    assert sc.steps()[0] == Step(0, 1)
    assert sc.max_vus() == 3


def test_every_common_key_is_read() -> None:
    sc = only_scenario(
        {
            "scenarios": {
                "c": {
                    "executor": "constant-vus",
                    "vus": 4,
                    "duration": "1m30s",
                    "exec": "browse",
                    "startTime": "10s",
                    "gracefulStop": "5s",
                    "env": {"BASE_URL": "http://127.0.0.1:8080"},
                    "tags": {"flow": "browse"},
                }
            }
        }
    )
    assert sc == ScenarioConfig(
        name="c",
        executor=Executor.CONSTANT_VUS,
        exec_name="browse",
        start_time_s=10.0,
        graceful_stop_s=5.0,
        vus=4,
        duration_s=90.0,
        env={"BASE_URL": "http://127.0.0.1:8080"},
        tags={"flow": "browse"},
    )
    assert sc.end_offset_s() == 10 + 90 + 5


def test_several_scenarios_keep_their_order_and_add_up() -> None:
    options = ok(
        {
            "scenarios": {
                "browse": {"executor": "constant-vus", "vus": 10, "duration": "1m"},
                "purchase": SEED["scenarios"]["purchase"] | {"startTime": "30s"},
            }
        }
    )
    assert [s.name for s in options.scenarios] == ["browse", "purchase"]
    assert options.total_max_vus() == 110
    assert options.max_duration_s() == 30 + 180 + 30


# --------------------------------------------------------------------------- top level and shortcuts


def test_vus_and_duration_shortcut() -> None:
    assert only_scenario({"vus": 10, "duration": "30s"}) == ScenarioConfig(
        name="default", executor=Executor.CONSTANT_VUS, vus=10, duration_s=30.0
    )
    assert only_scenario({"duration": "30s"}).vus == 1  # k6: vus defaults to 1


def test_stages_shortcut() -> None:
    stages = [{"duration": "10s", "target": 5}, {"duration": "10s", "target": 0}]
    assert only_scenario({"stages": stages}) == ScenarioConfig(
        name="default", executor=Executor.RAMPING_VUS, start_vus=1, stages=(Stage(10, 5), Stage(10, 0))
    )
    assert only_scenario({"stages": stages, "vus": 0}).start_vus == 0


def test_shortcut_mistakes() -> None:
    assert bad({"vus": 3}) == [
        "options.vus: without a duration or stages k6 runs each VU for one iteration, which surge does "
        "not support yet; add options.duration (e.g. '30s') or options.stages"
    ]
    assert bad({"duration": "1m", "stages": [{"duration": "1m", "target": 2}]}) == [
        "options.duration: cannot be used together with options.stages (k6 refuses that too); the stages set the length"
    ]
    problems = bad({"vus": 2, "duration": "1m", "scenarios": SEED["scenarios"]})
    assert problems == [
        f"options.{key}: cannot be used together with options.scenarios (k6 refuses that too); move it into a scenario"
        for key in ("vus", "duration")
    ]
    assert bad({"vus": -1, "duration": "0s"}) == [
        "options.vus: expected a whole number >= 1, got -1",
        "options.duration: must be longer than 0, got '0s'",
    ]
    assert bad({"stages": [{"duration": "1s", "target": 0}], "vus": 0}) == [
        "options: startVUs or one of the stages' targets must be above 0, or no VU ever runs"
    ]


@pytest.mark.parametrize("raw", [{}, {"scenarios": {}}, {"thresholds": {}}])
def test_no_scenarios_is_not_supported_yet(raw: dict[str, Any]) -> None:
    (problem,) = bad(raw)
    assert problem.endswith(
        "no scenarios: set options.scenarios, or options.stages, or options.vus and options.duration"
    )


def test_iterations_shortcut_is_shared_iterations_as_in_k6() -> None:
    sc = only_scenario({"iterations": 10, "vus": 2})
    assert (sc.name, sc.executor, sc.vus, sc.iterations, sc.max_duration_s) == ("default", Executor.SHARED_ITERATIONS, 2, 10, 600.0)
    sc = only_scenario({"iterations": 3})
    assert (sc.executor, sc.vus, sc.iterations) == (Executor.SHARED_ITERATIONS, 1, 3)
    sc = only_scenario({"iterations": 3, "duration": "5s"})  # k6: the duration is the maxDuration
    assert (sc.executor, sc.iterations, sc.max_duration_s) == (Executor.SHARED_ITERATIONS, 3, 5.0)
    assert bad({"iterations": 2, "vus": 3}) == [
        "options.iterations: 2 iterations cannot be shared among 3 VUs (k6 refuses it too)"
    ]
    assert bad({"iterations": 2, "stages": [{"duration": "1s", "target": 1}]})[0].startswith(
        "options.iterations: cannot be used together with options.stages"
    )


@pytest.mark.parametrize(
    "key",
    ["tags", "rps", "systemTags", "throw", "tlsAuth", "tlsCipherSuites", "blockHostnames", "executionSegment"],
)
def test_known_k6_options_are_not_supported_yet(key: str) -> None:
    problems = bad({key: None, "duration": "1s"})
    assert len(problems) == 1 and problems[0].startswith(f"options.{key}: a k6 option, not supported yet by surge")


def test_unknown_options_get_a_suggestion() -> None:
    assert bad({"scenario": {}, "duration": "1s"}) == ['options.scenario: unknown option (did you mean "scenarios"?)']
    assert bad({"treshold": {}, "duration": "1s"}) == ['options.treshold: unknown option (did you mean "thresholds"?)']
    (problem,) = bad({"zzz": 1, "duration": "1s"})
    assert problem.startswith("options.zzz: unknown option; surge supports: scenarios, thresholds")
    assert bad({1: 2, "duration": "1s"}) == ["options: keys must be strings, got 1"]


def test_options_must_be_a_dict() -> None:
    assert bad(None) == ["options: expected a dict of k6 options, got None"]
    assert bad([("vus", 1)]) == ["options: expected a dict of k6 options, got [('vus', 1)]"]


def test_where_prefixes_every_path() -> None:
    assert bad({"vus": 1.5, "duration": "1s"}, where="scenario.py options") == [
        "scenario.py options.vus: expected a whole number >= 1, got 1.5"
    ]


def test_thresholds_are_kept_raw_but_must_be_a_dict() -> None:
    raw = {"duration": "1s", "thresholds": {"nonsense{": "whatever"}}
    assert dict(ok(raw).thresholds) == {"nonsense{": "whatever"}
    assert bad({"duration": "1s", "thresholds": "p(95)<500"}) == [
        "options.thresholds: expected a dict of metric name to thresholds, got 'p(95)<500'"
    ]


def test_summary_trend_stats() -> None:
    stats = ["avg", "min", "med", "max", "count", "p(0)", "p(99.9)", "p(100)"]
    assert ok({"duration": "1s", "summaryTrendStats": stats}).summary_trend_stats == tuple(stats)
    assert ok({"duration": "1s", "summaryTrendStats": []}).summary_trend_stats == ()
    assert bad({"duration": "1s", "summaryTrendStats": ["p(101)", "avg", "p95", 3]}) == [
        f"options.summaryTrendStats[{i}]: expected one of avg, min, med, max, count or p(N) with 0 <= N <= 100, got {v}"
        for i, v in [(0, "'p(101)'"), (2, "'p95'"), (3, "3")]
    ]
    assert bad({"duration": "1s", "summaryTrendStats": "avg"})[0].startswith(
        "options.summaryTrendStats: expected a list of trend statistics"
    )


def test_summary_time_unit_is_k6s() -> None:
    assert ok({"duration": "1s"}).summary_time_unit == ""
    for unit in ("s", "ms", "us", ""):
        assert ok({"duration": "1s", "summaryTimeUnit": unit}).summary_time_unit == unit
    assert ok({"duration": "1s", "summaryTimeUnit": None}).summary_time_unit == ""  # k6's null: unset
    assert bad({"duration": "1s", "summaryTimeUnit": "m"}) == [
        "options.summaryTimeUnit: expected 's', 'ms' or 'us' (as k6), got 'm'"
    ]
    assert bad({"duration": "1s", "summaryTimeUnit": ["ms"]})[0].startswith("options.summaryTimeUnit: expected 's'")


# --------------------------------------------------------------------------- never a crash

KEYS = [
    "scenarios", "thresholds", "summaryTrendStats", "vus", "duration", "stages", "iterations", "batch",
    "executor", "exec", "startTime", "gracefulStop", "gracefulRampDown", "startVUs", "env", "tags", "target",
    "ramping-vus", "constant-vus", "purchase", "maxVUs", "",
]  # fmt: skip
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**20), st.floats(), st.text(max_size=8),
    st.sampled_from(["ramping-vus", "constant-vus", "30s", "1m30s", "0s", "p(95)", "avg", "default", "1e400s"]),
)  # fmt: skip
json_like = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=30,
)


def _check_result(raw: object) -> None:
    options, problems = parse_options(raw)
    assert (options is None) == bool(problems)
    assert all(isinstance(p, str) and p.startswith("options") for p in problems)
    if options is not None:
        for sc in options.scenarios:
            steps = sc.steps()
            assert steps[0].offset_s == 0 and sc.end_offset_s() >= sc.start_time_s + steps[-1].offset_s


@given(json_like)
@settings(max_examples=500)
def test_parse_options_never_raises(raw: object) -> None:
    _check_result(raw)


scenario_like = st.fixed_dictionaries(
    {"executor": st.sampled_from(["ramping-vus", "constant-vus", "ramping-vu", "shared-iterations"])},
    optional={
        key: st.one_of(json_like, st.sampled_from(["10s", "1m", 0, 3]))
        for key in ["vus", "duration", "startVUs", "gracefulRampDown", "exec", "startTime", "env", "tags", "stage"]
    }
    | {"stages": st.lists(st.dictionaries(st.sampled_from(["duration", "target", "x"]),
                                          st.sampled_from(["1s", "0s", 2, 0, -1, 1.5, None])), max_size=3)},
)  # fmt: skip


@given(
    st.dictionaries(st.text(max_size=5), scenario_like, max_size=3),
    st.dictionaries(st.sampled_from(KEYS), json_like),
)
@settings(max_examples=500)
def test_parse_options_never_raises_on_near_miss_scenarios(scenarios: dict[str, Any], extra: dict[str, Any]) -> None:
    _check_result(extra | {"scenarios": scenarios})


def test_setup_and_teardown_timeouts_are_k6_durations() -> None:
    base = {"vus": 1, "duration": "1s"}
    opts, problems = parse_options({**base, "setupTimeout": "2s", "teardownTimeout": "1m30s"})
    assert problems == [] and opts is not None
    assert (opts.setup_timeout_s, opts.teardown_timeout_s) == (2.0, 90.0)
    defaults, _ = parse_options(base)
    assert defaults is not None and (defaults.setup_timeout_s, defaults.teardown_timeout_s) == (60.0, 60.0)
    _, problems = parse_options({**base, "setupTimeout": 5, "teardownTimeout": "0s"})
    assert len(problems) == 2 and "options.setupTimeout" in problems[0] and "options.teardownTimeout" in problems[1]


def car(**keys: object) -> dict[str, object]:
    return {"executor": "constant-arrival-rate", "rate": 5, "duration": "10s", "preAllocatedVUs": 2} | keys


def rar(*stages: object, **keys: object) -> dict[str, object]:
    return {"executor": "ramping-arrival-rate", "preAllocatedVUs": 2,
            "stages": list(stages) or [{"duration": "1s", "target": 5}]} | keys  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "problem"),
    [
        ({"executor": "per-vu-iterations", "iterations": 0}, ".iterations: expected a whole number >= 1, got 0"),
        ({"executor": "per-vu-iterations", "maxDuration": "-1s"}, ".maxDuration: "),
        ({"executor": "per-vu-iterations", "maxDuration": "0s"}, ".maxDuration: must be longer than 0"),
        ({"executor": "per-vu-iterations", "duration": "1s"},
         ".duration: not a per-vu-iterations option (it belongs to constant-vus, constant-arrival-rate); "
         "a per-vu-iterations scenario takes vus and iterations"),
        ({"executor": "shared-iterations", "vus": 5, "iterations": 2},
         ".iterations: 2 iterations cannot be shared among 5 VUs (k6 refuses it too)"),
        ({"executor": "shared-iterations", "iteration": 2}, '.iteration: unknown key (did you mean "iterations"?)'),
        ({"executor": "constant-arrival-rate", "duration": "1s", "preAllocatedVUs": 1},
         ".rate: required for a constant-arrival-rate scenario"),
        (car(rate=0), ".rate: expected a whole number >= 1, got 0"),
        (car(rate=2.5), ".rate: expected a whole number >= 1, got 2.5"),
        (car(duration="soon"), ".duration: expected a duration string"),
        (car(duration="-5s"), ".duration: "),
        (car(timeUnit="0s"), ".timeUnit: must be longer than 0"),
        (car(timeUnit=1), ".timeUnit: expected a duration string"),
        (car(preAllocatedVUs=-1), ".preAllocatedVUs: expected a whole number >= 0, got -1"),
        (car(preAllocatedVUs=5, maxVUs=3), ".maxVUs: must be at least preAllocatedVUs (5), got 3"),
        (car(preAllocatedVUs=0), ".preAllocatedVUs: preAllocatedVUs or maxVUs must be above 0"),
        ({"executor": "constant-arrival-rate", "rate": 1, "duration": "1s"},
         ".preAllocatedVUs: required for a constant-arrival-rate scenario"),
        (car(maxVU=3), '.maxVU: unknown key (did you mean "maxVUs"?)'),
        (car(stages=[]), ".stages: not a constant-arrival-rate option (it belongs to ramping-vus, ramping-arrival-rate)"),
        (rar({"duration": "1s", "target": 0}), ": startRate or one of the stages' targets must be above 0"),
        (rar(startRate=-1), ".startRate: expected a whole number >= 0, got -1"),
        (rar({"duration": "1s", "target": 10**7}, maxVUs=1), ".maxVUs: must be at least preAllocatedVUs (2), got 1"),
        (rar({"duration": "x", "target": 1}), ".stages[0].duration: "),
        (rar(rate=5), ".rate: not a ramping-arrival-rate option (it belongs to constant-arrival-rate)"),
        ({"executor": "ramping-arrival-rate", "preAllocatedVUs": 1}, ".stages: required for a ramping-arrival-rate"),
    ],
)
def test_each_new_executor_mistake_is_named_by_its_path(scenario: object, problem: str) -> None:
    problems = bad({"scenarios": {"s": scenario}})
    assert any(p.startswith("options.scenarios.s" + problem) for p in problems), problems


def test_new_executors_take_k6_defaults() -> None:
    sc = only_scenario({"scenarios": {"s": {"executor": "per-vu-iterations"}}})
    assert (sc.vus, sc.iterations, sc.max_duration_s, sc.graceful_stop_s, sc.length_s()) == (1, 1, 600.0, 30.0, 600.0)
    sc = only_scenario({"scenarios": {"s": car()}})
    assert (sc.time_unit_s, sc.pre_allocated_vus, sc.max_vus_limit, sc.max_vus(), sc.end_offset_s()) == (1.0, 2, 2, 2, 40.0)
    sc = only_scenario({"scenarios": {"s": rar({"duration": "3s", "target": 1}, maxVUs=7)}})
    assert (sc.start_rate, sc.max_vus(), sc.length_s()) == (0, 7, 3.0)


def test_every_problem_of_a_new_executor_at_once() -> None:
    problems = bad({"scenarios": {"s": {"executor": "constant-arrival-rate", "rate": 0, "duration": "-1s",
                                        "preAllocatedVUs": 3, "maxVUs": 1, "timeUnit": "1x"}}})  # fmt: skip
    assert [p.split(":")[0] for p in problems] == [
        "options.scenarios.s.rate", "options.scenarios.s.duration", "options.scenarios.s.timeUnit",
        "options.scenarios.s.maxVUs",
    ]  # fmt: skip


def test_max_endpoints_is_a_whole_number_of_rows_with_a_documented_default() -> None:
    opts, problems = parse_options({"vus": 1, "duration": "1s"})
    assert problems == [] and opts is not None and opts.max_endpoints == DEFAULT_MAX_ENDPOINTS == 100
    opts, _ = parse_options({"vus": 1, "duration": "1s", "maxEndpoints": 20})
    assert opts is not None and opts.max_endpoints == 20
    for bad in (0, 10_001, 2.5, True, "50"):
        _, problems = parse_options({"vus": 1, "duration": "1s", "maxEndpoints": bad})
        assert problems == [f"options.maxEndpoints: expected a whole number of rows from 1 to 10000, got {bad!r}"]


def test_discard_response_bodies_is_a_bool() -> None:
    opts, problems = parse_options({"vus": 1, "duration": "1s", "discardResponseBodies": True})
    assert problems == [] and opts is not None and opts.discard_response_bodies
    _, problems = parse_options({"vus": 1, "duration": "1s", "discardResponseBodies": "yes"})
    assert problems == ["options.discardResponseBodies: expected true or false, got 'yes'"]

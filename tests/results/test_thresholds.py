"""Threshold parsing, checking against metric types, and verdicts on real sinks."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.common.metrics import (
    BUILTIN_METRICS,
    CounterSink,
    GaugeSink,
    MetricDef,
    MetricType,
    RateSink,
    SeriesName,
    Sink,
    TrendSink,
)
from surge.common.sketch import Sketch
from surge.results.thresholds import (
    MetricThresholds,
    Threshold,
    Verdict,
    abort_verdict,
    evaluate,
    parse_expression,
    parse_thresholds,
)

METRICS: dict[str, MetricDef] = {
    **BUILTIN_METRICS,
    "my_gauge": MetricDef("my_gauge", MetricType.GAUGE),
    "my_trend": MetricDef("my_trend", MetricType.TREND),
}


def parse_ok(config: object) -> list[MetricThresholds]:
    parsed, problems = parse_thresholds(config, METRICS)
    assert problems == []
    return parsed


def problems_of(config: object) -> list[str]:
    _, problems = parse_thresholds(config, METRICS)
    assert problems, "expected problems"
    return problems


# --------------------------------------------------------------------------- parse_expression


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p(95)<500", ("p(95)", "<", 500.0)),
        ("p(95) < 500", ("p(95)", "<", 500.0)),
        ("  p( 95 )  <  500  ", ("p(95)", "<", 500.0)),
        ("p(99.9)<=1e3", ("p(99.9)", "<=", 1000.0)),
        ("p(95.0)<1", ("p(95)", "<", 1.0)),
        ("p(095.50)<1", ("p(95.5)", "<", 1.0)),
        ("p(.5)<1", ("p(0.5)", "<", 1.0)),
        ("p(0)>=0", ("p(0)", ">=", 0.0)),
        ("p(100)>=0", ("p(100)", ">=", 0.0)),
        ("avg<200", ("avg", "<", 200.0)),
        ("min>0", ("min", ">", 0.0)),
        ("max<=10", ("max", "<=", 10.0)),
        ("med<5", ("med", "<", 5.0)),
        ("count>100", ("count", ">", 100.0)),
        ("rate>=10", ("rate", ">=", 10.0)),
        ("rate<0.01", ("rate", "<", 0.01)),
        ("value<5", ("value", "<", 5.0)),
        ("value==5", ("value", "==", 5.0)),
        ("value===5", ("value", "==", 5.0)),
        ("value != 5", ("value", "!=", 5.0)),
        ("avg>-2.5E-3", ("avg", ">", -0.0025)),
        ("avg>+3", ("avg", ">", 3.0)),
        ("avg<5.", ("avg", "<", 5.0)),
        ("avg<.5", ("avg", "<", 0.5)),
    ],
)
def test_parse_expression_valid(text: str, expected: tuple[str, str, float]) -> None:
    assert parse_expression(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("p95<500", '"p95<500" is not a threshold expression; expected e.g. "p(95)<500"'),
        ("p99.9 <= 7", 'expected e.g. "p(99.9) <= 7"'),
        ("p(101)<5", "percentile 101 is above 100"),
        ("p(-1)<5", 'percentile "-1" is not a number from 0 to 100'),
        ("p(abc)<5", 'percentile "abc" is not a number'),
        ("p(1e1)<5", 'percentile "1e1" is not a number'),
        ("p(95<5", '"p(" is not closed'),
        ("p<5", 'expected "p(N)"'),
        ("rate<", 'no number after "<"; expected e.g. "rate<0.01"'),
        ("rate<abc", '"abc" is not a number'),
        ("avg", 'nothing follows "avg"'),
        ("avg 5", 'expected an operator (<, <=, >, >=, ==, !=) after "avg", got "5"'),
        ("avg=5", 'did you mean "=="?'),
        ("avg=>5", 'did you mean ">="?'),
        ("avg=<5", 'did you mean "<="?'),
        ("average<5", 'unknown aggregation "average" (did you mean "avg"?)'),
        ("AVG<5", 'did you mean "avg"?'),
        ("<5", "it must start with an aggregation"),
        ("p(95)<500ms", "write 500"),
        ("p(95)<0.5s", "write 500"),
        ("avg<5x", 'unexpected "x" after the number 5'),
        ("avg<1e999", "out of range"),
        ("avg<nan", '"nan" is not a number'),
        ("avg<inf", '"inf" is not a number'),
        ("avg<1_000", 'unexpected "_000"'),
        ("avg<5<6", 'unexpected "<6"'),
    ],
)
def test_parse_expression_invalid(text: str, says: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_expression(text)
    assert says in str(info.value)


@given(st.text())
def test_parse_expression_raises_only_value_error(text: str) -> None:
    try:
        _, op, value = parse_expression(text)
    except ValueError:
        return
    assert op in ("<", "<=", ">", ">=", "==", "!=")
    assert math.isfinite(value)


NEAR_MISS = (
    r"\A\s*(avg|min|max|med|count|rate|value|p\(\s*[0-9.]{0,6}\s*\))"
    r"\s*(===|==|!=|<=|>=|<|>|=)\s*[-+0-9.eE]{0,8}\s*(ms|s|x)?\Z"
)


@given(st.from_regex(NEAR_MISS))
def test_parse_expression_near_misses_raise_only_value_error(text: str) -> None:
    try:
        parse_expression(text)
    except ValueError as e:
        assert "is not a threshold expression" in str(e)


# --------------------------------------------------------------------------- parse_thresholds


def test_the_example_config_parses() -> None:
    parsed = parse_ok(
        {
            "http_req_duration": ["p(95)<500", "avg<200"],
            "http_req_failed": ["rate<0.01"],
            "http_req_duration{scenario:purchase}": ["p(99)<=800"],
            "checks": [{"threshold": "rate>0.99", "abortOnFail": True, "delayAbortEval": "10s"}],
            "http_reqs": ["count>100", "rate>=10"],
            "my_gauge": ["value<5"],
        }
    )
    by_key = {mt.key: mt for mt in parsed}
    assert list(by_key) == [
        "http_req_duration",
        "http_req_failed",
        "http_req_duration{scenario:purchase}",
        "checks",
        "http_reqs",
        "my_gauge",
    ]
    assert by_key["http_req_duration"].thresholds == (
        Threshold("p(95)<500", "p(95)", "<", 500.0),
        Threshold("avg<200", "avg", "<", 200.0),
    )
    assert by_key["checks"].thresholds == (
        Threshold("rate>0.99", "rate", ">", 0.99, abort_on_fail=True, delay_abort_eval_s=10.0),
    )
    assert by_key["my_gauge"].metric == METRICS["my_gauge"]


def test_sub_metric_keys_keep_the_key_as_written() -> None:
    (mt,) = parse_ok({"http_req_duration{ scenario : purchase , status:'200' }": ["p(99)<=800"]})
    assert mt.key == "http_req_duration{ scenario : purchase , status:'200' }"
    assert mt.series == SeriesName("http_req_duration", (("scenario", "purchase"), ("status", "200")))
    assert mt.metric == BUILTIN_METRICS["http_req_duration"]


def test_empty_list_tracks_the_series_without_judging_it() -> None:
    (mt,) = parse_ok({"http_req_duration{scenario:a}": []})
    assert mt.thresholds == ()


def test_none_means_no_thresholds() -> None:
    assert parse_thresholds(None, METRICS) == ([], [])
    assert parse_thresholds({}, METRICS) == ([], [])


def test_source_is_kept_as_written() -> None:
    (mt,) = parse_ok({"http_req_duration": [" p( 95 ) <  500 "]})
    assert mt.thresholds[0].source == " p( 95 ) <  500 "
    assert mt.thresholds[0].aggregation == "p(95)"


def test_object_form_defaults() -> None:
    checks, reqs = parse_ok({"checks": [{"threshold": "rate>0.9"}], "http_reqs": ({"threshold": "count>1"},)})
    assert checks.thresholds == (Threshold("rate>0.9", "rate", ">", 0.9, False, 0.0),)
    assert reqs.thresholds == (Threshold("count>1", "count", ">", 1.0),)


def test_object_form_mixes_with_strings() -> None:
    (mt,) = parse_ok(
        {"http_req_duration": ["avg<1", {"threshold": "p(99)<2", "abortOnFail": False, "delayAbortEval": "1m30s"}]}
    )
    assert [t.delay_abort_eval_s for t in mt.thresholds] == [0.0, 90.0]


def test_brief_messages_verbatim() -> None:
    problems = problems_of(
        {
            "http_req_duration": ["p(95)<500", "p95<500"],
            "http_req_failed": ["avg<1"],
            "htp_req_duration": ["p(95)<500"],
        }
    )
    assert problems == [
        (
            'options.thresholds["http_req_duration"][1]: "p95<500" is not a threshold expression; '
            'expected e.g. "p(95)<500"'
        ),
        'options.thresholds["http_req_failed"][0]: rate metrics have no "avg"; use one of: rate',
        (
            'options.thresholds["htp_req_duration"]: unknown metric "htp_req_duration" '
            '(did you mean "http_req_duration"?)'
        ),
    ]


def test_all_problems_are_reported_at_once() -> None:
    parsed, problems = parse_thresholds(
        {
            "http_req_duration": ["p(95)<500", "p(95<500"],  # 1: bad syntax at [1]
            "htp_reqs": ["count>1"],  # 2: unknown metric
            "checks": "rate>0.99",  # 3: bare string
            "my_gauge": [{"threshold": "value<5", "abortOnFial": True}],  # 4: unknown object key
            "http_req_failed": ["rate<0.01"],  # fine
        },
        METRICS,
        where="scenario.py: options.thresholds",
    )
    assert len(problems) == 4
    assert problems[0].startswith('scenario.py: options.thresholds["http_req_duration"][1]: ')
    assert problems[1].startswith('scenario.py: options.thresholds["htp_reqs"]: unknown metric "htp_reqs"')
    assert 'did you mean "http_reqs"?' in problems[1]
    assert problems[2].startswith('scenario.py: options.thresholds["checks"]: ')
    assert 'wrap it in a list: ["rate>0.99"]' in problems[2]
    assert problems[3].startswith('scenario.py: options.thresholds["my_gauge"][0]: unknown key "abortOnFial"')
    assert 'did you mean "abortOnFail"?' in problems[3]
    # only the clean key survives, and only clean keys ever do
    assert [mt.key for mt in parsed] == ["http_req_failed"]


def test_syntax_is_checked_even_under_an_unknown_metric() -> None:
    problems = problems_of({"nope": ["p95<1", "avg<"]})
    assert [p.split(": ")[0] for p in problems] == [
        'options.thresholds["nope"]',
        'options.thresholds["nope"][0]',
        'options.thresholds["nope"][1]',
    ]
    assert "; expected a built-in metric or one the scenario defines" in problems[0]


@pytest.mark.parametrize(
    ("config", "at", "says"),
    [
        ("p(95)<500", "options.thresholds", "expected a dict of metric name"),
        (["http_req_duration"], "options.thresholds", "got list"),
        ({5: ["avg<1"]}, "options.thresholds[5]", "metric names are strings, got int 5"),
        ({"http_req_duration{": ["avg<1"]}, 'options.thresholds["http_req_duration{"]', "expected 'metric'"),
        ({"bad name": ["avg<1"]}, 'options.thresholds["bad name"]', "expected 'metric'"),
        ({"http_req_duration{scenario}": []}, 'options.thresholds["http_req_duration{scenario}"]', "'tag:value'"),
        ({"http_req_duration": 500}, 'options.thresholds["http_req_duration"]', "expected a list of thresholds"),
        ({"http_req_duration": None}, 'options.thresholds["http_req_duration"]', "got NoneType None"),
        ({"http_req_duration": [500]}, 'options.thresholds["http_req_duration"][0]', "got int 500"),
        ({"http_req_duration": [["avg<1"]]}, 'options.thresholds["http_req_duration"][0]', "got list"),
        ({"checks": [{}]}, 'options.thresholds["checks"][0]', 'missing "threshold"'),
        ({"checks": [{"threshold": 0.99}]}, 'options.thresholds["checks"][0]', '"threshold" must be a string'),
        ({"checks": [{"threshold": "rate>"}]}, 'options.thresholds["checks"][0]', 'no number after ">"'),
        (
            {"checks": [{"threshold": "rate>0.9", "abortOnFail": "yes"}]},
            'options.thresholds["checks"][0]',
            '"abortOnFail" must be True or False, got str',
        ),
        (
            {"checks": [{"threshold": "rate>0.9", "abortOnFail": 1}]},
            'options.thresholds["checks"][0]',
            '"abortOnFail" must be True or False, got int 1',
        ),
        (
            {"checks": [{"threshold": "rate>0.9", "delayAbortEval": 10}]},
            'options.thresholds["checks"][0]',
            '"delayAbortEval": expected a duration string',
        ),
        (
            {"checks": [{"threshold": "rate>0.9", "abort_on_fail": True}]},
            'options.thresholds["checks"][0]',
            'unknown key "abort_on_fail" (did you mean "abortOnFail"?)',
        ),
        (
            {"checks": [{"threshold": "rate>0.9", 7: True}]},
            'options.thresholds["checks"][0]',
            "unknown key 7; expected threshold, abortOnFail, delayAbortEval",
        ),
    ],
)
def test_each_mistake_is_one_problem_at_its_place(config: object, at: str, says: str) -> None:
    problems = problems_of(config)
    assert len(problems) == 1, problems
    assert problems[0].startswith(at + ": "), problems[0]
    assert says in problems[0], problems[0]


def test_object_with_several_mistakes_reports_each() -> None:
    problems = problems_of(
        {"checks": [{"threshold": "avg>1", "abortOnFail": "no", "delayAbortEval": "soon", "extra": 1}]}
    )
    assert len(problems) == 4
    assert all(p.startswith('options.thresholds["checks"][0]: ') for p in problems)


AGGREGATION_TABLE = [
    (MetricType.COUNTER, "count", True),
    (MetricType.COUNTER, "rate", True),
    (MetricType.COUNTER, "value", False),
    (MetricType.COUNTER, "avg", False),
    (MetricType.COUNTER, "p(95)", False),
    (MetricType.GAUGE, "value", True),
    (MetricType.GAUGE, "min", False),
    (MetricType.GAUGE, "max", False),
    (MetricType.GAUGE, "count", False),
    (MetricType.GAUGE, "rate", False),
    (MetricType.RATE, "rate", True),
    (MetricType.RATE, "count", False),
    (MetricType.RATE, "avg", False),
    (MetricType.RATE, "value", False),
    (MetricType.TREND, "avg", True),
    (MetricType.TREND, "min", True),
    (MetricType.TREND, "max", True),
    (MetricType.TREND, "med", True),
    (MetricType.TREND, "p(0)", True),
    (MetricType.TREND, "p(99.99)", True),
    (MetricType.TREND, "count", False),
    (MetricType.TREND, "rate", False),
    (MetricType.TREND, "value", False),
]


@pytest.mark.parametrize(("type_", "aggregation", "allowed"), AGGREGATION_TABLE)
def test_aggregation_versus_metric_type(type_: MetricType, aggregation: str, allowed: bool) -> None:
    metrics = {"m": MetricDef("m", type_)}
    parsed, problems = parse_thresholds({"m": [f"{aggregation}<1"]}, metrics)
    if allowed:
        assert problems == []
        assert parsed[0].thresholds[0].aggregation == aggregation
    else:
        assert len(problems) == 1
        assert problems[0].startswith(
            f'options.thresholds["m"][0]: {type_.value} metrics have no "{aggregation}"; use one of: '
        )


def test_trend_problem_lists_percentile_form() -> None:
    (problem,) = problems_of({"http_req_duration": ["rate<1"]})
    assert problem.endswith("use one of: avg, min, max, med, p(N)")


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=20,
)
metric_keys = st.sampled_from(["http_req_duration", "checks", "http_reqs", "my_gauge", "x{a:b}", "nope"])
threshold_texts = st.sampled_from(["p(95)<500", "rate>0.9", "count>1", "value<5", "p95<1", "avg<"]) | st.text(
    max_size=12
)
plausible = st.dictionaries(
    metric_keys | st.text(max_size=10),
    st.lists(
        threshold_texts
        | st.fixed_dictionaries(
            {"threshold": threshold_texts},
            optional={"abortOnFail": json_like, "delayAbortEval": st.sampled_from(["1s", "x", 3]) | json_like},
        )
        | json_like,
        max_size=4,
    )
    | json_like,
    max_size=5,
)


@given(json_like | plausible)
def test_parse_thresholds_never_raises(config: object) -> None:
    parsed, problems = parse_thresholds(config, METRICS)
    assert all(isinstance(p, str) and p.startswith("options.thresholds") for p in problems)
    if not problems:
        for mt in parsed:
            assert mt.key in config  # type: ignore[operator]
            assert all(isinstance(t, Threshold) for t in mt.thresholds)


# --------------------------------------------------------------------------- evaluate


def thresholds_for(config: dict[str, list[object]]) -> list[MetricThresholds]:
    return parse_ok(config)


def verdicts_by_source(verdicts: list[Verdict]) -> dict[str, tuple[bool, float]]:
    return {f"{v.key} {v.source}": (v.ok, v.observed) for v in verdicts}


def test_evaluate_trend_on_a_sketch() -> None:
    ths = thresholds_for(
        {"http_req_duration": ["avg<51", "avg>50", "min==1", "max===100", "med<=51", "p(100)==100", "p(0)<1"]}
    )
    sink = TrendSink(Sketch.from_samples([float(x) for x in range(1, 101)]))
    got = verdicts_by_source(evaluate(ths, {"http_req_duration": sink}, 10.0))
    assert got == {
        "http_req_duration avg<51": (True, 50.5),
        "http_req_duration avg>50": (True, 50.5),
        "http_req_duration min==1": (True, 1.0),
        "http_req_duration max===100": (True, 100.0),
        "http_req_duration med<=51": (True, got["http_req_duration med<=51"][1]),
        "http_req_duration p(100)==100": (True, 100.0),
        "http_req_duration p(0)<1": (False, 1.0),
    }
    assert got["http_req_duration med<=51"][1] == pytest.approx(50.5, abs=0.5)


def test_evaluate_trend_percentile() -> None:
    ths = thresholds_for({"http_req_duration": ["p(95)<960", "p(95)<940", "p(99.9)>990"]})
    sink = TrendSink(Sketch.from_samples([float(x) for x in range(1, 1001)]))
    ok = [v.ok for v in evaluate(ths, {"http_req_duration": sink}, 1.0)]
    assert ok == [True, False, True]


def test_evaluate_rate() -> None:
    ths = thresholds_for({"http_req_failed": ["rate<0.01", "rate<=0.25", "rate==0.25"]})
    got = evaluate(ths, {"http_req_failed": RateSink(passes=25, total=100)}, 10.0)
    assert [(v.ok, v.observed) for v in got] == [(False, 0.25), (True, 0.25), (True, 0.25)]


def test_evaluate_counter_rate_is_count_per_second_of_run() -> None:
    ths = thresholds_for({"http_reqs": ["count>100", "rate>=10", "rate>10"]})
    got = evaluate(ths, {"http_reqs": CounterSink(200.0)}, 20.0)
    assert [(v.ok, v.observed) for v in got] == [(True, 200.0), (True, 10.0), (False, 10.0)]


def test_evaluate_gauge_uses_last_value() -> None:
    ths = thresholds_for({"my_gauge": ["value<5"]})
    g = GaugeSink()
    g.set(9.0, at_s=1.0)
    g.set(3.0, at_s=2.0)
    g.set(7.0, at_s=1.5)  # arrived late; not the last value
    (v,) = evaluate(ths, {"my_gauge": g}, 3.0)
    assert (v.ok, v.observed) == (True, 3.0)


def test_evaluate_sub_metric_uses_its_own_sink() -> None:
    ths = thresholds_for({"http_req_duration": ["max<100"], "http_req_duration{scenario:slow}": ["max<100"]})
    sinks: dict[str, Sink] = {
        "http_req_duration": TrendSink(Sketch.from_samples([10.0, 20.0])),
        "http_req_duration{scenario:slow}": TrendSink(Sketch.from_samples([500.0])),
    }
    assert [(v.key, v.ok) for v in evaluate(ths, sinks, 1.0)] == [
        ("http_req_duration", True),
        ("http_req_duration{scenario:slow}", False),
    ]


@pytest.mark.parametrize(
    ("key", "expression", "ok"),
    [
        ("http_req_duration", "p(95)<500", True),
        ("http_req_duration", "avg>0", False),
        ("http_reqs", "count>0", False),
        ("http_reqs", "rate==0", True),
        ("http_req_failed", "rate<0.01", True),
        ("checks", "rate>0.99", False),
        ("my_gauge", "value<5", True),
        ("my_gauge", "value!=0", False),
    ],
)
def test_metric_without_samples_is_judged_on_zero_values(key: str, expression: str, ok: bool) -> None:
    (v,) = evaluate(thresholds_for({key: [expression]}), {}, 10.0)
    assert (v.ok, v.observed) == (ok, 0.0)


def test_counter_rate_with_zero_duration_is_zero() -> None:
    (v,) = evaluate(thresholds_for({"http_reqs": ["rate>=0"]}), {"http_reqs": CounterSink(5.0)}, 0.0)
    assert (v.ok, v.observed) == (True, 0.0)


def test_nan_observed_never_passes() -> None:
    metric = METRICS["my_gauge"]
    ths = [
        MetricThresholds(
            "my_gauge",
            SeriesName("my_gauge"),
            metric,
            tuple(Threshold(f"value{op}0", "value", op, 0.0) for op in ("<", "<=", ">", ">=", "==", "!=")),
        )
    ]
    g = GaugeSink()
    g.set(math.nan, at_s=1.0)
    verdicts = evaluate(ths, {"my_gauge": g}, 1.0)
    assert len(verdicts) == 6
    assert not any(v.ok for v in verdicts)


def test_sink_of_the_wrong_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        evaluate(thresholds_for({"http_reqs": ["count>0"]}), {"http_reqs": RateSink()}, 1.0)


def test_verdict_carries_abort_settings() -> None:
    ths = thresholds_for({"checks": [{"threshold": "rate>0.99", "abortOnFail": True, "delayAbortEval": "10s"}]})
    (v,) = evaluate(ths, {"checks": RateSink(9, 10)}, 5.0)
    assert v == Verdict("checks", "rate>0.99", False, 0.9, True, 10.0)


_PY_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
}
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(observed=finite, limit=finite, op=st.sampled_from(sorted(_PY_OPS)), equal=st.booleans())
def test_operators_match_python(observed: float, limit: float, op: str, equal: bool) -> None:
    if equal:
        limit = observed
    _, _, value = parse_expression(f"value {op} {limit!r}")
    assert value == limit  # repr round-trips through the number grammar
    (mt,) = parse_ok({"my_gauge": [f"value{op}{limit!r}"]})
    g = GaugeSink()
    g.set(observed, at_s=0.0)
    (v,) = evaluate([mt], {"my_gauge": g}, 1.0)
    assert v.ok == _PY_OPS[op](observed, limit)
    assert v.observed == observed


# --------------------------------------------------------------------------- abort_verdict


def verdict(ok: bool, abort: bool, delay_s: float, source: str = "rate>0.9") -> Verdict:
    return Verdict("checks", source, ok, 0.5, abort, delay_s)


def test_abort_verdict_respects_delay() -> None:
    failing = verdict(False, True, 10.0)
    assert abort_verdict([failing], elapsed_s=9.999) is None
    assert abort_verdict([failing], elapsed_s=10.0) is failing
    assert abort_verdict([failing], elapsed_s=60.0) is failing


def test_abort_verdict_ignores_passing_and_non_aborting() -> None:
    assert abort_verdict([], 100.0) is None
    assert abort_verdict([verdict(True, True, 0.0), verdict(False, False, 0.0)], 100.0) is None


def test_abort_verdict_picks_the_first_eligible() -> None:
    later = verdict(False, True, 30.0, "a")
    first = verdict(False, True, 0.0, "b")
    second = verdict(False, True, 0.0, "c")
    assert abort_verdict([verdict(True, True, 0.0), later, first, second], 10.0) is first
    assert abort_verdict([verdict(True, True, 0.0), later, first, second], 30.0) is later


def test_abort_from_evaluated_config() -> None:
    ths = thresholds_for(
        {
            "checks": [{"threshold": "rate>0.99", "abortOnFail": True, "delayAbortEval": "10s"}],
            "http_req_duration": [{"threshold": "p(95)<500", "abortOnFail": True}],
        }
    )
    sinks: dict[str, Sink] = {
        "checks": RateSink(1, 2),
        "http_req_duration": TrendSink(Sketch.from_samples([100.0])),
    }
    verdicts = evaluate(ths, sinks, 5.0)
    assert abort_verdict(verdicts, 5.0) is None
    hit = abort_verdict(verdicts, 10.0)
    assert hit is not None and hit.key == "checks"

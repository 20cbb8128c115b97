"""Thresholds: k6's pass/fail criteria, parsed and checked before the run, judged after it.

A scenario states its thresholds in ``options["thresholds"]``, keyed by metric or sub-metric::

    "thresholds": {
        "http_req_duration": ["p(95)<500", "avg<200"],
        "http_req_duration{scenario:purchase}": ["p(99)<=800"],
        "checks": [{"threshold": "rate>0.99", "abortOnFail": True, "delayAbortEval": "10s"}],
    }

The grammar (whitespace is allowed around every token)::

    thresholds   = { key: [ threshold, ... ], ... }
    key          = metric [ "{" tag ":" value { "," tag ":" value } "}" ]
    threshold    = expression
                 | { "threshold": expression,          (required)
                     "abortOnFail": bool,              (default False)
                     "delayAbortEval": duration }      (default "0", e.g. "10s")
    expression   = aggregation operator number
    aggregation  = "avg" | "min" | "max" | "med" | "count" | "rate" | "value"
                 | "p(" N ")"                          N a decimal from 0 to 100: 95, 99.9
    operator     = "<" | "<=" | ">" | ">=" | "==" | "===" | "!="     ("===" means "==")
    number       = [+-] digits [ "." digits ] [ ("e" | "E") [+-] digits ]   (finite)

The list is required even for one threshold (k6 refuses a bare string too). An empty list is
valid and useful: it asks for the sub-metric to be tracked and shown in the summary without
judging it. Which aggregations make sense depends on the metric's type
(:data:`~surge.common.metrics.THRESHOLD_AGGREGATIONS`, k6's table):

=======  ==============================  ================================================
type     aggregations                    meaning
=======  ==============================  ================================================
counter  count, rate                     total; total per second of test time
gauge    value                           the last value set
rate     rate                            the share of non-zero adds, 0..1
trend    avg, min, max, med, p(N)        over every sample of the run (a sketch, see
                                         :mod:`surge.common.sketch`)
=======  ==============================  ================================================

Numbers compare in the metric's own unit: time metrics in milliseconds, data in bytes, so
``p(95)<0.5s`` is refused with a hint to write ``p(95)<500``.

Parsing (:func:`parse_thresholds`) happens before any load is generated and reports *every*
problem at once, each naming the key and index it comes from, so one edit fixes a config.
Judging (:func:`evaluate`) is a pure function of the merged sinks and the run's duration; a
series with no samples is judged on an empty sink, i.e. on zero values as k6 does, so
``count>0`` fails and ``p(95)<500`` passes when nothing was recorded. :func:`abort_verdict`
picks the verdict that should end a run early, if any.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from surge.common.durations import parse_duration
from surge.common.metrics import (
    THRESHOLD_AGGREGATIONS,
    MetricDef,
    SeriesName,
    Sink,
    aggregate,
    new_sink,
    parse_series_name,
)

OPERATORS = ("<", "<=", ">", ">=", "==", "!=")
AGGREGATIONS = ("avg", "min", "max", "med", "count", "rate", "value", "p(N)")
_OBJECT_KEYS = ("threshold", "abortOnFail", "delayAbortEval")

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_EXAMPLE = "p(95)<500"
_EXAMPLE_NUMBER = {"rate": "0.01", "count": "100", "value": "5"}
_WS = re.compile(r"\s*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# "p95" and "p99.9": the most common slip, worth its own message with the fixed expression.
_BARE_PERCENTILE = re.compile(r"p\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_OPERATOR = re.compile(r"===|==|!=|<=|>=|<|>")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNIT = re.compile(r"(?:h|m|s|ms|us|µs|ns)\Z")


@dataclass(frozen=True)
class Threshold:
    source: str  # the expression as written, e.g. "p(95)<500"
    aggregation: str  # "p(95)", "avg", "rate", ... (normalised: "p(95)" not "p( 95 )")
    operator: str  # one of < <= > >= == != ("===" normalised to "==")
    value: float
    abort_on_fail: bool = False
    delay_abort_eval_s: float = 0.0


@dataclass(frozen=True)
class MetricThresholds:
    key: str  # the key as the user wrote it, e.g. "http_req_duration{scenario:purchase}"
    series: SeriesName
    metric: MetricDef
    thresholds: tuple[Threshold, ...]


@dataclass(frozen=True)
class Verdict:
    key: str
    source: str
    ok: bool
    observed: float
    abort_on_fail: bool = False
    delay_abort_eval_s: float = 0.0


# --------------------------------------------------------------------------- expressions


def _q(text: str) -> str:
    """Quote for a message the way the config is written (JSON/Python double quotes)."""
    return json.dumps(text, ensure_ascii=False)


def _describe(obj: object) -> str:
    r = repr(obj)
    return f"{type(obj).__name__} {r if len(r) <= 60 else r[:57] + '...'}"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    folded = {c.lower().replace("_", ""): c for c in choices}
    match = folded.get(word.lower().replace("_", ""))
    if match is None:
        close = difflib.get_close_matches(word, choices, n=1)
        match = close[0] if close else None
    return f" (did you mean {_q(match)}?)" if match is not None else ""


def _canonical_decimal(text: str) -> str:
    """``"095.50"`` -> ``"95.5"``, ``".5"`` -> ``"0.5"``, ``"95."`` -> ``"95"``."""
    whole, _, frac = text.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _format_number(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


class _Bad(Exception):
    """Why an expression does not parse; turned into one ValueError naming the expression."""


def _skip_ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    assert m is not None  # \s* always matches
    return m.end()


def _parse_aggregation(text: str, pos: int) -> tuple[str, int]:
    m = _WORD.match(text, pos)
    if m is None:
        got = text[pos:]
        raise _Bad(
            f"it must start with an aggregation ({', '.join(AGGREGATIONS)}), got {_q(got)}; "
            f"expected e.g. {_q(_EXAMPLE)}"
        )
    word = m.group()
    if word == "p":
        after = _skip_ws(text, m.end())
        if not text.startswith("(", after):
            raise _Bad('expected "p(N)" with N from 0 to 100, e.g. "p(95)"')
        close = text.find(")", after)
        if close == -1:
            raise _Bad('"p(" is not closed; expected e.g. "p(95)"')
        inner = text[after + 1 : close].strip()
        if not _DECIMAL.match(inner):
            raise _Bad(
                f'percentile {_q(inner)} is not a number from 0 to 100; expected e.g. "p(95)" or "p(99.9)"'
            )
        if float(inner) > 100:
            raise _Bad(f"percentile {inner} is above 100; expected p(N) with N from 0 to 100")
        return f"p({_canonical_decimal(inner)})", close + 1
    if word in AGGREGATIONS:
        return word, m.end()
    raise _Bad(
        f"unknown aggregation {_q(word)}{_did_you_mean(word, AGGREGATIONS[:-1])}; "
        f"expected one of {', '.join(AGGREGATIONS)}"
    )


def _parse_operator(text: str, pos: int, aggregation: str) -> tuple[str, int]:
    m = _OPERATOR.match(text, pos)
    if m is not None:
        op = m.group()
        return ("==" if op == "===" else op), m.end()
    ops = ", ".join(OPERATORS)
    rest = text[pos:].rstrip()
    if not rest:
        raise _Bad(f"nothing follows {_q(aggregation)}; expected an operator ({ops}) and a number")
    for typo, meant in (("=>", ">="), ("=<", "<="), ("=", "==")):
        if rest.startswith(typo):
            raise _Bad(f"{_q(typo)} is not an operator (did you mean {_q(meant)}?); expected one of {ops}")
    raise _Bad(f"expected an operator ({ops}) after {_q(aggregation)}, got {_q(rest)}")


def _parse_number(text: str, pos: int, aggregation: str, op: str) -> float:
    m = _NUMBER.match(text, pos)
    if m is None:
        example = f"{aggregation}{op}{_EXAMPLE_NUMBER.get(aggregation, '500')}"
        rest = text[pos:].rstrip()
        what = f"{_q(rest)} is not a number" if rest else f"no number after {_q(op)}"
        raise _Bad(f"{what}; expected e.g. {_q(example)}")
    written = m.group()
    value = float(written)
    if not math.isfinite(value):
        raise _Bad(f"{written} is out of range; expected a finite number")
    end = _skip_ws(text, m.end())
    if end == len(text):
        return value
    rest = text[end:].rstrip()
    if _UNIT.match(rest) and value >= 0:
        try:
            ms = parse_duration(written.lstrip("+") + rest) * 1000
        except ValueError:
            pass
        else:
            raise _Bad(
                f"{_q(written + rest)} has a unit, but thresholds compare plain numbers in the "
                f"metric's unit (milliseconds for time metrics): write {_format_number(ms)}"
            )
    raise _Bad(f"unexpected {_q(rest)} after the number {written}")


def parse_expression(text: str) -> tuple[str, str, float]:
    """Parse ``aggregation operator number`` into ``(aggregation, operator, value)``.

    The aggregation is normalised (``"p( 95.0 )"`` -> ``"p(95)"``) and ``===`` becomes
    ``==``. Whether the aggregation suits the metric is not checked here (the metric is not
    known here); :func:`parse_thresholds` does that. Raises ``ValueError`` saying what was
    expected.
    """
    bare = _BARE_PERCENTILE.match(text, _skip_ws(text, 0))
    if bare is not None and not text.startswith("(", _skip_ws(text, bare.end())):
        fixed = text[: bare.start()] + f"p({bare.group(1)})" + text[bare.end() :]
        try:
            _parse(fixed)
        except _Bad:
            fixed = _EXAMPLE
        raise ValueError(f"{_q(text)} is not a threshold expression; expected e.g. {_q(fixed)}")
    try:
        return _parse(text)
    except _Bad as e:
        raise ValueError(f"{_q(text)} is not a threshold expression: {e}") from None


def _parse(text: str) -> tuple[str, str, float]:
    pos = _skip_ws(text, 0)
    if pos == len(text):
        raise _Bad(f'it is empty; expected "aggregation operator number", e.g. {_q(_EXAMPLE)}')
    aggregation, pos = _parse_aggregation(text, pos)
    op, pos = _parse_operator(text, _skip_ws(text, pos), aggregation)
    value = _parse_number(text, _skip_ws(text, pos), aggregation, op)
    return aggregation, op, value


# --------------------------------------------------------------------------- config


def _aggregation_problem(aggregation: str, metric: MetricDef) -> str | None:
    allowed = THRESHOLD_AGGREGATIONS[metric.type]
    kind = "p(N)" if aggregation.startswith("p(") else aggregation
    if kind in allowed:
        return None
    return f"{metric.type.value} metrics have no {_q(aggregation)}; use one of: {', '.join(allowed)}"


def _parse_key(
    key: object, metrics: Mapping[str, MetricDef], at: str, problems: list[str]
) -> tuple[SeriesName, MetricDef] | None:
    if not isinstance(key, str):
        problems.append(f"{at}: metric names are strings, got {_describe(key)}")
        return None
    try:
        series = parse_series_name(key)
    except ValueError as e:
        problems.append(f"{at}: {e}")
        return None
    metric = metrics.get(series.metric)
    if metric is None:
        hint = _did_you_mean(series.metric, sorted(metrics))
        if not hint:
            hint = "; expected a built-in metric or one the scenario defines"
        problems.append(f"{at}: unknown metric {_q(series.metric)}{hint}")
        return None
    return series, metric


def _parse_object(item: Mapping[object, object], at: str, problems: list[str]) -> Threshold | None:
    for k in item:
        if k not in _OBJECT_KEYS:
            name = _q(k) if isinstance(k, str) else repr(k)
            hint = _did_you_mean(k, _OBJECT_KEYS) if isinstance(k, str) else ""
            problems.append(f"{at}: unknown key {name}{hint}; expected {', '.join(_OBJECT_KEYS)}")
    abort = item.get("abortOnFail", False)
    if not isinstance(abort, bool):
        problems.append(f'{at}: "abortOnFail" must be True or False, got {_describe(abort)}')
        abort = False
    delay_s = 0.0
    if "delayAbortEval" in item:
        try:
            delay_s = parse_duration(item["delayAbortEval"])
        except ValueError as e:
            problems.append(f'{at}: "delayAbortEval": {e}')
    if "threshold" not in item:
        problems.append(f'{at}: missing "threshold"; expected e.g. {{"threshold": {_q(_EXAMPLE)}}}')
        return None
    source = item["threshold"]
    if not isinstance(source, str):
        problems.append(f'{at}: "threshold" must be a string such as {_q(_EXAMPLE)}, got {_describe(source)}')
        return None
    try:
        aggregation, op, value = parse_expression(source)
    except ValueError as e:
        problems.append(f"{at}: {e}")
        return None
    # Returned even when another key of the object is wrong, so that the aggregation is
    # still checked against the metric's type; the caller drops any key with a problem.
    return Threshold(source, aggregation, op, value, abort, delay_s)


def _parse_item(item: object, at: str, problems: list[str]) -> Threshold | None:
    if isinstance(item, str):
        try:
            aggregation, op, value = parse_expression(item)
        except ValueError as e:
            problems.append(f"{at}: {e}")
            return None
        return Threshold(item, aggregation, op, value)
    if isinstance(item, Mapping):
        return _parse_object(item, at, problems)
    problems.append(
        f"{at}: expected a threshold such as {_q(_EXAMPLE)} or "
        f'{{"threshold": {_q(_EXAMPLE)}, "abortOnFail": True}}, got {_describe(item)}'
    )
    return None


def _parse_list(spec: object, at: str, problems: list[str]) -> list[tuple[str, Threshold | None]]:
    """Each item's location and its threshold (None where it could not be parsed)."""
    if isinstance(spec, str):
        problems.append(
            f"{at}: expected a list of thresholds, got the string {_q(spec)}; "
            f"wrap it in a list: [{_q(spec)}]"
        )
        return []
    if not isinstance(spec, (list, tuple)):
        problems.append(
            f"{at}: expected a list of thresholds such as [{_q(_EXAMPLE)}], got {_describe(spec)}"
        )
        return []
    return [(f"{at}[{i}]", _parse_item(item, f"{at}[{i}]", problems)) for i, item in enumerate(spec)]


def parse_thresholds(
    config: object, metrics: Mapping[str, MetricDef], *, where: str = "options.thresholds"
) -> tuple[list[MetricThresholds], list[str]]:
    """Parse and check ``options["thresholds"]`` against the known ``metrics``.

    Returns the thresholds per key and every problem found (never raises for bad input);
    the thresholds are only meaningful when there are no problems. ``None`` means no
    thresholds. ``where`` prefixes each problem, e.g.
    ``options.thresholds["http_req_duration"][1]: "p95<500" is not a threshold expression...``
    """
    if config is None:
        return [], []
    if not isinstance(config, Mapping):
        not_a_dict = (
            f"{where}: expected a dict of metric name to a list of thresholds, e.g. "
            f'{{"http_req_duration": [{_q(_EXAMPLE)}]}}, got {_describe(config)}'
        )
        return [], [not_a_dict]
    parsed: list[MetricThresholds] = []
    problems: list[str] = []
    for key, spec in config.items():
        at = f"{where}[{_q(key) if isinstance(key, str) else repr(key)}]"
        before = len(problems)
        target = _parse_key(key, metrics, at, problems)
        items = _parse_list(spec, at, problems)
        if target is None:
            continue
        series, metric = target
        for item_at, threshold in items:
            if threshold is not None:
                problem = _aggregation_problem(threshold.aggregation, metric)
                if problem is not None:
                    problems.append(f"{item_at}: {problem}")
        if len(problems) == before:
            assert isinstance(key, str)
            ths = tuple(t for _, t in items if t is not None)
            parsed.append(MetricThresholds(key, series, metric, ths))
    return parsed, problems


# --------------------------------------------------------------------------- verdicts


def evaluate(
    thresholds: Sequence[MetricThresholds], sinks: Mapping[str, Sink], duration_s: float
) -> list[Verdict]:
    """Judge every threshold on the sink of its key (``MetricThresholds.key``).

    A key with no sink had no samples and is judged on an empty sink of its metric's type,
    i.e. on zero values. An observed NaN never passes. A sink of the wrong type is a
    programming error (``TypeError``).
    """
    verdicts: list[Verdict] = []
    for mt in thresholds:
        sink = sinks.get(mt.key)
        if sink is None:
            sink = new_sink(mt.metric.type)
        elif sink.type is not mt.metric.type:
            raise TypeError(f"{mt.key}: got a {sink.type.value} sink for a {mt.metric.type.value} metric")
        for th in mt.thresholds:
            observed = aggregate(sink, th.aggregation, duration_s)
            ok = not math.isnan(observed) and _COMPARE[th.operator](observed, th.value)
            verdicts.append(
                Verdict(mt.key, th.source, ok, observed, th.abort_on_fail, th.delay_abort_eval_s)
            )
    return verdicts


def abort_verdict(verdicts: Sequence[Verdict], elapsed_s: float) -> Verdict | None:
    """The first failed ``abortOnFail`` verdict whose ``delayAbortEval`` has passed, else None."""
    for v in verdicts:
        if not v.ok and v.abort_on_fail and v.delay_abort_eval_s <= elapsed_s:
            return v
    return None

"""A scenario's ``options`` dict (k6's keys, verbatim) validated into typed, frozen config.

:func:`parse_options` never raises on bad input: it returns every problem it finds, each
naming the key path and what was expected, so a user fixes a file in one pass, e.g.::

    options.scenarios.purchase.stages[1].duration: expected a duration string such as '30s' or '2m', got 5
    options.scenarios.purchase.stage: unknown key (did you mean "stages"?)

The caller turns the list into one :class:`~surge.common.errors.ConfigError` (exit code 104).
Durations are k6's strings (``"30s"``, ``"2m"``, ``"1m30s"``); a bare number is refused (see
:mod:`surge.common.durations`). Whole numbers must be ``int`` (not ``bool``, not ``float``).
List indices in paths are 0-based.

Top-level keys
--------------

=====================  ==========================================================================
key                    meaning in surge
=====================  ==========================================================================
``scenarios``          dict of scenario name (``^[0-9A-Za-z_-]+$``) to scenario dict, below
``thresholds``         dict, kept raw here; parsed and checked by the thresholds module
``summaryTrendStats``  list of ``avg``, ``min``, ``med``, ``max``, ``count``, ``p(N)`` (0..100);
                       default ``avg min med max p(90) p(95)``
``summaryTimeUnit``    ``s``, ``ms`` or ``us``: every duration in the summary text in that unit
                       (unset, ``""`` or ``None``: each in the unit its size picks, as k6)
``vus``+``duration``   k6's shortcut: one constant-vus scenario named ``default``
                       (``vus`` defaults to 1 when only ``duration`` is given)
``stages``             k6's shortcut: one ramping-vus scenario named ``default``, with
                       ``startVUs`` = ``vus`` if given, else 1
``setupTimeout``       duration ``setup()`` may take (default ``60s``; past it, exit 100)
``teardownTimeout``    duration ``teardown()`` may take (default ``60s``; past it, exit 101)
HTTP options           ``discardResponseBodies``, ``insecureSkipTLSVerify``, ``userAgent``,
                       ``maxRedirects``, ``noConnectionReuse``, ``noVUConnectionReuse``, ``hosts``,
                       ``tlsVersion``, ``dns``, ``batch``, ``batchPerHost``: k6's, read by
                       :mod:`surge.common.http_options` (their table is there)
``maxEndpoints``       surge's own: rows of the per-endpoint table, 1..10000 (default 100); the
                       requests of any later name go to one ``__overflow__`` row
                       (:mod:`surge.common.endpoint_stats`)
``iterations``         k6's shortcut: one shared-iterations scenario named ``default``, with
                       ``vus`` (default 1) and ``duration`` as its ``maxDuration`` (default 10m)
=====================  ==========================================================================

The shortcuts cannot be mixed with ``scenarios``, nor ``duration`` or ``iterations`` with
``stages`` (k6 refuses both). ``vus`` alone means one iteration in k6, which surge does not
support yet; nor does it support k6's no-options default (1 VU, 1 iteration). Every other k6
option (``tags``, ``throw``, ``tlsAuth``...) is reported as
"not supported yet" rather than silently ignored; anything else is an unknown option, with a
suggestion when one is close.

Scenario keys
-------------

====================  ============  ==============================  ==========================
key                   executor      type                            default
====================  ============  ==============================  ==========================
``executor``          all           one of the six below            required
``exec``              all           function name (identifier)      ``"default"``
``startTime``         all           duration                        ``"0s"``
``gracefulStop``      all           duration                        ``"30s"``
``env``               all           dict str -> str                 ``{}``
``tags``              all           dict str -> str                 ``{}``
``vus``               constant-vus  whole number >= 1               1
``duration``          constant-vus  duration > 0                    required
``startVUs``          ramping-vus   whole number >= 0               1
``stages``            ramping-vus   non-empty list of               required
                                    ``{duration, target}``
``gracefulRampDown``  ramping-vus   duration                        ``"30s"``
``vus``               per-vu-it.,   whole number >= 1               1
                      shared-it.
``iterations``        per-vu-it.,   whole number >= 1 (per VU, or   1
                      shared-it.    in all and >= ``vus``)
``maxDuration``       per-vu-it.,   duration > 0                    ``"10m"``
                      shared-it.
``rate``              c-a-rate      whole number >= 1 per timeUnit  required
``duration``          c-a-rate      duration > 0                    required
``startRate``         r-a-rate      whole number >= 0 per timeUnit  0
``stages``            r-a-rate      ``{duration, target}``, targets required
                                    are rates per timeUnit
``timeUnit``          c/r-a-rate    duration > 0                    ``"1s"``
``preAllocatedVUs``   c/r-a-rate    whole number >= 0               required
``maxVUs``            c/r-a-rate    whole number >= preAllocatedVUs ``preAllocatedVUs``
====================  ============  ==============================  ==========================

(per-vu-it. and shared-it. are ``per-vu-iterations`` and ``shared-iterations``; c-a-rate and
r-a-rate ``constant-arrival-rate`` and ``ramping-arrival-rate``.) As in k6, a ramping-vus
scenario needs ``startVUs`` or some stage target above 0, and a ramping-arrival-rate one
``startRate`` or some target above 0; an arrival-rate scenario needs ``maxVUs`` above 0. A key
of another executor is named as such (``not a constant-vus option (it belongs to ...)``).
Every VU count is at most :data:`MAX_VUS` (a million), since a plan has one step per VU
change; iterations and rates are played lazily and only bounded by :data:`MAX_ITERATIONS`.
``externally-controlled`` is reported as not supported yet.
Whether ``exec`` names a function that exists is the scenario loader's check, not this one.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from surge.common.durations import parse_duration
from surge.common.http_options import HTTP_KEYS, HttpOptions, parse_http_options
from surge.common.metrics import DEFAULT_TREND_STATS
from surge.common.endpoint_stats import DEFAULT_MAX_ENDPOINTS, MAX_ENDPOINTS_LIMIT
from surge.common.arrivals import ArrivalPlan, RateSegment
from surge.common.schedule import Stage, Step, constant_vus_steps, max_vus, ramping_vus_steps, total_duration_s


class Executor(Enum):
    RAMPING_VUS = "ramping-vus"
    CONSTANT_VUS = "constant-vus"
    PER_VU_ITERATIONS = "per-vu-iterations"
    SHARED_ITERATIONS = "shared-iterations"
    CONSTANT_ARRIVAL_RATE = "constant-arrival-rate"
    RAMPING_ARRIVAL_RATE = "ramping-arrival-rate"

    @property
    def counts_iterations(self) -> bool:
        return self in (Executor.PER_VU_ITERATIONS, Executor.SHARED_ITERATIONS)

    @property
    def arrival_rate(self) -> bool:
        return self in (Executor.CONSTANT_ARRIVAL_RATE, Executor.RAMPING_ARRIVAL_RATE)


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ScenarioConfig:
    """One validated scenario. Field defaults are k6's; unused fields keep their defaults."""

    name: str
    executor: Executor
    exec_name: str = "default"
    start_time_s: float = 0.0
    graceful_stop_s: float = 30.0
    graceful_ramp_down_s: float = 30.0
    start_vus: int = 1
    stages: tuple[Stage, ...] = ()
    vus: int = 1
    duration_s: float = 0.0
    iterations: int = 1  # per VU (per-vu-iterations) or in all (shared-iterations)
    max_duration_s: float = 600.0
    rate: int = 0  # iterations per time unit (constant-arrival-rate)
    start_rate: int = 0  # ramping-arrival-rate; its stages' targets are rates too
    time_unit_s: float = 1.0
    pre_allocated_vus: int = 0
    max_vus_limit: int = 0  # maxVUs, already defaulted to preAllocatedVUs
    # Excluded from the hash (a mapping is unhashable) but not from equality.
    env: Mapping[str, str] = field(default_factory=_empty, hash=False)
    tags: Mapping[str, str] = field(default_factory=_empty, hash=False)

    def steps(self) -> list[Step]:
        """The global VU plan, offsets relative to the scenario's own start (not ``startTime``).

        For the iteration executors, ``vus`` for up to ``maxDuration``; for the arrival-rate
        ones, the ``maxVUs`` that may be allocated, up to the end of the rate plan.
        """
        if self.executor is Executor.RAMPING_VUS:
            return ramping_vus_steps(self.start_vus, self.stages)
        if self.executor.arrival_rate:
            return constant_vus_steps(self.max_vus_limit, self.length_s())
        return constant_vus_steps(self.vus, self.length_s())

    def length_s(self) -> float:
        """When the scenario stops starting iterations (graceful stop not included)."""
        if self.executor is Executor.CONSTANT_VUS or self.executor is Executor.CONSTANT_ARRIVAL_RATE:
            return self.duration_s
        if self.executor.counts_iterations:
            return self.max_duration_s
        return total_duration_s(self.stages)

    def arrival_plan(self) -> ArrivalPlan:
        """The rate plan of an arrival-rate scenario (see :mod:`surge.common.arrivals`)."""
        segments: tuple[RateSegment, ...]
        if self.executor is Executor.CONSTANT_ARRIVAL_RATE:
            segments = (RateSegment(self.duration_s, self.rate, self.rate),)
        elif self.executor is Executor.RAMPING_ARRIVAL_RATE:
            rates = [self.start_rate, *(s.target for s in self.stages)]
            segments = tuple(RateSegment(s.duration_s, a, b) for s, a, b in zip(self.stages, rates, rates[1:]))
        else:
            raise ValueError(f"{self.executor.value} is not an arrival-rate executor")
        return ArrivalPlan(self.time_unit_s, segments, first_at_zero=self.executor is Executor.CONSTANT_ARRIVAL_RATE)

    def max_vus(self) -> int:
        return max_vus(self.steps())

    def end_offset_s(self) -> float:
        """Seconds after the run's start by which this scenario is over for sure."""
        return self.start_time_s + self.steps()[-1].offset_s + self.graceful_stop_s


@dataclass(frozen=True)
class Options:
    """Validated options. ``thresholds`` and ``raw`` are read-only views (``dict()`` them for JSON)."""

    scenarios: tuple[ScenarioConfig, ...]
    thresholds: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    summary_trend_stats: tuple[str, ...] = DEFAULT_TREND_STATS
    summary_time_unit: str = ""  # k6's summaryTimeUnit: "" (each duration in its own unit), "s", "ms" or "us"
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    setup_timeout_s: float = 60.0  # k6's setupTimeout and teardownTimeout (exits 100 and 101)
    teardown_timeout_s: float = 60.0
    discard_response_bodies: bool = False  # k6's: every response's body is None (read, counted, dropped)
    max_endpoints: int = DEFAULT_MAX_ENDPOINTS  # surge's maxEndpoints: rows of the per-endpoint table
    http: HttpOptions = HttpOptions()  # k6's HTTP options (discard_response_bodies among them)

    def max_duration_s(self) -> float:
        """When the last scenario is over for sure (its ``end_offset_s``), 0 with none."""
        return max((s.end_offset_s() for s in self.scenarios), default=0.0)

    def total_max_vus(self) -> int:
        """The sum of every scenario's peak: the size of the fleet-wide VU id space.

        Scenarios get disjoint id ranges in declaration order (a VU's id is the sum of the
        previous scenarios' ``max_vus()`` + its index + 1), even when they do not overlap in
        time.
        """
        return sum(s.max_vus() for s in self.scenarios)


# --------------------------------------------------------------------------- what is known

_EXECUTORS = {e.value: e for e in Executor}
_K6_OTHER_EXECUTORS = ("externally-controlled",)
_COMMON_KEYS = ("executor", "exec", "startTime", "gracefulStop", "env", "tags")
_EXECUTOR_KEYS: dict[Executor, tuple[str, ...]] = {
    Executor.CONSTANT_VUS: ("vus", "duration"),
    Executor.RAMPING_VUS: ("startVUs", "stages", "gracefulRampDown"),
    Executor.PER_VU_ITERATIONS: ("vus", "iterations", "maxDuration"),
    Executor.SHARED_ITERATIONS: ("vus", "iterations", "maxDuration"),
    Executor.CONSTANT_ARRIVAL_RATE: ("rate", "duration", "preAllocatedVUs", "timeUnit", "maxVUs"),
    Executor.RAMPING_ARRIVAL_RATE: ("stages", "preAllocatedVUs", "startRate", "timeUnit", "maxVUs"),
}
# Scenario keys of k6's other executors: named as such rather than as unknown.
_K6_OTHER_SCENARIO_KEYS: tuple[str, ...] = ()
_STAGE_KEYS = ("duration", "target")

_SUPPORTED_TOP = (
    "scenarios", "thresholds", "summaryTrendStats", "vus", "duration", "stages", "iterations", "setupTimeout",
    "teardownTimeout", "summaryTimeUnit", "maxEndpoints", *HTTP_KEYS,
)
_K6_UNSUPPORTED_TOP: dict[str, str] = {
    "executionSegment": "surge splits the load over its workers itself",
    "executionSegmentSequence": "surge splits the load over its workers itself",
    "vusMax": "it was removed from k6 too",
}
for _key in (
    "blacklistIPs", "blockHostnames", "cloud", "consoleOutput",
    "ext", "httpDebug", "linger",
    "localIPs", "metricSamplesBufferSize", "minIterationDuration",
    "noCookiesReset", "noSetup", "noSummary", "noTeardown", "noThresholds",
    "noUsageReport", "paused", "rps", "summaryExport",
    "systemTags", "tags", "throw", "tlsAuth",
    "tlsCipherSuites",
):  # fmt: skip
    _K6_UNSUPPORTED_TOP.setdefault(_key, "")

# k6's summaryTimeUnit values ("" is unset: each duration is shown in the unit its size picks).
SUMMARY_TIME_UNITS = ("", "s", "ms", "us")

_SCENARIO_NAME_RE = re.compile(r"^[0-9A-Za-z_-]+$")
_TREND_STAT_RE = re.compile(r"^(?:avg|min|med|max|count|p\((\d+(?:\.\d+)?)\))$")
_NO_SCENARIOS = "no scenarios: set {where}.scenarios, or {where}.stages, or {where}.vus and {where}.duration"
_DURATION_EXAMPLE = "expected a duration string such as '30s' or '2m'"

# A plan has one step per VU started or stopped, so a typo like ``target: 10000000000`` would
# exhaust memory while planning; refuse it here, with the path, instead.
MAX_VUS = 1_000_000
# Iterations and rates are played lazily (nothing is planned per iteration), so their bound
# only keeps a typo from meaning a run that never ends.
MAX_ITERATIONS = 10**12


# --------------------------------------------------------------------------- helpers


def _show(value: object, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ fails must not crash validation
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _child(path: str, key: str) -> str:
    """``path.key`` for a plain key, ``path["odd key"]`` otherwise."""
    return f"{path}.{key}" if _SCENARIO_NAME_RE.match(key) else f"{path}[{_quoted(key)}]"


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {_quoted(close[0])}?)" if close else ""


class _Checker:
    """Collects problems while reading; each read returns a value or ``None`` when it failed."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, value: object, path: str, expected: str) -> dict[str, Any] | None:
        """A mapping with string keys (non-string keys are reported and skipped)."""
        if not isinstance(value, Mapping):
            self.add(path, f"expected {expected}, got {_show(value)}")
            return None
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str):
                out[key] = item
            else:
                self.add(path, f"keys must be strings, got {_show(key)}")
        return out

    def whole(self, value: object, path: str, minimum: int, *, vus: bool = True) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected a whole number >= {minimum}, got {_show(value)}")
            return None
        if value < minimum:
            self.add(path, f"expected a whole number >= {minimum}, got {value}")
            return None
        if vus and value > MAX_VUS:
            self.add(path, f"{value} VUs is more than surge plans for (at most {MAX_VUS} per scenario)")
            return None
        if value > MAX_ITERATIONS:
            self.add(path, f"{value} is more than surge plans for (at most {MAX_ITERATIONS})")
            return None
        return value

    def duration(self, value: object, path: str, *, positive: bool = False) -> float | None:
        if not isinstance(value, str):
            self.add(path, f"{_DURATION_EXAMPLE}, got {_show(value)}")
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.add(path, str(e))
            return None
        if not math.isfinite(seconds):
            self.add(path, f"duration {_show(value)} is too long")
            return None
        if positive and seconds <= 0:
            self.add(path, f"must be longer than 0, got {_show(value)}")
            return None
        return seconds

    def str_map(self, value: object, path: str) -> Mapping[str, str] | None:
        items = self.mapping(value, path, "a dict of strings to strings")
        if items is None:
            return None
        bad = [key for key, item in items.items() if not isinstance(item, str)]
        for key in bad:
            self.add(_child(path, key), f"expected a string, got {_show(items[key])}")
        return None if bad else MappingProxyType(items)


# --------------------------------------------------------------------------- scenarios


def _check_stages(c: _Checker, value: object, path: str, *, rates: bool = False) -> tuple[Stage, ...] | None:
    if not isinstance(value, (list, tuple)):
        c.add(path, f'expected a list of {{"duration": ..., "target": ...}} dicts, got {_show(value)}')
        return None
    if not value:
        c.add(path, "expected at least one stage")
        return None
    stages: list[Stage] = []
    for i, raw_stage in enumerate(value):
        where = f"{path}[{i}]"
        stage = c.mapping(raw_stage, where, 'a dict with "duration" and "target"')
        if stage is None:
            continue
        for key in (k for k in stage if k not in _STAGE_KEYS):
            hint = _did_you_mean(key, _STAGE_KEYS) or '; expected "duration" and "target"'
            c.add(_child(where, key), "unknown key" + hint)
        duration = target = None
        if "duration" in stage:
            duration = c.duration(stage["duration"], f"{where}.duration")
        else:
            c.add(f"{where}.duration", f"required; {_DURATION_EXAMPLE}")
        if "target" in stage:
            target = c.whole(stage["target"], f"{where}.target", 0, vus=not rates)
        else:
            what = "iterations per timeUnit" if rates else "VUs"
            c.add(f"{where}.target", f"required; expected a whole number of {what} >= 0")
        if duration is not None and target is not None:
            stages.append(Stage(duration, target))
    return tuple(stages) if len(stages) == len(value) else None


def _check_exec(c: _Checker, value: object, path: str) -> str | None:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        c.add(path, f"expected the name of a function in the scenario file, got {_show(value)}")
        return None
    return value


def _check_executor(c: _Checker, value: object, path: str) -> Executor | None:
    supported = ", ".join(sorted(_EXECUTORS))
    if not isinstance(value, str):
        c.add(path, f"expected one of: {supported}; got {_show(value)}")
    elif value in _EXECUTORS:
        return _EXECUTORS[value]
    elif value in _K6_OTHER_EXECUTORS:
        c.add(path, f"{_quoted(value)} is not supported yet by surge; supported executors: {supported}")
    else:
        hint = _did_you_mean(value, [*_EXECUTORS, *_K6_OTHER_EXECUTORS])
        c.add(path, f"{_quoted(value)} is not a supported executor; expected one of: {supported}{hint}")
    return None


def _check_scenario(c: _Checker, name: str, value: object, path: str) -> ScenarioConfig | None:
    before = len(c.problems)
    if not _SCENARIO_NAME_RE.match(name):
        c.add(path, 'invalid scenario name; use only letters, digits, "_" and "-"')
    sc = c.mapping(value, path, 'a dict with an "executor" key')
    if sc is None:
        return None

    executor: Executor | None = None
    if "executor" in sc:
        executor = _check_executor(c, sc["executor"], f"{path}.executor")
    else:
        c.add(f"{path}.executor", f"required; expected one of: {', '.join(sorted(_EXECUTORS))}")

    # With an unusable executor, still check every key some executor knows.
    every = tuple(dict.fromkeys(k for ks in _EXECUTOR_KEYS.values() for k in ks))
    own = _EXECUTOR_KEYS[executor] if executor else every
    allowed = _COMMON_KEYS + own
    for key in (k for k in sc if k not in allowed):
        owners = [e.value for e, ks in _EXECUTOR_KEYS.items() if key in ks]
        if owners and executor is not None:
            c.add(
                _child(path, key),
                f"not a {executor.value} option (it belongs to {', '.join(owners)}); "
                f"a {executor.value} scenario takes {' and '.join(_EXECUTOR_KEYS[executor][:2])}",
            )
        else:
            hint = _did_you_mean(key, allowed) or f"; expected one of: {', '.join(sorted(allowed))}"
            c.add(_child(path, key), "unknown key" + hint)

    kw: dict[str, Any] = {"name": name}
    if "exec" in sc:
        kw["exec_name"] = _check_exec(c, sc["exec"], f"{path}.exec")
    if "startTime" in sc:
        kw["start_time_s"] = c.duration(sc["startTime"], f"{path}.startTime")
    if "gracefulStop" in sc:
        kw["graceful_stop_s"] = c.duration(sc["gracefulStop"], f"{path}.gracefulStop")
    if "env" in sc:
        kw["env"] = c.str_map(sc["env"], f"{path}.env")
    if "tags" in sc:
        kw["tags"] = c.str_map(sc["tags"], f"{path}.tags")

    # Each key means the same in every executor that takes it (as in k6).
    readers: dict[str, tuple[str, Callable[[object, str], Any]]] = {
        "vus": ("vus", lambda v, p: c.whole(v, p, 1)),
        "duration": ("duration_s", lambda v, p: c.duration(v, p, positive=True)),
        "startVUs": ("start_vus", lambda v, p: c.whole(v, p, 0)),
        "gracefulRampDown": ("graceful_ramp_down_s", lambda v, p: c.duration(v, p)),
        "stages": ("stages", lambda v, p: _check_stages(c, v, p, rates=bool(executor and executor.arrival_rate))),
        "iterations": ("iterations", lambda v, p: c.whole(v, p, 1, vus=False)),
        "maxDuration": ("max_duration_s", lambda v, p: c.duration(v, p, positive=True)),
        "rate": ("rate", lambda v, p: c.whole(v, p, 1, vus=False)),
        "startRate": ("start_rate", lambda v, p: c.whole(v, p, 0, vus=False)),
        "timeUnit": ("time_unit_s", lambda v, p: c.duration(v, p, positive=True)),
        "preAllocatedVUs": ("pre_allocated_vus", lambda v, p: c.whole(v, p, 0)),
        "maxVUs": ("max_vus_limit", lambda v, p: c.whole(v, p, 0)),
    }
    for key in own:
        if key in sc:
            field_name, read = readers[key]
            kw[field_name] = read(sc[key], f"{path}.{key}")
    if executor is not None:
        _check_required(c, executor, sc, path)
        _check_together(c, executor, kw, path)

    if executor is None or len(c.problems) > before:
        return None
    if executor.arrival_rate and "max_vus_limit" not in kw:
        kw["max_vus_limit"] = kw["pre_allocated_vus"]
    return ScenarioConfig(executor=executor, **kw)


_REQUIRED: dict[Executor, tuple[tuple[str, str], ...]] = {
    Executor.CONSTANT_VUS: (("duration", _DURATION_EXAMPLE),),
    Executor.RAMPING_VUS: (("stages", 'expected a list of {"duration": ..., "target": ...}'),),
    Executor.CONSTANT_ARRIVAL_RATE: (
        ("rate", "expected a whole number of iterations per timeUnit >= 1"),
        ("duration", _DURATION_EXAMPLE),
        ("preAllocatedVUs", "expected a whole number of VUs >= 0"),
    ),
    Executor.RAMPING_ARRIVAL_RATE: (
        ("stages", 'expected a list of {"duration": ..., "target": iterations per timeUnit}'),
        ("preAllocatedVUs", "expected a whole number of VUs >= 0"),
    ),
}


def _check_required(c: _Checker, executor: Executor, sc: Mapping[str, Any], path: str) -> None:
    for key, expected in _REQUIRED.get(executor, ()):
        if key not in sc:
            c.add(f"{path}.{key}", f"required for a {executor.value} scenario; {expected}")


def _check_together(c: _Checker, executor: Executor, kw: Mapping[str, Any], path: str) -> None:
    """Problems of one key's value given another's (only when both were read without problems)."""
    if executor is Executor.RAMPING_VUS:
        start_vus, stages = kw.get("start_vus", 1), kw.get("stages")
        if start_vus is not None and stages:
            _check_some_vus(c, start_vus, stages, path)
    elif executor is Executor.SHARED_ITERATIONS:
        vus, iterations = kw.get("vus", 1), kw.get("iterations", 1)
        if vus is not None and iterations is not None and iterations < vus:
            c.add(
                f"{path}.iterations",
                f"{iterations} iterations cannot be shared among {vus} VUs (k6 refuses it too); "
                f"set iterations >= vus",
            )
    elif executor.arrival_rate:
        pre, top = kw.get("pre_allocated_vus"), kw.get("max_vus_limit", kw.get("pre_allocated_vus"))
        if pre is not None and top is not None:
            if top < pre:
                c.add(f"{path}.maxVUs", f"must be at least preAllocatedVUs ({pre}), got {top}")
            elif top == 0:
                c.add(f"{path}.preAllocatedVUs", "preAllocatedVUs or maxVUs must be above 0, or no iteration can run")
        start, stages = kw.get("start_rate", 0), kw.get("stages")
        if executor is Executor.RAMPING_ARRIVAL_RATE and start is not None and stages:
            if start == 0 and all(s.target == 0 for s in stages):
                c.add(path, "startRate or one of the stages' targets must be above 0, or no iteration ever starts")


def _check_some_vus(c: _Checker, start_vus: int, stages: tuple[Stage, ...], path: str) -> None:
    if start_vus == 0 and all(s.target == 0 for s in stages):
        c.add(path, "startVUs or one of the stages' targets must be above 0, or no VU ever runs")


def _check_scenarios(c: _Checker, value: object, path: str) -> list[ScenarioConfig]:
    before = len(c.problems)
    scenarios = c.mapping(value, path, "a dict of scenario name to scenario")
    if scenarios is None:
        return []
    if not scenarios and len(c.problems) == before:
        c.add(path, _NO_SCENARIOS.format(where=path.rpartition(".")[0]))
    out = []
    for name, sc in scenarios.items():
        cfg = _check_scenario(c, name, sc, _child(path, name))
        if cfg is not None:
            out.append(cfg)
    return out


# --------------------------------------------------------------------------- shortcuts


def _shortcut_scenario(c: _Checker, opts: dict[str, Any], where: str) -> ScenarioConfig | None:
    """k6's ``vus``/``duration``/``stages``/``iterations`` shortcuts as one scenario named ``default``."""
    before = len(c.problems)
    if "iterations" in opts:
        # k6: iterations win; a duration becomes the shared-iterations' maxDuration.
        if "stages" in opts:
            c.add(f"{where}.iterations", f"cannot be used together with {where}.stages; use {where}.scenarios")
            return None
        vus = c.whole(opts["vus"], f"{where}.vus", 1) if "vus" in opts else 1
        iterations = c.whole(opts["iterations"], f"{where}.iterations", 1, vus=False)
        max_duration = c.duration(opts["duration"], f"{where}.duration", positive=True) if "duration" in opts else 600.0
        if vus is not None and iterations is not None and iterations < vus:
            c.add(f"{where}.iterations", f"{iterations} iterations cannot be shared among {vus} VUs (k6 refuses it too)")
        if len(c.problems) > before or vus is None or iterations is None or max_duration is None:
            return None
        return ScenarioConfig(
            "default", Executor.SHARED_ITERATIONS, vus=vus, iterations=iterations, max_duration_s=max_duration
        )
    if "duration" in opts and "stages" in opts:
        c.add(
            f"{where}.duration",
            f"cannot be used together with {where}.stages (k6 refuses that too); the stages set the length",
        )
    if "stages" in opts:
        start_vus = c.whole(opts["vus"], f"{where}.vus", 0) if "vus" in opts else 1
        stages = _check_stages(c, opts["stages"], f"{where}.stages")
        if stages and start_vus is not None:
            _check_some_vus(c, start_vus, stages, where)
        if len(c.problems) > before or stages is None or start_vus is None:
            return None
        return ScenarioConfig("default", Executor.RAMPING_VUS, start_vus=start_vus, stages=stages)
    if "duration" in opts:
        vus = c.whole(opts["vus"], f"{where}.vus", 1) if "vus" in opts else 1
        duration_s = c.duration(opts["duration"], f"{where}.duration", positive=True)
        if vus is None or duration_s is None:
            return None
        return ScenarioConfig("default", Executor.CONSTANT_VUS, vus=vus, duration_s=duration_s)
    if "vus" in opts:
        c.add(
            f"{where}.vus",
            "without a duration or stages k6 runs each VU for one iteration, which surge does "
            f"not support yet; add {where}.duration (e.g. '30s') or {where}.stages",
        )
    return None


# --------------------------------------------------------------------------- the entry point


def _check_trend_stats(c: _Checker, value: object, path: str) -> tuple[str, ...] | None:
    expected = "avg, min, med, max, count or p(N) with 0 <= N <= 100"
    if not isinstance(value, (list, tuple)):
        c.add(path, f"expected a list of trend statistics ({expected}), got {_show(value)}")
        return None
    stats: list[str] = []
    for i, stat in enumerate(value):
        m = _TREND_STAT_RE.match(stat) if isinstance(stat, str) else None
        if m is None or (m.group(1) is not None and float(m.group(1)) > 100):
            c.add(f"{path}[{i}]", f"expected one of {expected}, got {_show(stat)}")
        else:
            stats.append(stat)
    return tuple(stats) if len(stats) == len(value) else None


def parse_options(raw: object, *, where: str = "options") -> tuple[Options | None, list[str]]:
    """Validate ``raw`` (a scenario's ``options``): ``(Options, [])`` or ``(None, problems)``.

    Never raises on bad input; every problem is reported, each prefixed by its key path
    starting at ``where``.
    """
    c = _Checker()
    opts = c.mapping(raw, where, "a dict of k6 options")
    if opts is None:
        return None, c.problems

    for key in opts:
        if key in _SUPPORTED_TOP:
            continue
        if key in _K6_UNSUPPORTED_TOP:
            why = _K6_UNSUPPORTED_TOP[key]
            detail = f"; {why.format(where=where)}" if why else ""
            c.add(_child(where, key), "a k6 option, not supported yet by surge" + detail)
        else:
            hint = _did_you_mean(key, [*_SUPPORTED_TOP, *_K6_UNSUPPORTED_TOP])
            c.add(_child(where, key), "unknown option" + (hint or f"; surge supports: {', '.join(_SUPPORTED_TOP)}"))

    scenarios: list[ScenarioConfig] = []
    shortcuts = [k for k in ("vus", "duration", "stages", "iterations") if k in opts]
    if "scenarios" in opts:
        for key in shortcuts:
            c.add(
                f"{where}.{key}",
                f"cannot be used together with {where}.scenarios (k6 refuses that too); "
                "move it into a scenario",
            )
        scenarios = _check_scenarios(c, opts["scenarios"], f"{where}.scenarios")
    elif shortcuts:
        sc = _shortcut_scenario(c, opts, where)
        scenarios = [sc] if sc is not None else []
    else:
        c.add(where, _NO_SCENARIOS.format(where=where))

    thresholds: Mapping[str, Any] = MappingProxyType({})
    if "thresholds" in opts:
        checked = c.mapping(opts["thresholds"], f"{where}.thresholds", "a dict of metric name to thresholds")
        thresholds = MappingProxyType(checked) if checked is not None else thresholds

    trend_stats: tuple[str, ...] | None = DEFAULT_TREND_STATS
    if "summaryTrendStats" in opts:
        trend_stats = _check_trend_stats(c, opts["summaryTrendStats"], f"{where}.summaryTrendStats")

    time_unit = opts.get("summaryTimeUnit", "")
    if time_unit is None:
        time_unit = ""  # k6's null: unset
    if time_unit not in SUMMARY_TIME_UNITS:
        c.add(f"{where}.summaryTimeUnit", f"expected 's', 'ms' or 'us' (as k6), got {_show(time_unit)}")

    http, http_problems = parse_http_options(opts, where=where)
    c.problems.extend(http_problems)
    max_endpoints = opts.get("maxEndpoints", DEFAULT_MAX_ENDPOINTS)
    if isinstance(max_endpoints, bool) or not isinstance(max_endpoints, int) or not (
        1 <= max_endpoints <= MAX_ENDPOINTS_LIMIT
    ):
        c.add(f"{where}.maxEndpoints",
              f"expected a whole number of rows from 1 to {MAX_ENDPOINTS_LIMIT}, got {_show(max_endpoints)}")
    timeouts: dict[str, float | None] = {}
    for key in ("setupTimeout", "teardownTimeout"):
        timeouts[key] = c.duration(opts[key], f"{where}.{key}", positive=True) if key in opts else 60.0

    if c.problems or trend_stats is None:
        return None, c.problems
    return (
        Options(
            scenarios=tuple(scenarios),
            thresholds=thresholds,
            summary_trend_stats=trend_stats,
            summary_time_unit=str(time_unit),
            raw=MappingProxyType(dict(opts)),
            setup_timeout_s=timeouts["setupTimeout"] or 60.0,
            teardown_timeout_s=timeouts["teardownTimeout"] or 60.0,
            discard_response_bodies=http.discard_response_bodies,
            http=http,
            max_endpoints=max_endpoints,
        ),
        [],
    )

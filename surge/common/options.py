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
``vus``+``duration``   k6's shortcut: one constant-vus scenario named ``default``
                       (``vus`` defaults to 1 when only ``duration`` is given)
``stages``             k6's shortcut: one ramping-vus scenario named ``default``, with
                       ``startVUs`` = ``vus`` if given, else 1
``setupTimeout``       duration ``setup()`` may take (default ``60s``; past it, exit 100)
``teardownTimeout``    duration ``teardown()`` may take (default ``60s``; past it, exit 101)
=====================  ==========================================================================

The shortcuts cannot be mixed with ``scenarios``, nor ``duration`` with ``stages`` (k6 refuses
both). ``vus`` alone and ``iterations`` mean iteration-counted runs in k6, which surge does not
support yet; nor does it support k6's no-options default (1 VU, 1 iteration). Every other k6
option (``batch``, ``userAgent``, ``hosts``, ``tags``...) is reported as
"not supported yet" rather than silently ignored; anything else is an unknown option, with a
suggestion when one is close.

Scenario keys
-------------

====================  ============  ==============================  ==========================
key                   executor      type                            default
====================  ============  ==============================  ==========================
``executor``          all           ``"constant-vus"`` or           required
                                    ``"ramping-vus"``
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
====================  ============  ==============================  ==========================

As in k6, a ramping-vus scenario needs ``startVUs`` or some stage target above 0. Every VU
count is at most :data:`MAX_VUS` (a million), since a plan has one step per VU change. k6's other
executors (``per-vu-iterations``, ``shared-iterations``, ``constant-arrival-rate``,
``ramping-arrival-rate``, ``externally-controlled``) are reported as not supported yet.
Whether ``exec`` names a function that exists is the scenario loader's check, not this one.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from surge.common.durations import parse_duration
from surge.common.metrics import DEFAULT_TREND_STATS
from surge.common.schedule import Stage, Step, constant_vus_steps, max_vus, ramping_vus_steps


class Executor(Enum):
    RAMPING_VUS = "ramping-vus"
    CONSTANT_VUS = "constant-vus"


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
    # Excluded from the hash (a mapping is unhashable) but not from equality.
    env: Mapping[str, str] = field(default_factory=_empty, hash=False)
    tags: Mapping[str, str] = field(default_factory=_empty, hash=False)

    def steps(self) -> list[Step]:
        """The global plan, offsets relative to the scenario's own start (not ``startTime``)."""
        if self.executor is Executor.RAMPING_VUS:
            return ramping_vus_steps(self.start_vus, self.stages)
        return constant_vus_steps(self.vus, self.duration_s)

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
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    setup_timeout_s: float = 60.0  # k6's setupTimeout and teardownTimeout (exits 100 and 101)
    teardown_timeout_s: float = 60.0

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
_K6_OTHER_EXECUTORS = (
    "per-vu-iterations",
    "shared-iterations",
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "externally-controlled",
)
_COMMON_KEYS = ("executor", "exec", "startTime", "gracefulStop", "env", "tags")
_EXECUTOR_KEYS: dict[Executor, tuple[str, ...]] = {
    Executor.CONSTANT_VUS: ("vus", "duration"),
    Executor.RAMPING_VUS: ("startVUs", "stages", "gracefulRampDown"),
}
# Scenario keys of k6's other executors: named as such rather than as unknown.
_K6_OTHER_SCENARIO_KEYS = (
    "iterations", "maxDuration", "rate", "startRate", "timeUnit", "preAllocatedVUs", "maxVUs",
)  # fmt: skip
_STAGE_KEYS = ("duration", "target")

_SUPPORTED_TOP = (
    "scenarios", "thresholds", "summaryTrendStats", "vus", "duration", "stages", "setupTimeout", "teardownTimeout",
)
_K6_UNSUPPORTED_TOP: dict[str, str] = {
    "iterations": (
        "k6 would run a shared-iterations scenario; use {where}.duration, "
        "or {where}.scenarios with a constant-vus or ramping-vus executor"
    ),
    "executionSegment": "surge splits the load over its workers itself",
    "executionSegmentSequence": "surge splits the load over its workers itself",
    "vusMax": "it was removed from k6 too",
}
for _key in (
    "batch", "batchPerHost", "blacklistIPs", "blockHostnames", "cloud", "consoleOutput", "dns",
    "discardResponseBodies", "ext", "hosts", "httpDebug", "insecureSkipTLSVerify", "linger",
    "localIPs", "maxRedirects", "metricSamplesBufferSize", "minIterationDuration",
    "noConnectionReuse", "noCookiesReset", "noSetup", "noSummary", "noTeardown", "noThresholds",
    "noUsageReport", "noVUConnectionReuse", "paused", "rps", "summaryExport",
    "summaryTimeUnit", "systemTags", "tags", "throw", "tlsAuth",
    "tlsCipherSuites", "tlsVersion", "userAgent",
):  # fmt: skip
    _K6_UNSUPPORTED_TOP.setdefault(_key, "")

_SCENARIO_NAME_RE = re.compile(r"^[0-9A-Za-z_-]+$")
_TREND_STAT_RE = re.compile(r"^(?:avg|min|med|max|count|p\((\d+(?:\.\d+)?)\))$")
_NO_SCENARIOS = "no scenarios: set {where}.scenarios, or {where}.stages, or {where}.vus and {where}.duration"
_DURATION_EXAMPLE = "expected a duration string such as '30s' or '2m'"

# A plan has one step per VU started or stopped, so a typo like ``target: 10000000000`` would
# exhaust memory while planning; refuse it here, with the path, instead.
MAX_VUS = 1_000_000


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

    def whole(self, value: object, path: str, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected a whole number >= {minimum}, got {_show(value)}")
            return None
        if value < minimum:
            self.add(path, f"expected a whole number >= {minimum}, got {value}")
            return None
        if value > MAX_VUS:
            self.add(path, f"{value} VUs is more than surge plans for (at most {MAX_VUS} per scenario)")
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


def _check_stages(c: _Checker, value: object, path: str) -> tuple[Stage, ...] | None:
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
            target = c.whole(stage["target"], f"{where}.target", 0)
        else:
            c.add(f"{where}.target", "required; expected a whole number of VUs >= 0")
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

    # With an unusable executor, still check every key either executor knows.
    own = _EXECUTOR_KEYS[executor] if executor else tuple(k for ks in _EXECUTOR_KEYS.values() for k in ks)
    allowed = _COMMON_KEYS + own
    for key in (k for k in sc if k not in allowed):
        owner = next((e for e, ks in _EXECUTOR_KEYS.items() if key in ks), None)
        if owner is not None and executor is not None:
            c.add(
                _child(path, key),
                f"not a {executor.value} option (it belongs to {owner.value}); "
                f"a {executor.value} scenario takes {' and '.join(_EXECUTOR_KEYS[executor][:2])}",
            )
        elif key in _K6_OTHER_SCENARIO_KEYS:
            kind = executor.value if executor else "surge"
            c.add(_child(path, key), f"not a {kind} option; it belongs to k6 executors not supported yet by surge")
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

    if "vus" in own:
        if "vus" in sc:
            kw["vus"] = c.whole(sc["vus"], f"{path}.vus", 1)
        if "duration" in sc:
            kw["duration_s"] = c.duration(sc["duration"], f"{path}.duration", positive=True)
        elif executor is Executor.CONSTANT_VUS:
            c.add(f"{path}.duration", f"required for a constant-vus scenario; {_DURATION_EXAMPLE}")
    if "stages" in own:
        if "startVUs" in sc:
            kw["start_vus"] = c.whole(sc["startVUs"], f"{path}.startVUs", 0)
        if "gracefulRampDown" in sc:
            kw["graceful_ramp_down_s"] = c.duration(sc["gracefulRampDown"], f"{path}.gracefulRampDown")
        if "stages" in sc:
            kw["stages"] = _check_stages(c, sc["stages"], f"{path}.stages")
        elif executor is Executor.RAMPING_VUS:
            c.add(
                f"{path}.stages",
                'required for a ramping-vus scenario; expected a list of {"duration": ..., "target": ...}',
            )
        start_vus, stages = kw.get("start_vus", 1), kw.get("stages")
        if executor is Executor.RAMPING_VUS and start_vus is not None and stages:
            _check_some_vus(c, start_vus, stages, path)

    if executor is None or len(c.problems) > before:
        return None
    return ScenarioConfig(executor=executor, **kw)


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
    """k6's ``vus``/``duration``/``stages`` shortcuts as one scenario named ``default``."""
    before = len(c.problems)
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
    shortcuts = [k for k in ("vus", "duration", "stages") if k in opts]
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
    elif "iterations" not in opts:
        c.add(where, _NO_SCENARIOS.format(where=where))

    thresholds: Mapping[str, Any] = MappingProxyType({})
    if "thresholds" in opts:
        checked = c.mapping(opts["thresholds"], f"{where}.thresholds", "a dict of metric name to thresholds")
        thresholds = MappingProxyType(checked) if checked is not None else thresholds

    trend_stats: tuple[str, ...] | None = DEFAULT_TREND_STATS
    if "summaryTrendStats" in opts:
        trend_stats = _check_trend_stats(c, opts["summaryTrendStats"], f"{where}.summaryTrendStats")

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
            raw=MappingProxyType(dict(opts)),
            setup_timeout_s=timeouts["setupTimeout"] or 60.0,
            teardown_timeout_s=timeouts["teardownTimeout"] or 60.0,
        ),
        [],
    )

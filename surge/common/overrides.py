"""Command-line overrides of a scenario's ``options``, with k6's precedence (pure: no I/O).

k6 reads options from, lowest to highest: its defaults, a ``--config`` file, the script's
``options``, ``K6_*`` environment variables, and command-line flags. surge has the script and
the flags, so **a flag given on the command line wins over the script's option**. What a flag
replaces is k6's rule (``lib.Options.Apply`` and ``warnOnShortHandOverride`` in k6):

======================  =======================================================================
flag                    effect on the script's options
======================  =======================================================================
``--duration D``        replaces the script's whole *execution config*: ``duration``,
``--stage D:N``...      ``iterations``, ``stages`` and ``scenarios`` are all dropped, then the
                        flag's own key is set (k6 warns "cli level configuration overrode
                        scenarios configuration entirely"). ``--vus``, or else the script's
                        own top-level ``vus``, is kept: with ``--duration`` it is the VU count
                        (1 without one), with ``--stage`` the ramp's ``startVUs``.
``--vus N``             sets ``vus`` only. Beside the script's ``duration``/``stages`` shortcuts
                        it changes the VU count; beside the script's ``scenarios`` (with no
                        ``--duration``/``--stage``) k6 ignores it without a word, which k6
                        itself calls a bug (grafana/k6#5793): surge refuses it instead.
``--duration`` and      in the same tier k6 keeps both and then refuses them together; so does
``--stage``             surge (exit 104).
``--tag K=V``           k6's global ``tags``: every sample of the run carries them. They are
                        added to every scenario's ``tags``; a scenario's own tag of the same
                        name wins, as in k6 (scenario tags are applied over the run's).
``--no-thresholds``     drops ``thresholds``: nothing is parsed or checked, the run exits 0
                        whatever the script's thresholds would say (k6's meaning).
``--summary-trend-stats``  replaces ``summaryTrendStats`` (comma-separated, as in k6).
``--summary-time-unit``  replaces ``summaryTimeUnit`` (``s``, ``ms`` or ``us``, as in k6).
``--max-endpoints N``   replaces ``maxEndpoints`` (surge's: rows of the per-endpoint table).
======================  =======================================================================

``--iterations N`` belongs in the first row too: the script's execution config is dropped and
``iterations`` set, which makes k6's shared-iterations shortcut (``--vus`` VUs; with
``--duration``, that is its ``maxDuration``). With ``--stage`` it is refused, as in k6.

The flags' values are kept as the user typed them and checked only for their *shape* here (a
``--stage`` is ``DURATION:TARGET``, ``--vus`` a whole number, ``--tag`` ``KEY=VALUE``); what the
values mean is :func:`surge.common.options.parse_options`'s business, on the merged dict, so
that every problem, the script's and the flags', is listed at once. :func:`attribute` then
rewrites the problems about keys the command line set so that they say where they came from::

    options.stages[1].target (from --stage '1m:-5' on the command line): expected a whole number >= 0, got -5
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from surge.common.options import Options

# k6's execution config: a flag setting any of them replaces all of them from the script.
EXECUTION_KEYS = ("duration", "iterations", "stages", "scenarios")

_WHOLE_RE = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Overrides:
    """What the command line said, as typed. ``None`` or empty: the flag was not given."""

    vus: str | None = None
    duration: str | None = None
    iterations: str | None = None  # ``--iterations N``: k6's shared-iterations shortcut
    stages: tuple[str, ...] = ()  # each ``DURATION:TARGET``; one flag may hold several, comma-separated
    tags: tuple[str, ...] = ()  # each ``KEY=VALUE``
    no_thresholds: bool = False
    summary_trend_stats: str | None = None  # comma-separated, e.g. ``avg,p(95),p(99.9)``
    summary_time_unit: str | None = None  # ``s``, ``ms`` or ``us``
    max_endpoints: str | None = None  # ``--max-endpoints N``: surge's maxEndpoints


@dataclass(frozen=True)
class Applied:
    """The merged options, the flags' own problems, and which key paths each flag set."""

    raw: object
    problems: list[str]
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    origins: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _flag_problem(flag: str, value: str, message: str) -> str:
    return f"{flag} {value!r} (command line): {message}"


def _parse_stages(
    values: tuple[str, ...], problems: list[str]
) -> tuple[list[dict[str, Any]] | None, dict[str, str]]:
    """The stages as options dicts, or ``None`` when one is malformed (reported)."""
    before = len(problems)
    stages: list[dict[str, Any]] = []
    origins: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            text = part.strip()
            duration, sep, target = text.rpartition(":")
            if not sep or not duration.strip() or not target.strip():
                problems.append(_flag_problem("--stage", text, "expected DURATION:TARGET, such as 30s:100"))
                continue
            target = target.strip()
            if not re.fullmatch(r"-?\d+", target):
                problems.append(_flag_problem("--stage", text, f"the target must be a whole number of VUs, got {target!r}"))
                continue
            origins[f"stages[{len(stages)}]"] = f"--stage {text!r}"
            stages.append({"duration": duration.strip(), "target": int(target)})
    return (stages if len(problems) == before else None), origins


def _parse_tags(values: tuple[str, ...], problems: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, tag_value = value.partition("=")
        if not sep or not key:
            problems.append(_flag_problem("--tag", value, "expected KEY=VALUE, such as env=staging"))
        else:
            tags[key] = tag_value
    return tags


def apply_overrides(raw: object, cli: Overrides) -> Applied:
    """``raw`` (the script's ``options``, not modified) with the command line's flags applied.

    A script ``options`` that is not a dict is returned as is, for the options check to
    report; the flags are still checked.
    """
    problems: list[str] = []
    origins: dict[str, str] = {}
    tags = _parse_tags(cli.tags, problems)
    merged: dict[Any, Any] = dict(raw) if isinstance(raw, Mapping) else {}

    vus: int | None = None
    if cli.vus is not None:
        if _WHOLE_RE.match(cli.vus.strip()):
            vus = int(cli.vus)
        else:
            problems.append(_flag_problem("--vus", cli.vus, "expected a whole number of VUs"))
    stages, stage_origins = _parse_stages(cli.stages, problems)
    execution: dict[str, Any] = {}
    if cli.duration is not None and cli.stages:
        problems.append(
            "--duration and --stage (command line): cannot be used together (k6 refuses that too); "
            "the stages set the length"
        )
    elif cli.duration is not None:
        execution = {"duration": cli.duration}
        origins["duration"] = "--duration"
    elif stages:
        execution = {"stages": stages}
        origins.update(stage_origins)
    if cli.iterations is not None:
        if not _WHOLE_RE.match(cli.iterations.strip()):
            problems.append(_flag_problem("--iterations", cli.iterations, "expected a whole number of iterations"))
        elif cli.stages:
            problems.append("--iterations and --stage (command line): cannot be used together (k6 refuses that too)")
        else:
            execution["iterations"] = int(cli.iterations)
            origins["iterations"] = "--iterations"
    if execution:
        for key in EXECUTION_KEYS:
            merged.pop(key, None)
        merged.update(execution)
    if vus is not None and (execution or (cli.duration is None and not cli.stages)):
        # (With --duration or --stage refused above, --vus goes unapplied with them.)
        if "scenarios" in merged and not execution:
            problems.append(_flag_problem(
                "--vus", cli.vus or "",
                "the scenario file sets options.scenarios, which --vus alone does not change (k6 ignores it "
                "there without a word); give --duration or --stage too, to replace the scenarios",
            ))
        else:
            merged["vus"] = vus
            origins["vus"] = "--vus"

    if cli.no_thresholds:
        merged.pop("thresholds", None)
    if cli.summary_trend_stats is not None:
        stats = [s.strip() for s in cli.summary_trend_stats.split(",")]
        if not any(stats):
            problems.append(_flag_problem("--summary-trend-stats", cli.summary_trend_stats,
                                          "expected a comma-separated list such as avg,p(95),p(99)"))
        else:
            merged["summaryTrendStats"] = stats
            origins["summaryTrendStats"] = "--summary-trend-stats"
    if cli.summary_time_unit is not None:
        # checked with the script's options (surge.common.options), so a bad one is listed with the rest
        merged["summaryTimeUnit"] = cli.summary_time_unit
        origins["summaryTimeUnit"] = "--summary-time-unit"

    if cli.max_endpoints is not None:
        if not re.fullmatch(r"\s*\d+\s*", cli.max_endpoints):
            problems.append(_flag_problem("--max-endpoints", cli.max_endpoints, "expected a whole number of rows, such as 200"))
        else:
            # the range is checked with the script's options, so a bad one is listed with the rest
            merged["maxEndpoints"] = int(cli.max_endpoints)
            origins["maxEndpoints"] = "--max-endpoints"

    changed = bool(origins) or cli.no_thresholds
    result = merged if isinstance(raw, Mapping) and changed else raw
    return Applied(result, problems, MappingProxyType(tags), MappingProxyType(origins))


def attribute(problems: list[str], origins: Mapping[str, str], *, where: str = "options") -> list[str]:
    """Problems about a key the command line set, marked as such (others unchanged)."""
    out = []
    for problem in problems:
        path, sep, message = problem.partition(": ")
        flag = None
        for key in sorted(origins, key=len, reverse=True):
            prefix = f"{where}.{key}"
            if path == prefix or path.startswith((prefix + ".", prefix + "[")):
                flag = origins[key]
                break
        out.append(f"{path} (from {flag} on the command line){sep}{message}" if flag and sep else problem)
    return out


def with_tags(options: Options, tags: Mapping[str, str]) -> Options:
    """Every scenario tagged with ``tags`` (k6's global tags); a scenario's own tag wins."""
    if not tags:
        return options
    scenarios = tuple(
        dataclasses.replace(sc, tags=MappingProxyType({**tags, **sc.tags})) for sc in options.scenarios
    )
    return dataclasses.replace(options, scenarios=scenarios)

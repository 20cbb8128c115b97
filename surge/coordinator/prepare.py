"""Everything that must hold before a single request is sent.

:func:`prepare` loads the scenario (a script error ends here with exit 107), validates its
options and its thresholds together, so that *every* problem is listed at once (exit 104),
checks that each scenario's ``exec`` function exists and is ``async``, and builds the bundle
the workers will import. Command-line overrides (:mod:`surge.common.overrides`) are applied to
the raw options first, so that their problems are listed with the script's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from surge.common import api
from surge.common.errors import ConfigError, ScriptError
from surge.common.metrics import BUILTIN_METRICS, MetricDef
from surge.common.options import Options, parse_options
from surge.common.overrides import Overrides, apply_overrides, attribute, with_tags
from surge.common.scenario import exec_function, load_module, make_bundle, scenario_root
from surge.results.thresholds import MetricThresholds, parse_thresholds


@dataclass(frozen=True)
class Prepared:
    source: str  # the path as the user gave it, for messages
    module: ModuleType
    entry: str
    options: Options
    thresholds: list[MetricThresholds]
    metric_defs: dict[str, MetricDef]
    bundle: dict[str, bytes]
    handle_summary: Callable[[dict[str, Any]], Any] | None

    @property
    def has_setup(self) -> bool:
        return callable(getattr(self.module, "setup", None))

    @property
    def has_teardown(self) -> bool:
        return callable(getattr(self.module, "teardown", None))

    @property
    def submetrics(self) -> list[str]:
        """Series keys with tag filters that workers must track (from the thresholds)."""
        return [mt.key for mt in self.thresholds if mt.series.tags]


def prepare(path: Path, env_overrides: Mapping[str, str], overrides: Overrides | None = None) -> Prepared:
    source = str(path)
    api.env.set_overrides(env_overrides)
    if not path.is_file():
        raise ScriptError(f"{source}: no such scenario file", hint="give the path of a .py scenario file")
    root, entry = scenario_root(path)
    module = load_module(path, root=root, module_name=entry)

    raw = getattr(module, "options", None)
    if raw is None:
        raw = {}
    applied = apply_overrides(raw, overrides or Overrides())
    raw = applied.raw
    problems = list(applied.problems)
    options, option_problems = parse_options(raw, where="options")
    problems += attribute(option_problems, applied.origins)
    metric_defs = {**BUILTIN_METRICS, **api.declared_metrics()}
    thresholds: list[MetricThresholds] = []
    if isinstance(raw, dict) and isinstance(raw.get("thresholds", {}), dict):
        thresholds, threshold_problems = parse_thresholds(raw.get("thresholds", {}), metric_defs)
        problems += threshold_problems
    if options is not None:
        for sc in options.scenarios:
            if sc.exec_name != "default" and not callable(getattr(module, sc.exec_name, None)):
                problems.append(
                    f"options.scenarios.{sc.name}.exec: {source} defines no function {sc.exec_name!r}"
                )
    if problems:
        raise ConfigError(problems, source=source, hint="nothing was sent; fix these and run again")
    assert options is not None
    options = with_tags(options, applied.tags)
    for name in sorted({sc.exec_name for sc in options.scenarios}):
        exec_function(module, name, source)

    for name in ("setup", "teardown"):  # k6's lifecycle functions, both optional
        if getattr(module, name, None) is not None:
            exec_function(module, name, source)  # must be `async def`: it gets a VU with vu.http

    handle_summary = getattr(module, "handle_summary", None)
    if handle_summary is not None and not callable(handle_summary):
        raise ScriptError(f"{source}: handle_summary must be a function taking the summary data")
    return Prepared(
        source=source,
        module=module,
        entry=entry,
        options=options,
        thresholds=thresholds,
        metric_defs=metric_defs,
        bundle=make_bundle(module, root),
        handle_summary=handle_summary,
    )

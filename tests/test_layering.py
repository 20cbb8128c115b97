"""The package's one-way imports and its I/O edges, checked on the source (AST), not by importing.

* ``surge.common`` imports nothing of surge but itself (so nothing of ``worker``,
  ``coordinator``, ``results``, ``target`` or ``cli``);
* ``surge.worker`` and ``surge.coordinator`` never import each other;
* ``surge.results`` imports only ``surge.common`` and itself from surge;
* only the ZeroMQ edge (``surge/common/wire.py``, ``surge/common/router.py``, ``surge/common/dealer.py``,
  ``surge/common/curve.py``) imports ``zmq``;
* only the aiohttp transport (``surge/worker/transport_aiohttp.py``), ``surge/target/`` and the
  live dashboard's server (``surge/results/dashboard.py``) import ``aiohttp``, and only the fast
  transport imports ``httptools``;
* only ``surge/cli.py`` ends the process (``sys.exit``, ``exit()``, ``quit()``, ``os._exit``,
  ``raise SystemExit``).

Imports inside functions and under ``TYPE_CHECKING`` count too: a lazy import is still an
arrow. Each test lists every violation as ``path:line: what``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Source:
    path: str  # relative to the repository, e.g. "surge/common/wire.py"
    module: str  # e.g. "surge.common.wire"; a package's __init__ is the package
    tree: ast.Module

    @property
    def package(self) -> str:
        """What a relative import is relative to."""
        return self.module if self.path.endswith("__init__.py") else self.module.rpartition(".")[0]

    @property
    def layer(self) -> str:
        """``common``, ``worker``, ``coordinator``, ``results``, ``target``, ``cli``... ('' for the root)."""
        parts = self.module.split(".")
        return parts[1] if len(parts) > 1 else ""


def _source(path: str, text: str) -> Source:
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return Source(path, ".".join(parts), ast.parse(text, filename=path))


def _sources() -> list[Source]:
    files = sorted((REPO / "surge").rglob("*.py"))
    return [_source(f.relative_to(REPO).as_posix(), f.read_text(encoding="utf-8")) for f in files]


SOURCES = _sources()


@dataclass(frozen=True)
class Imported:
    statement: str  # with relative imports made absolute, e.g. "from surge.common import api"
    targets: tuple[str, ...]  # what it imports: the module and, for ``from m import n``, ``m.n`` too
    line: int


def _imports(src: Source) -> Iterator[Imported]:
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Imported(f"import {alias.name}", (alias.name,), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = src.package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [a.name for a in node.names]
            # ``from surge import worker`` imports surge.worker, not only surge
            targets = (base, *(f"{base}.{n}" for n in names if n != "*"))
            yield Imported(f"from {base} import {', '.join(names)}", targets, node.lineno)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# --------------------------------------------------------------------------- import rules

ImportRule = Callable[[Source, str], bool]  # (importer, imported name) -> is it a violation?


def _common_imports_only_common(src: Source, target: str) -> bool:
    return src.layer == "common" and _within(target, "surge") and not _within(target, "surge.common")


def _worker_and_coordinator_are_apart(src: Source, target: str) -> bool:
    return (src.layer == "worker" and _within(target, "surge.coordinator")) or (
        src.layer == "coordinator" and _within(target, "surge.worker")
    )


def _results_imports_only_common(src: Source, target: str) -> bool:
    return (
        src.layer == "results"
        and _within(target, "surge")
        and not (_within(target, "surge.common") or _within(target, "surge.results"))
    )


ZMQ_EDGE = {"surge/common/wire.py", "surge/common/router.py", "surge/common/dealer.py", "surge/common/curve.py"}


def _only_the_zmq_edge_imports_zmq(src: Source, target: str) -> bool:
    return _within(target, "zmq") and src.path not in ZMQ_EDGE


def _only_http_and_target_import_aiohttp(src: Source, target: str) -> bool:
    return _within(target, "aiohttp") and not (
        src.path in ("surge/worker/transport_aiohttp.py", "surge/results/dashboard.py") or src.layer == "target"
    )


def _only_the_fast_transport_imports_httptools(src: Source, target: str) -> bool:
    return _within(target, "httptools") and src.path != "surge/worker/transport_fast.py"


IMPORT_RULES: dict[str, ImportRule] = {
    "surge.common imports nothing of surge but itself": _common_imports_only_common,
    "surge.worker and surge.coordinator never import each other": _worker_and_coordinator_are_apart,
    "surge.results imports only surge.common and itself": _results_imports_only_common,
    "only the ZeroMQ edge (wire.py, dealer.py, curve.py) imports zmq": _only_the_zmq_edge_imports_zmq,
    "only surge/worker/transport_aiohttp.py, surge/target/ and surge/results/dashboard.py import aiohttp":
        _only_http_and_target_import_aiohttp,
    "only surge/worker/transport_fast.py imports httptools": _only_the_fast_transport_imports_httptools,
}


def _import_violations(rule: ImportRule, sources: list[Source]) -> list[str]:
    return [
        f"{src.path}:{imp.line}: {imp.statement}"
        for src in sources
        for imp in sorted(_imports(src), key=lambda i: i.line)
        if any(rule(src, target) for target in imp.targets)
    ]


@pytest.mark.parametrize("rule", list(IMPORT_RULES), ids=list(IMPORT_RULES))
def test_import_rule(rule: str) -> None:
    violations = _import_violations(IMPORT_RULES[rule], SOURCES)

    assert not violations, f"{rule}; {len(violations)} violation(s):\n" + "\n".join(violations)


# --------------------------------------------------------------------------- exits

EXIT_ALLOWED = {"surge/cli.py"}


def _exit_calls(src: Source) -> Iterator[tuple[int, str]]:
    sys_names, os_names, exit_names = {"sys"}, {"os"}, {"exit", "quit"}
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sys":
                    sys_names.add(alias.asname or "sys")
                elif alias.name == "os":
                    os_names.add(alias.asname or "os")
        elif isinstance(node, ast.ImportFrom) and node.module in ("sys", "os") and not node.level:
            for alias in node.names:
                if (node.module, alias.name) in (("sys", "exit"), ("os", "_exit")):
                    exit_names.add(alias.asname or alias.name)
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if (func.value.id in sys_names and func.attr == "exit") or (
                    func.value.id in os_names and func.attr == "_exit"
                ):
                    yield node.lineno, f"{func.value.id}.{func.attr}()"
            elif isinstance(func, ast.Name) and func.id in exit_names:
                yield node.lineno, f"{func.id}()"
        elif isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "SystemExit":
                yield node.lineno, "raise SystemExit"


def _exit_violations(sources: list[Source]) -> list[str]:
    return [
        f"{src.path}:{line}: {what}"
        for src in sources
        if src.path not in EXIT_ALLOWED
        for line, what in sorted(_exit_calls(src))
    ]


def test_only_the_cli_ends_the_process() -> None:
    violations = _exit_violations(SOURCES)

    assert not violations, f"{len(violations)} exit(s) outside surge/cli.py:\n" + "\n".join(violations)


# --------------------------------------------------------------------------- the checker itself


def test_the_checker_sees_the_whole_package() -> None:
    paths = {src.path for src in SOURCES}

    assert {"surge/cli.py", "surge/common/wire.py", "surge/common/protocol.py", "surge/worker/http.py"} <= paths
    assert {src.layer for src in SOURCES} >= {"common", "worker", "coordinator", "results", "target", "cli"}
    wire = next(src for src in SOURCES if src.path == "surge/common/wire.py")
    assert any(imp.targets == ("zmq",) for imp in _imports(wire))
    cli = next(src for src in SOURCES if src.path == "surge/cli.py")
    assert any(what == "sys.exit()" for _, what in _exit_calls(cli))  # the one allowed place does exit


BAD = '''\
import zmq
from aiohttp import web
from surge.worker.vu import VU
from ..coordinator import plan
from .. import results
from surge import cli
import sys as system
from os import _exit as hard_exit
from surge.common.metrics import Sink


def later():
    from surge.results.summary import text_summary
    system.exit(1)
    hard_exit(2)
    exit(3)
    raise SystemExit(4)
'''


def test_the_checker_reports_every_violation_with_its_line() -> None:
    bad = _source("surge/common/bad.py", BAD)

    assert _import_violations(_common_imports_only_common, [bad]) == [
        "surge/common/bad.py:3: from surge.worker.vu import VU",
        "surge/common/bad.py:4: from surge.coordinator import plan",
        "surge/common/bad.py:5: from surge import results",
        "surge/common/bad.py:6: from surge import cli",
        "surge/common/bad.py:13: from surge.results.summary import text_summary",
    ]
    assert _import_violations(_only_the_zmq_edge_imports_zmq, [bad]) == ["surge/common/bad.py:1: import zmq"]
    edge = [_source(path, "import zmq\nfrom zmq.auth.thread import ThreadAuthenticator\n") for path in sorted(ZMQ_EDGE)]
    assert _import_violations(_only_the_zmq_edge_imports_zmq, edge) == []
    assert _import_violations(_only_http_and_target_import_aiohttp, [bad]) == [
        "surge/common/bad.py:2: from aiohttp import web"
    ]
    assert _exit_violations([bad]) == [
        "surge/common/bad.py:14: system.exit()",
        "surge/common/bad.py:15: hard_exit()",
        "surge/common/bad.py:16: exit()",
        "surge/common/bad.py:17: raise SystemExit",
    ]

    worker = _source("surge/worker/bad.py", "from surge.coordinator.aggregate import Aggregate\n")
    coordinator = _source("surge/coordinator/bad.py", "from ..worker import runner\n")
    assert _import_violations(_worker_and_coordinator_are_apart, [worker, coordinator]) == [
        "surge/worker/bad.py:1: from surge.coordinator.aggregate import Aggregate",
        "surge/coordinator/bad.py:1: from surge.worker import runner",
    ]
    results = _source("surge/results/bad.py", "from surge import __version__\nfrom surge.common import api\n")
    assert _import_violations(_results_imports_only_common, [results]) == [
        "surge/results/bad.py:1: from surge import __version__"
    ]
    target = _source("surge/target/app.py", "import aiohttp.web\n")
    assert _import_violations(_only_http_and_target_import_aiohttp, [target]) == []

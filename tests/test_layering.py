"""The package's one-way imports and its I/O edges, checked on the source (AST), not by importing.

* ``surge.common`` imports nothing of surge but itself (so nothing of ``worker``,
  ``coordinator``, ``results``, ``target`` or ``cli``);
* ``surge.worker`` and ``surge.coordinator`` never import each other;
* ``surge.results`` imports only ``surge.common`` and itself from surge;
* only the ZeroMQ edge (``surge/common/wire.py``, ``surge/common/router.py``, ``surge/common/dealer.py``,
  ``surge/common/curve.py``) imports ``zmq``;
* only the aiohttp transport (``surge/worker/http/transports/aiohttp/``), ``surge/target/`` and
  the live dashboard's server (``surge/results/dashboard.py``) import ``aiohttp``, and only the
  fast transport (``surge/worker/http/transports/fast/``) imports ``httptools``, and only its
  HTTP/2 connection (``h2conn.py`` there) and its errors (``h2errors.py``) import ``h2`` and
  ``hyperframe``;
* the HTTP layer's core (``surge.worker.http`` outside ``transports``) never imports a
  transport: the transports import the core, one way;
* no module of the HTTP layer (``surge.worker.http``) imports a module that imports it, however
  far round (a cycle detector over the import graph), and none is over 500 lines;
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


HTTP = "surge.worker.http"
TRANSPORTS = "surge.worker.http.transports"
FAST = "surge.worker.http.transports.fast"
AIOHTTP = "surge.worker.http.transports.aiohttp"


def _only_http_and_target_import_aiohttp(src: Source, target: str) -> bool:
    return _within(target, "aiohttp") and not (
        _within(src.module, AIOHTTP) or src.path == "surge/results/dashboard.py" or src.layer == "target"
    )


def _only_the_fast_transport_imports_httptools(src: Source, target: str) -> bool:
    return _within(target, "httptools") and not _within(src.module, FAST)


H2_EDGE = {f"surge/worker/http/transports/fast/{name}.py" for name in ("h2conn", "h2errors")}


def _only_the_h2_modules_import_h2(src: Source, target: str) -> bool:
    return (_within(target, "h2") or _within(target, "hyperframe")) and src.path not in H2_EDGE


def _the_http_core_imports_no_transport(src: Source, target: str) -> bool:
    return _within(src.module, HTTP) and not _within(src.module, TRANSPORTS) and _within(target, TRANSPORTS)


IMPORT_RULES: dict[str, ImportRule] = {
    "surge.common imports nothing of surge but itself": _common_imports_only_common,
    "surge.worker and surge.coordinator never import each other": _worker_and_coordinator_are_apart,
    "surge.results imports only surge.common and itself": _results_imports_only_common,
    "only the ZeroMQ edge (wire.py, dealer.py, curve.py) imports zmq": _only_the_zmq_edge_imports_zmq,
    "only surge/worker/http/transports/aiohttp/, surge/target/ and surge/results/dashboard.py import aiohttp":
        _only_http_and_target_import_aiohttp,
    "only surge/worker/http/transports/fast/ imports httptools": _only_the_fast_transport_imports_httptools,
    "the HTTP core (surge.worker.http outside transports/) imports no transport": _the_http_core_imports_no_transport,
    "only the fast transport's h2conn.py and h2errors.py import h2 and hyperframe":
        _only_the_h2_modules_import_h2,
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


# --------------------------------------------------------------------------- cycles and sizes

Edges = dict[str, dict[str, int]]  # importer -> {imported module: line of the first such import}


def _import_graph(sources: list[Source]) -> Edges:
    """Which module of ``sources`` imports which other, lazy imports included.

    ``from p import m`` is an arrow to the module ``p.m`` when there is one, else to ``p``
    (a name defined in ``p``'s ``__init__``). The implicit import of a parent package
    (importing ``p.m`` runs ``p/__init__.py`` first) is not an arrow: a package that
    re-exports its modules would otherwise be in a cycle with each of them.
    """
    modules = {src.module for src in sources}
    graph: Edges = {src.module: {} for src in sources}
    for src in sources:
        for imp in sorted(_imports(src), key=lambda i: i.line):
            base, names = imp.targets[0], imp.targets[1:]
            hits = {n for n in names if n in modules}
            if base in modules and (imp.statement.startswith("import ") or len(hits) < len(names)):
                hits.add(base)
            for hit in hits - {src.module}:
                graph[src.module].setdefault(hit, imp.line)
    return graph


def _cycles(graph: Edges) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) for each strongly connected part of ``graph`` with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                parts.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_one_cycle(graph, set(part), part[0]) for part in sorted(parts)]


def _one_cycle(graph: Edges, part: set[str], start: str) -> list[str]:
    """A shortest way from ``start`` back to itself inside ``part`` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w in part and w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in no cycle")  # only called on a strongly connected part


def _cycle_violations(sources: list[Source], package: str) -> list[str]:
    path_of = {src.module: src.path for src in sources}
    graph = _import_graph([src for src in sources if _within(src.module, package)])
    return [
        " -> ".join(f"{path_of[a]}:{graph[a][b]}" for a, b in zip(cycle, cycle[1:])) + f" -> {path_of[cycle[0]]}"
        for cycle in _cycles(graph)
    ]


def test_no_module_of_the_http_layer_imports_one_that_imports_it() -> None:
    violations = _cycle_violations(SOURCES, HTTP)

    assert not violations, f"{len(violations)} import cycle(s) in {HTTP}:\n" + "\n".join(violations)


HTTP_MAX_LINES = 500


def _long_modules(root: Path, max_lines: int) -> list[str]:
    return [
        f"{f.relative_to(REPO).as_posix()}: {n} lines"
        for f in sorted(root.rglob("*.py"))
        if (n := len(f.read_text(encoding="utf-8").splitlines())) > max_lines
    ]


def test_no_module_of_the_http_layer_is_over_500_lines() -> None:
    long = _long_modules(REPO / "surge" / "worker" / "http", HTTP_MAX_LINES)

    assert not long, f"one concept per module, at most {HTTP_MAX_LINES} lines:\n" + "\n".join(long)


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

    assert {"surge/cli.py", "surge/common/wire.py", "surge/common/protocol.py", "surge/worker/http/client.py"} <= paths
    assert {"surge/worker/http/transports/aiohttp/session.py", "surge/worker/http/transports/fast/connection.py"} <= paths
    assert len([src for src in SOURCES if _within(src.module, HTTP)]) >= 10  # the whole HTTP layer is seen
    assert _long_modules(REPO / "surge" / "worker" / "http", 10)  # the size check does read the files
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


def test_the_cycle_detector_finds_a_cycle_however_far_round_and_lazy() -> None:
    core = [
        _source("surge/worker/http/__init__.py", "from surge.worker.http.client import HttpClient\n"),
        _source("surge/worker/http/client.py", "from surge.worker.http import errors\n"),
        _source("surge/worker/http/errors.py", "import os\n\n\ndef later():\n    from surge.worker.http.client import x\n"),
        _source("surge/worker/http/response.py", "from surge.worker.http.errors import ErrorCode\n"),
    ]
    # errors lazily imports client, which imports errors: a cycle; __init__ and response only lead into it
    assert _cycle_violations(core, HTTP) == [
        "surge/worker/http/client.py:1 -> surge/worker/http/errors.py:5 -> surge/worker/http/client.py"
    ]
    ring = [
        _source("surge/worker/http/a.py", "from . import b\n"),
        _source("surge/worker/http/b.py", "from .c import Thing\n"),
        _source("surge/worker/http/c.py", "\nimport surge.worker.http.a\n"),
    ]
    assert _cycle_violations(ring, HTTP) == [
        "surge/worker/http/a.py:1 -> surge/worker/http/b.py:1 -> surge/worker/http/c.py:2 -> surge/worker/http/a.py"
    ]
    # a package that re-exports its modules, which import each other one way, is no cycle
    tree = [
        _source("surge/worker/http/__init__.py", "from .client import HttpClient\nfrom .errors import ErrorCode\n"),
        _source("surge/worker/http/client.py", "from surge.worker.http.errors import ErrorCode\n"),
        _source("surge/worker/http/errors.py", "import os\n"),
        _source("surge/worker/http/transports/fast/pool.py", "from surge.worker.http import Response\n"),
    ]
    assert _cycle_violations(tree, HTTP) == []


def test_the_http_core_may_not_import_a_transport_even_lazily() -> None:
    client = _source(
        "surge/worker/http/client.py", "def make():\n    from surge.worker.http.transports.fast import FastTransport\n"
    )
    fast = _source("surge/worker/http/transports/fast/pool.py", "from surge.worker.http.errors import Rule\nimport httptools\n")
    elsewhere = _source("surge/worker/runner.py", "import httptools\nfrom surge.worker.http.transports import make_transport\n")

    assert _import_violations(_the_http_core_imports_no_transport, [client, fast, elsewhere]) == [
        "surge/worker/http/client.py:2: from surge.worker.http.transports.fast import FastTransport"
    ]
    assert _import_violations(_only_the_fast_transport_imports_httptools, [client, fast, elsewhere]) == [
        "surge/worker/runner.py:1: import httptools"
    ]

"""Loading a scenario file, and the bundle that carries it to workers.

A scenario is a Python module. Its *root* is the directory that must be on ``sys.path`` for
its imports to resolve: the parent of the outermost package that contains the file
(``scenarios/ticket_purchase.py`` inside package ``scenarios`` has the repository as root and
is imported as ``scenarios.ticket_purchase``, so ``from scenarios.helpers.auth import ...``
works), or the file's own directory when it is not in a package.

The coordinator loads the scenario first (to validate options before any load), then ships a
*bundle* to every worker: the source of every module under the root that the import actually
pulled in, and every file the scenario read with ``surge.open`` at init. Workers write the
bundle to a temporary directory and import it from there, so a worker on another machine needs
no copy of the scenario and no shared file system, and local workers take the very same path
as remote ones.

What is the scenario's
    A file is the scenario's when it is under the root and not in an *installed location*:
    no directory between the root and the file is called ``site-packages`` or
    ``dist-packages`` or holds a ``pyvenv.cfg`` (a virtualenv: CI's ``python3 -m venv .venv``
    in the repository, which is also the root of ``scenarios/ticket_purchase.py``), and the
    file is not under the interpreter's prefixes or site directories (``sys.prefix``,
    ``sys.base_prefix``, ``sys.exec_prefix``, ``site.getsitepackages()``, the user site).
    Installed locations count only *below* the root: above it they say where the user chose to
    keep the scenario (a Docker image's ``WORKDIR /usr/src/app`` lies under ``sys.prefix`` =
    ``/usr``). Installed packages are never bundled and never evicted from ``sys.modules``:
    each worker machine has its own, and a second copy of ``click`` in one process is a bug.

What travels
    Only what the import pulled in while :func:`load_module` ran. A module that ``default``
    imports lazily (inside the function) is not in the bundle: a worker on another machine
    lacks it, unless it is installed there.

Init, and ``surge.open``
    *Init* is the import of the scenario, i.e. while :func:`load_module` runs: a module-level
    flag (``_init``) is set for exactly that time, in the one thread that imports.
    ``surge.open(path)`` (k6's ``open()``) works only then; it reads ``path`` relative to the
    file of the module that calls it, refuses a file outside the root, and records the bytes
    it read. :func:`make_bundle` ships those bytes under their path relative to the root, so on
    a worker the same call, relative to the same module inside the bundle directory, reads the
    coordinator's copy. Called later (from ``default``, ``handle_summary``), it raises, as in
    k6: a per-iteration file read would make every VU hit the disk, and the worker has only
    what the coordinator shipped.

Errors
    Any exception at import becomes a :class:`ScriptError` (exit 107) showing the scenario's own
    frames only (file, line and source line; never importlib's), with paths relative to the
    bundle when the root is a bundle this process wrote, so a worker's error names
    ``scenarios/helpers/auth.py``, not ``/tmp/surge-bundle-xyz/scenarios/helpers/auth.py``.
"""

from __future__ import annotations

import importlib
import inspect
import linecache
import os
import site
import sys
import traceback
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from surge.common import api
from surge.common.errors import ScriptError

MAX_BUNDLE_BYTES = 16 * 1024 * 1024
"""The most a bundle (modules and opened files together) may weigh: it travels in one message,
and the wire layer sizes its frame limit from this."""


def scenario_root(path: Path) -> tuple[Path, str]:
    """The import root of a scenario file and its dotted module name."""
    path = path.resolve()
    parts = [path.stem]
    d = path.parent
    while (d / "__init__.py").exists() and d.parent != d:
        parts.insert(0, d.name)
        d = d.parent
    return d, ".".join(parts)


# surge's own package may sit under a scenario's root (a checkout of surge with its
# scenarios/ beside it): it is never part of a scenario, never reloaded, never bundled.
_SURGE_DIR = Path(__file__).resolve().parent.parent

_INSTALLED_DIR_NAMES = frozenset({"site-packages", "dist-packages"})


def _installed_locations() -> list[Path]:
    """The interpreter's prefixes and site directories, read now (tests and venvs change them)."""
    places = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    try:
        places += site.getsitepackages()
        places.append(site.getusersitepackages())
    except AttributeError:  # an embedded or virtualenv-patched site module may lack these
        pass
    return [Path(p).resolve() for p in places if p]


class _Scope:
    """Which files are the scenario's (see the module docstring): one root, checked many times."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._installed = [p for p in _installed_locations() if p != self.root and p.is_relative_to(self.root)]
        self._venv: dict[Path, bool] = {}

    def owns(self, f: str | None) -> bool:
        # "<frozen importlib._bootstrap>", "<string>": not files, though Path() would resolve
        # them against the cwd, which is often the root
        if not f or f.startswith("<"):
            return False
        p = Path(f).resolve()
        if not p.is_relative_to(self.root) or p.is_relative_to(_SURGE_DIR):
            return False
        if _INSTALLED_DIR_NAMES.intersection(p.relative_to(self.root).parts[:-1]):
            return False
        if any(p.is_relative_to(place) for place in self._installed):
            return False
        d = p.parent
        while d != self.root:
            if self._is_venv(d):
                return False
            d = d.parent
        return True

    def _is_venv(self, d: Path) -> bool:
        known = self._venv.get(d)
        if known is None:
            known = self._venv[d] = (d / "pyvenv.cfg").is_file()
        return known


def _user_file(f: str | None, root: Path) -> bool:
    """Whether ``f`` is one of the scenario's files (one-off; :class:`_Scope` for many)."""
    return _Scope(root).owns(f)


def _forget_modules_under(*roots: Path) -> None:
    scopes = [_Scope(r) for r in roots]
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if any(s.owns(f) for s in scopes):
            del sys.modules[name]


# Directories this process wrote a bundle into (a worker's temporary directories): paths under
# them are shown relative to them, as the scenario's own relative paths.
_BUNDLE_DIRS: set[Path] = set()


def _shown(f: str) -> str:
    """A file name as the user should read it: relative inside a bundle, else as it is."""
    if f.startswith("<"):
        return f
    p = Path(f).resolve()
    for d in _BUNDLE_DIRS:
        if p.is_relative_to(d):
            return p.relative_to(d).as_posix()
    return f


def _script_error_from(exc: BaseException, path: Path, root: Path) -> ScriptError:
    if isinstance(exc, SyntaxError):
        where = f"{_shown(exc.filename or str(path))}:{exc.lineno}"
        detail = f"\n    {exc.text.rstrip()}" if exc.text else ""
        return ScriptError(f"{where}: syntax error: {exc.msg}{detail}", hint="fix the syntax and run again")
    scope = _Scope(root)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if scope.owns(f.filename)]
    for f in frames:
        _ = f.line  # read the source line from the real file before renaming it for display
        f.filename = _shown(f.filename)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else _shown(str(path))
    tb = "".join(traceback.format_list(frames)).rstrip()
    hint = ""
    if isinstance(exc, ModuleNotFoundError):
        hint = (
            "only the scenario's own modules (under its root) travel to workers; "
            "install third-party packages on every machine that runs surge"
        )
    return ScriptError(f"{where}: {type(exc).__name__} while loading the scenario: {exc}\n{tb}", hint=hint)


@dataclass
class _Init:
    """What one load is doing: the root ``surge.open`` must stay in, and the files it read."""

    root: Path
    opened: dict[str, bytes] = field(default_factory=dict)


_init: _Init | None = None
_opened: weakref.WeakKeyDictionary[ModuleType, dict[str, bytes]] = weakref.WeakKeyDictionary()
# The root of the previous load: a long-lived worker loads each run's bundle from a new
# directory, and the last run's modules must not answer the next run's imports.
_last_root: Path | None = None


def load_module(path: Path, *, root: Path | None = None, module_name: str | None = None) -> ModuleType:
    """Import a scenario file afresh; any failure becomes a :class:`ScriptError` naming file and line.

    "Afresh": the modules of the previous load and any module of the scenario's (see the
    module docstring) are dropped from ``sys.modules`` first; installed packages stay.
    """
    global _init, _last_root
    if root is None or module_name is None:
        if not path.is_file():
            raise ScriptError(f"{path}: no such scenario file", hint="give the path of a .py scenario file")
        root, module_name = scenario_root(path)
    root = root.resolve()
    _forget_modules_under(root, *([_last_root] if _last_root is not None and _last_root != root else []))
    _last_root = root
    api.reset_declared_metrics()
    importlib.invalidate_caches()
    linecache.clearcache()
    sys.path.insert(0, str(root))
    init = _init = _Init(root)
    try:
        module = importlib.import_module(module_name)
    except (ScriptError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - even SystemExit at import is a script error
        raise _script_error_from(exc, path, root) from None
    finally:
        _init = None
        try:
            sys.path.remove(str(root))
        except ValueError:
            pass
    _opened[module] = init.opened
    return module


def open_at_init(path: str | os.PathLike[str], mode: str, caller_file: str, caller_line: int) -> str | bytes:
    """``surge.open``'s work, for the call at ``caller_file:caller_line`` (see the module docstring)."""
    where = f"{_shown(caller_file)}:{caller_line}"
    init = _init
    if init is None:
        raise ScriptError(
            f"{where}: surge.open({os.fspath(path)!r}) is available only at init, while the scenario is imported",
            hint="call surge.open at the top level of the scenario (or of a module it imports) and keep the result",
        )
    if not set(mode) <= {"r", "b", "t"} or ("b" in mode and "t" in mode):
        raise ScriptError(f"{where}: surge.open mode {mode!r}: use 'r' for text or 'b' for bytes (files are read-only)")
    target = (Path(caller_file).parent / path).resolve()
    if not target.is_relative_to(init.root):
        raise ScriptError(
            f"{where}: surge.open({os.fspath(path)!r}): {target} is outside the scenario's root {init.root}, "
            "so it could not travel to workers",
            hint=f"move it (or copy it) under {init.root}, beside the scenario, and open it by a relative path",
        )
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ScriptError(
            f"{where}: surge.open({os.fspath(path)!r}) cannot read {_shown(str(target))}: {exc.strerror or exc}",
            hint="paths are relative to the file that calls surge.open, not to the current directory",
        ) from None
    init.opened[target.relative_to(init.root).as_posix()] = data
    if "b" in mode:
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(
            f"{where}: surge.open({os.fspath(path)!r}): {_shown(str(target))} is not UTF-8 text ({exc.reason})",
            hint="open it with mode 'b' to get bytes",
        ) from None


def exec_function(module: ModuleType, name: str, source: str) -> Any:
    """The coroutine function a scenario runs (``default`` or its ``exec``), checked."""
    fn = getattr(module, name, None)
    if fn is None:
        raise ScriptError(
            f"{source}: no function {name!r}; define `async def {name}(vu):`",
            hint="a scenario must define async def default(vu), or name another function with 'exec'",
        )
    if not inspect.iscoroutinefunction(fn):
        try:
            line = inspect.getsourcelines(fn)[1]
        except (OSError, TypeError):
            line = 0
        where = f"{source}:{line}" if line else source
        raise ScriptError(f"{where}: {name!r} must be defined with `async def {name}(vu):`")
    return fn


def make_bundle(module: ModuleType, root: Path) -> dict[str, bytes]:
    """What workers import: the scenario's modules loaded now and the files it opened at init.

    Keys are paths relative to ``root``. A module is in only if it is loaded *now*, i.e. the
    scenario imported it at load time (at the top of a module): one that ``default`` imports
    lazily does not travel, so a worker on another machine lacks it unless it is installed
    there. Installed packages never travel (see the module docstring). Past
    :data:`MAX_BUNDLE_BYTES` this raises, naming the biggest files, rather than sending a
    message no worker would accept.
    """
    scope = _Scope(root)
    bundle: dict[str, bytes] = {}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not f or not f.endswith(".py"):
            continue
        if scope.owns(f):
            p = Path(f).resolve()
            bundle[p.relative_to(scope.root).as_posix()] = p.read_bytes()
    bundle.update(_opened.get(module, {}))
    total = sum(len(b) for b in bundle.values())
    if total > MAX_BUNDLE_BYTES:
        biggest = sorted(bundle, key=lambda rel: len(bundle[rel]), reverse=True)[:3]
        listed = ", ".join(f"{rel} ({len(bundle[rel]):,} bytes)" for rel in biggest)
        raise ScriptError(
            f"the scenario's bundle is {total:,} bytes, past the limit of {MAX_BUNDLE_BYTES:,} bytes "
            f"({MAX_BUNDLE_BYTES // (1024 * 1024)} MiB); biggest: {listed}",
            hint="workers receive the bundle in one message: open smaller files, or generate the data at init",
        )
    return bundle


def write_bundle(bundle: Mapping[str, bytes], directory: Path) -> None:
    """Write a bundle under ``directory`` at its relative paths, refusing any that would escape it.

    Modules and data files alike (``surge.open`` on a worker reads the shipped copy from here).
    A key that is absolute, climbs out with ``..`` or names the directory itself is refused:
    the bundle came over the wire, and a worker writes only inside its own temporary directory.
    """
    directory = directory.resolve()
    for rel, content in bundle.items():
        target = (directory / rel).resolve()
        if not rel or Path(rel).is_absolute() or target == directory or not target.is_relative_to(directory):
            raise ScriptError(f"bundle path {rel!r} is not a file inside the bundle")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    _BUNDLE_DIRS.add(directory)

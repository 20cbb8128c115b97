"""Loading a scenario file, and the bundle that carries it to workers.

A scenario is a Python module. Its *root* is the directory that must be on ``sys.path`` for
its imports to resolve: the parent of the outermost package that contains the file
(``scenarios/ticket_purchase.py`` inside package ``scenarios`` has the repository as root and
is imported as ``scenarios.ticket_purchase``, so ``from scenarios.helpers.auth import ...``
works), or the file's own directory when it is not in a package.

The coordinator loads the scenario first (to validate options before any load), then ships a
*bundle* to every worker: the source of every module under the root that the import actually
pulled in. Workers write the bundle to a temporary directory and import it from there, so a
worker on another machine needs no copy of the scenario and no shared file system, and local
workers take the very same path as remote ones.
"""

from __future__ import annotations

import importlib
import inspect
import linecache
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from surge.common import api
from surge.common.errors import ScriptError


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


def _user_file(f: str | None, root: Path) -> bool:
    if not f:
        return False
    p = Path(f).resolve()
    return p.is_relative_to(root) and not p.is_relative_to(_SURGE_DIR)


def _forget_modules_under(root: Path) -> None:
    for name, mod in list(sys.modules.items()):
        if _user_file(getattr(mod, "__file__", None), root):
            del sys.modules[name]


def _script_error_from(exc: BaseException, path: Path, root: Path) -> ScriptError:
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}"
        detail = f"\n    {exc.text.rstrip()}" if exc.text else ""
        return ScriptError(f"{where}: syntax error: {exc.msg}{detail}", hint="fix the syntax and run again")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _user_file(f.filename, root)]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(path)
    tb = "".join(traceback.format_list(frames)).rstrip()
    return ScriptError(f"{where}: {type(exc).__name__} while loading the scenario: {exc}\n{tb}")


def load_module(path: Path, *, root: Path | None = None, module_name: str | None = None) -> ModuleType:
    """Import a scenario file afresh; any failure becomes a :class:`ScriptError` naming file and line."""
    if root is None or module_name is None:
        if not path.is_file():
            raise ScriptError(f"{path}: no such scenario file", hint="give the path of a .py scenario file")
        root, module_name = scenario_root(path)
    root = root.resolve()
    _forget_modules_under(root)
    api.reset_declared_metrics()
    importlib.invalidate_caches()
    linecache.clearcache()
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(module_name)
    except (ScriptError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - even SystemExit at import is a script error
        raise _script_error_from(exc, path, root) from None
    finally:
        try:
            sys.path.remove(str(root))
        except ValueError:
            pass


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
    """Source of every module under ``root`` that is loaded now, keyed by path relative to root."""
    root = root.resolve()
    bundle: dict[str, bytes] = {}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not f or not f.endswith(".py"):
            continue
        if _user_file(f, root):
            p = Path(f).resolve()
            bundle[p.relative_to(root).as_posix()] = p.read_bytes()
    return bundle


def write_bundle(bundle: Mapping[str, bytes], directory: Path) -> None:
    """Write a bundle under ``directory``, refusing paths that would escape it."""
    directory = directory.resolve()
    for rel, content in bundle.items():
        target = (directory / rel).resolve()
        if not target.is_relative_to(directory) or not rel.endswith(".py"):
            raise ScriptError(f"bundle path {rel!r} is not a .py file inside the bundle")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

"""Build surge, with its hot path compiled by mypyc where this machine can (surge/hotpath.py).

Everything else is declared in setup.cfg. mypyc runs inside ``build_ext``, not when this file
is read: pip reads it several times per install (requirements, metadata, wheel), and the
type check and C generation take most of a minute. Any failure there (no mypyc, no compiler,
a mypyc error) is reported and leaves a pure-Python build, which behaves the same; so does
``SURGE_NO_COMPILE=1``, and so does an editable install (``pip install -e``), whose extensions
would be built in place and shadow the ``.py`` being edited.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
from pathlib import Path
from typing import Any

from setuptools import Distribution, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
HOT_MODULES: tuple[str, ...] = runpy.run_path(str(HERE / "surge" / "hotpath.py"))["HOT_MODULES"]


def _say(text: str) -> None:
    print(f"surge build: {text}", file=sys.stderr, flush=True)


class HotPathDistribution(Distribution):
    """A platform build (unless SURGE_NO_COMPILE): the extensions are only known once build_ext runs."""

    def has_ext_modules(self) -> bool:
        return not os.environ.get("SURGE_NO_COMPILE")


class CompileHotPath(build_ext):
    """mypyc the hot modules, or, on any failure, build nothing and leave the pure-Python package.

    mypyc type-checks them against the libraries they use, so pyproject.toml's build
    requirements hold surge's own requirements as well (tests/test_hotpath.py keeps the two
    lists the same): without them those libraries' types would be Any, and the strict check fails.
    """

    def _hot_extensions(self) -> list[Any]:
        if os.environ.get("SURGE_NO_COMPILE"):
            _say("SURGE_NO_COMPILE is set: pure Python")
            return []
        if getattr(self, "editable_mode", False) or self.inplace:
            _say("an editable install: pure Python, so that edits to the hot path take effect")
            return []
        try:
            from mypyc.build import mypycify
        except ImportError as exc:
            _say(f"mypyc is not importable ({exc}): pure Python")
            return []
        paths = [str(Path(*m.split(".")).with_suffix(".py")) for m in HOT_MODULES]
        try:
            return list(mypycify(paths, opt_level="3", group_name="surge_hotpath"))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a type error exits, other faults raise
            _say(f"mypyc could not translate the hot path ({type(exc).__name__}: {exc}): pure Python")
            return []

    def run(self) -> None:
        if not self.extensions:
            exts = self._hot_extensions()
            if not exts:
                self._remove_stale()
                return
            # setuptools sets up each extension when the command is finalized: start this
            # command afresh with them (reinitialize_command resets this very object)
            self.distribution.ext_modules = exts
            self.distribution.reinitialize_command("build_ext")
            self.ensure_finalized()
        try:
            super().run()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the compiler fails in many ways
            _say(f"compiling the hot path failed ({type(exc).__name__}: {exc}): pure Python")
            self._remove_outputs()
            self.extensions = []
            return
        _say(f"compiled {len(HOT_MODULES)} hot modules with mypyc")

    def _remove_stale(self) -> None:
        """A pure build of a tree built compiled before: the earlier extensions in ``build/``
        would be packed beside the new sources (bdist copies all of ``build_lib``), and a
        stale extension imports before its ``.py``: the edit would not run. Remove them."""
        lib = Path(self.build_lib)
        stale = [lib / self.get_ext_filename(m) for m in HOT_MODULES]
        stale += lib.glob("surge_hotpath__mypyc*")  # the group's shared library (mypyc)
        for path in stale:
            if path.exists():
                _say(f"removing {path}, an earlier build's compiled module")
                path.unlink()

    def _remove_outputs(self) -> None:
        # a shim without its shared library would fail to import, and win over the .py
        for ext in self.extensions:
            for base in (self.build_lib, str(HERE)):
                path = Path(base, self.get_ext_filename(self.get_ext_fullname(ext.name)))
                if path.exists():
                    path.unlink()
        shutil.rmtree(Path(self.build_temp), ignore_errors=True)

    def get_outputs(self) -> list[str]:
        return list(super().get_outputs()) if self.extensions else []


setup(distclass=HotPathDistribution, cmdclass={"build_ext": CompileHotPath})

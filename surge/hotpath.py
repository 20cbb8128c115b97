"""The hot path: the modules a wheel of surge carries compiled by mypyc, and how to tell.

Every request a worker sends and every report a coordinator applies runs through these
modules, so ``pip install`` compiles them to C extensions with mypyc (see setup.py) when it
can: the same source, type-checked with ``mypy --strict``, run without the interpreter's
per-bytecode cost. The ``.py`` files ship beside the extensions and stay the reference: a
build without mypyc or a C compiler, or with ``SURGE_NO_COMPILE=1``, installs them alone and
behaves the same, more slowly. A module here must not be patched at run time and its classes
must not be subclassed outside it (mypyc's native classes forbid both); the test suite runs
the hot path's own tests again against the installed build (tests/test_hotpath.py).

This module imports nothing from surge: setup.py reads it before surge is installed.
"""

from __future__ import annotations

import importlib
import importlib.machinery

# Dotted names, in the order they are compiled (one shared library holds them all).
HOT_MODULES: tuple[str, ...] = (
    # the coordinator: decoding a report and merging it into the fleet's series
    "surge.common.sketch",
    "surge.common.metrics",
    "surge.common.endpoint_stats",
    "surge.common.grants",
    "surge.coordinator.aggregate",
    "surge.results.timeline",
    # the worker: a VU's iterations, a request through the fast transport, and recording it
    "surge.worker.vu",
    # the open-model and iteration-count executors: built on vu's PlannedWaits (a native class
    # cannot have an interpreted subclass), and their iteration awaits vu's _resume (a compiled
    # generator is not awaitable from interpreted code)
    "surge.worker.iteration",
    "surge.worker.arrivals",
    "surge.worker.iterations",
    "surge.worker.recorder",
    "surge.worker.http.response",
    "surge.worker.http.client",
    "surge.worker.http.redirects",
    "surge.worker.http.transports.fast.url",
    "surge.worker.http.transports.fast.cookies",
    "surge.worker.http.transports.fast.message",
    "surge.worker.http.transports.fast.connection",
    "surge.worker.http.transports.fast.pool",
)


def is_compiled(module: str) -> bool:
    """Whether ``module`` was imported from a C extension (mypyc's output) rather than its source."""
    origin = importlib.import_module(module).__file__ or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def compiled_modules() -> list[str]:
    """The hot modules this surge runs compiled (empty for a pure-Python build)."""
    return [m for m in HOT_MODULES if is_compiled(m)]

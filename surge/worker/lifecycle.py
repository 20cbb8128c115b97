"""k6's ``setup()`` and ``teardown()`` on a worker: run once per test, on one worker.

The coordinator picks one worker (the first) for both. ``async def setup(vu)`` runs after every
worker has loaded the scenario and before any load; what it returns must be msgpack-able (plain
data: dicts, lists, str, bytes, numbers, bool, None), because it travels, packed, to every VU on
every worker as ``vu.data``. ``async def teardown(vu, data)`` runs once the load is over, even
after an abort (as in k6), with that same data. Both get a VU of their own (id 0, as k6's) with
the same ``vu.http``; their requests and metrics are recorded like any other, in k6's
``::setup`` and ``::teardown`` groups, and reach the summary in this worker's reports.

Each is bounded by its timeout (k6's ``setupTimeout``/``teardownTimeout``, exits 100 and 101); an
exception in either is a script error (exit 107) whose message shows the scenario's frames.
Nothing here talks to the network: the agent sends what these functions return.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import msgpack

from surge.common import api
from surge.common.errors import ExitCode

SETUP, TEARDOWN = "setup", "teardown"


@dataclass(frozen=True)
class Outcome:
    """How setup() or teardown() ended: ``data`` packed (setup only), or ``error`` and its exit code."""

    data: bytes = b""
    error: str = ""
    exit_code: int = 0


def has(module: ModuleType, name: str) -> bool:
    return callable(getattr(module, name, None))


def pack(value: Any) -> bytes:
    """setup()'s return value as it travels; ``b""`` is None."""
    return b"" if value is None else bytes(msgpack.packb(value, use_bin_type=True))


def unpack(data: bytes) -> Any:
    return None if not data else msgpack.unpackb(data, raw=False, strict_map_key=False)


def _scenario_traceback(exc: BaseException, root: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if root and f.filename.startswith(root)]
    for f in frames:
        f.filename = os.path.relpath(f.filename, root)
    shown = "".join(traceback.format_list(frames)).rstrip()
    head = f"{type(exc).__name__}: {exc}"
    return f"{head}\n{shown}" if shown else head


async def run(
    which: str, fn: Any, vu: Any, args: tuple[Any, ...], timeout_s: float, recorder: api.Recorder, root: str
) -> Outcome:
    """Run ``setup`` or ``teardown`` with its time limit; never raises (but for cancellation)."""
    if not inspect.iscoroutinefunction(fn):
        return Outcome(error=f"{which}() must be defined with `async def {which}(vu{', data' if args else ''}):`",
                       exit_code=int(ExitCode.SCRIPT_ERROR))
    previous = api.installed_recorder()
    api.install_recorder(recorder)  # its requests and metrics count, as k6's do
    try:
        with api.group(which):  # k6's ::setup and ::teardown groups
            value = await asyncio.wait_for(fn(vu, *args), timeout_s)
    except TimeoutError:
        code = ExitCode.SETUP_TIMEOUT if which == SETUP else ExitCode.TEARDOWN_TIMEOUT
        return Outcome(error=f"{which}() did not finish within {timeout_s:g}s ({which}Timeout)", exit_code=int(code))
    except Exception as exc:  # noqa: BLE001 - the scenario's failure, reported with its frames
        return Outcome(error=f"{which}() raised {_scenario_traceback(exc, root)}", exit_code=int(ExitCode.SCRIPT_ERROR))
    finally:
        api.install_recorder(previous)
        await vu.http.close()
    if which == TEARDOWN:
        return Outcome()
    try:
        return Outcome(data=pack(value))
    except (TypeError, ValueError, OverflowError) as exc:
        return Outcome(
            error=f"setup() returned a value that cannot be sent to the workers ({exc}); return plain data: "
            "dicts, lists, str, bytes, numbers, bool or None",
            exit_code=int(ExitCode.SCRIPT_ERROR),
        )

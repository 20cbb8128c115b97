"""Starting another surge process that runs this very surge.

``surge run`` starts its workers and the demo target, and ``surge worker --processes N`` its
worker processes, as ``python -m surge``. Left to itself, that child imports whichever surge
comes first on its own path, and ``-m`` puts the current directory first: run from a
checkout, an installed (compiled, surge/hotpath.py) coordinator would get pure-Python workers
from the checkout's sources, or a checkout's coordinator a stale installed release. So the
child is started with ``-P`` (no current directory on its path) and, where this surge is not
in the interpreter's own site-packages, with its root first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Mapping
from pathlib import Path

# the directory that holds this surge's package (surge/common/spawn.py: two levels up)
_ROOT = Path(__file__).resolve().parents[2]


def surge_command(*args: str) -> list[str]:
    """``python -P -m surge ARGS``, with this interpreter."""
    return [sys.executable, "-P", "-m", "surge", *args]


def surge_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment for :func:`surge_command`: ``base`` (default ``os.environ``) and ``extra``."""
    env = {**(os.environ if base is None else base), **extra}
    root = str(_ROOT)
    if root not in {str(Path(p).resolve()) for p in site.getsitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env

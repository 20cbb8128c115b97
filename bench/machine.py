"""Facts about the machine and the software measured, recorded with every result.

The surge revision is read from ``.git`` directly (HEAD, then the loose ref or
``packed-refs``) rather than by running git: the bench must work where git is not
installed, and must never touch the repository's state. Because an editable install
benchmarks the working tree, uncommitted edits included, a digest of surge's ``.py`` sources
is recorded too: two results with the same digest measured the same code.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from surge.hotpath import HOT_MODULES

REPO = Path(__file__).resolve().parent.parent


def git_head(repo: Path = REPO) -> str | None:
    """The abbreviated commit of HEAD (7 hex digits, as ``git log -1 --format=%h``), from files."""
    git = repo / ".git"
    if git.is_file():  # a worktree: "gitdir: <path>"
        git = (repo / git.read_text().split(":", 1)[1].strip()).resolve()
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head[:7]
    ref = head.split(":", 1)[1].strip()
    bases = [git]
    if (git / "commondir").exists():  # a linked worktree keeps its branches in the main .git
        bases.append((git / (git / "commondir").read_text().strip()).resolve())
    for base in bases:
        loose = base / ref
        if loose.exists():
            return loose.read_text().strip()[:7]
        packed = base / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0][:7]
    return None


def surge_source_dir() -> Path:
    """The surge package the bench's children import: the snapshot when one was taken."""
    snap = os.environ.get("BENCH_SURGE_SRC")
    return Path(snap) if snap else REPO / "surge"


def snapshot_surge(dest: Path, compiled: bool = True) -> Path:
    """Put a copy of surge in ``dest/surge`` and make every child process import that copy.

    surge is an editable install, so its working tree is what runs, and a long bench on a
    shared checkout can see it change between rounds (it did, while this bench was written).
    A copy taken at the start makes every round measure the same code. ``compiled``: the copy
    is what ``pip install .`` makes of the tree, its hot path compiled by mypyc
    (surge/hotpath.py), as users run it; otherwise the sources alone. ``PYTHONPATH`` entries
    come before the editable finder on ``sys.path``; children must not run with the repository
    as their working directory (``python -m`` puts the cwd first), and the runners see to that.
    """
    target = dest / "surge"
    if compiled:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(dest), str(REPO)],
            capture_output=True, text=True, check=False, env={k: v for k, v in os.environ.items() if k != "SURGE_NO_COMPILE"},
        )
        missing = [m for m in HOT_MODULES if not list(dest.glob(m.replace(".", "/") + ".*.so"))]
        if out.returncode != 0 or missing:
            raise SystemExit(f"could not build a compiled surge (missing: {', '.join(missing) or 'none'}); "
                             f"--pure measures the sources\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    else:
        copy_sources(dest)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(dest), os.environ.get("PYTHONPATH", "")]))
    os.environ["BENCH_SURGE_SRC"] = str(target)
    return target


def copy_sources(dest: Path) -> Path:
    """A copy of surge's sources alone in ``dest/surge`` (for ``PYTHONPATH=dest``); ``dest``."""
    shutil.copytree(REPO / "surge", dest / "surge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
    return dest


def snapshot_kind(pure: bool) -> str:
    return "copy" if pure else "compiled build (pip install, mypyc)"


def imported_surge(cwd: Path) -> str:
    """Where a child process started like the tools are would import surge from."""
    out = subprocess.run(
        [sys.executable, "-c", "import surge; print(surge.__file__)"],
        cwd=cwd, capture_output=True, text=True, check=False,
    )
    return out.stdout.strip() or out.stderr.strip()[-300:]


def source_digest(package: Path | None = None) -> str:
    """A short sha256 over surge's .py files (path and content), to tell source trees apart."""
    package = package or surge_source_dir()
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def facts() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        aiohttp_v, uvloop_v, pyzmq_v = version("aiohttp"), version("uvloop"), version("pyzmq")
    except Exception:  # noqa: BLE001 - informational only
        aiohttp_v = uvloop_v = pyzmq_v = "?"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_total_gb": mem_total_gb(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "surge_commit": git_head(),
        "surge_source_digest": source_digest(REPO / "surge"),
        "aiohttp": aiohttp_v,
        "uvloop": uvloop_v,
        "pyzmq": pyzmq_v,
        "somaxconn": _sysctl("net.core.somaxconn"),
        "taskset": shutil.which("taskset"),
    }

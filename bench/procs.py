"""Running one tool as a child process and measuring what it cost.

Two instruments, chosen for exactness rather than convenience:

* ``os.wait4`` on the child gives the CPU time and peak RSS of the child *and of every
  descendant it waited for*, summed by the kernel. For a tool that is one process (wrk, k6,
  Locust without ``--processes``) that is exact: no sampling, no start or end missed.
  ``resource.getrusage(RUSAGE_CHILDREN)`` deltas would give the same CPU but not a per-run
  peak RSS (``ru_maxrss`` of the children never goes down), hence ``wait4``.
* :class:`ProcWatch` samples ``/proc/<pid>/stat`` and ``/proc/<pid>/status`` every few tens of
  milliseconds. It exists for surge, whose ``surge run`` is a coordinator *plus* a worker
  process: ``wait4`` can only give their sum, and the issue's budget is the worker's alone.
  A process's last sample is taken at most one poll before it is reaped (its zombie still
  shows its final CPU times), and its parent's ``cutime``/``cstime`` hold the exact figure
  once it has been reaped, so the watch keeps both and the caller takes the larger.

No psutil: ``/proc`` is all that is needed on Linux, and the bench should not add a
dependency to surge's environment. This kernel has no ``/proc/<pid>/task/<tid>/children``
(``CONFIG_PROC_CHILDREN`` off), so children are found by their ``ppid``.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.02


@dataclass(frozen=True)
class Usage:
    """What one child process tree cost, from ``wait4``."""

    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kb: int  # the largest single process of the tree, not a sum
    timed_out: bool

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


@dataclass
class ProcSample:
    """The latest /proc reading of one process, plus its CPU over time."""

    pid: int
    ppid: int
    cmdline: str
    cpu_s: float = 0.0  # utime + stime
    children_cpu_s: float = 0.0  # cutime + cstime: descendants it has reaped
    hwm_kb: int = 0  # VmHWM: peak RSS; gone once the process is a zombie, so kept from earlier
    rss_kb: int = 0
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (monotonic s, cpu_s)


def _read_stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own cpu_s, reaped children's cpu_s), or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name is in parentheses and may contain spaces: split after the last ')'
    rest = raw[raw.rfind(")") + 2 :].split()
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def _read_mem(pid: int) -> tuple[int, int] | None:
    """(VmHWM kB, VmRSS kB), or None for a zombie or a vanished process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    hwm = rss = None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    if hwm is None or rss is None:
        return None
    return hwm, rss


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


class ProcWatch:
    """Follows a root process and its descendants through /proc until they are gone."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.procs: dict[int, ProcSample] = {}
        self._last_scan = 0.0

    def _scan_children(self) -> None:
        known = set(self.procs) | {self.root_pid}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in known:
                continue
            st = _read_stat(pid)
            if st is not None and st[0] in known:
                self.procs[pid] = ProcSample(pid, st[0], _cmdline(pid))
                known.add(pid)

    def sample(self) -> None:
        now = time.monotonic()
        if self.root_pid not in self.procs:
            st = _read_stat(self.root_pid)
            if st is None:
                return
            self.procs[self.root_pid] = ProcSample(self.root_pid, st[0], _cmdline(self.root_pid))
        if now - self._last_scan >= 0.25:  # children appear rarely; a /proc scan is not free
            self._last_scan = now
            self._scan_children()
        for p in self.procs.values():
            st = _read_stat(p.pid)
            if st is None:
                continue
            p.cpu_s, p.children_cpu_s = st[1], st[2]
            p.timeline.append((now, p.cpu_s))
            mem = _read_mem(p.pid)
            if mem is not None:
                p.hwm_kb = max(p.hwm_kb, mem[0])
                p.rss_kb = mem[1]
            if not p.cmdline:
                p.cmdline = _cmdline(p.pid)

    def find(self, predicate: Callable[[ProcSample], bool]) -> ProcSample | None:
        for p in self.procs.values():
            if predicate(p):
                return p
        return None


def raise_fd_limit(n: int = 65536) -> int:
    """Raise this process's open-file limit (inherited by every tool it starts).

    10,000 VUs each holding a connection need 10,000 descriptors in one process; the
    machine's default soft limit may be lower. Root may raise the hard limit as well.
    Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_measured(
    argv: Sequence[str],
    *,
    timeout_s: float,
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_poll: Callable[[int], None] | None = None,
    poll_s: float = POLL_S,
) -> Usage:
    """Run ``argv`` to its end (or kill it after ``timeout_s``) and return its ``wait4`` usage.

    stdout and stderr go to ``log_path``; ``on_poll(pid)`` is called every ``poll_s`` while
    the child runs (that is where /proc sampling happens). The child gets a session of its
    own so that a timeout can stop everything it started in that session.
    """
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        timed_out = False
        killed_at: float | None = None
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if on_poll is not None:
                on_poll(proc.pid)
            elapsed = time.monotonic() - t0
            if elapsed > timeout_s and killed_at is None:
                timed_out = True
                killed_at = elapsed
                _signal_group(proc.pid, signal.SIGTERM)
            elif killed_at is not None and elapsed > killed_at + 10.0:
                _signal_group(proc.pid, signal.SIGKILL)
            time.sleep(poll_s)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting
    return Usage(
        returncode=proc.returncode,
        wall_s=wall,
        user_s=ru.ru_utime,
        sys_s=ru.ru_stime,
        max_rss_kb=ru.ru_maxrss,
        timed_out=timed_out,
    )


def run_watched(
    argv: Sequence[str], *, timeout_s: float, log_path: Path, cwd: Path | None = None, poll_s: float = POLL_S
) -> tuple[Usage, ProcWatch | None]:
    """:func:`run_measured` with a :class:`ProcWatch` on the child and its descendants."""
    watch: ProcWatch | None = None

    def poll(pid: int) -> None:
        nonlocal watch
        if watch is None:
            watch = ProcWatch(pid)
        watch.sample()

    usage = run_measured(argv, timeout_s=timeout_s, log_path=log_path, cwd=cwd, on_poll=poll, poll_s=poll_s)
    return usage, watch


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def taskset(cores: str | None) -> list[str]:
    """The ``taskset`` prefix that pins a command to ``cores``, or nothing when not pinning."""
    return ["taskset", "-c", cores] if cores is not None else []

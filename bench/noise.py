"""How busy the machine was around one run, beyond the tool being measured.

The bench may share its machine with other work (a test suite, another benchmark). A process
on the generator's core steals time from the generator; one on the server's core slows the
server, so the generator gets fewer responses per wake-up and pays more per request. Neither
shows in the generator's own CPU figure, so each run records, from ``/proc/stat`` and the
server's ``/proc/<pid>/stat``:

* ``server_busy``: the server's CPU over wall time (near 1.0: the server was the limit);
* ``foreign_gen_s`` / ``foreign_server_s``: CPU seconds spent on each core by anything other
  than the generator's process tree, the server and this harness. Kernel work on behalf of
  the loopback traffic is partly counted here too, so a few percent is normal; much more
  means the run was disturbed, and its round should be read with that in mind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procs import CLK_TCK


def core_busy_s() -> dict[int, float]:
    """Per core: seconds not idle (user, nice, system, irq, softirq; not iowait, not steal)."""
    out: dict[int, float] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *fields = line.split()
            user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
            out[int(name[3:])] = (user + nice + system + irq + softirq) / CLK_TCK
    return out


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds of a process and its direct children (nginx: master and workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        if int(entry) == root_pid or int(rest[1]) == root_pid:
            total += (int(rest[11]) + int(rest[12])) / CLK_TCK
    return total


@dataclass(frozen=True)
class Snapshot:
    t: float
    busy: dict[int, float]
    server_cpu_s: float
    harness_cpu_s: float

    @classmethod
    def take(cls, server_pid: int | None) -> Snapshot:
        return cls(
            time.monotonic(),
            core_busy_s(),
            tree_cpu_s(server_pid) if server_pid is not None else 0.0,
            time.process_time(),
        )


def between(a: Snapshot, b: Snapshot, *, generator_cpu_s: float, gen_core: str | None,
            server_core: str | None) -> dict[str, float]:
    wall = max(b.t - a.t, 1e-9)
    server = b.server_cpu_s - a.server_cpu_s
    out = {"server_busy": server / wall}
    if gen_core is not None and server_core is not None:
        g, s = int(gen_core), int(server_core)
        out["foreign_gen_s"] = max(0.0, (b.busy[g] - a.busy[g]) - generator_cpu_s)
        harness = b.harness_cpu_s - a.harness_cpu_s
        out["foreign_server_s"] = max(0.0, (b.busy[s] - a.busy[s]) - server - harness)
        out["wall_s"] = wall
    return out

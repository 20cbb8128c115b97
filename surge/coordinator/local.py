"""Processes that ``surge run`` starts on this machine: workers, and the demo target.

Workers are started in their own session (process group), so a Ctrl-C in the terminal
reaches only the coordinator, which then stops the run in order; if the coordinator itself
dies, the workers notice its silence and stop their load within seconds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from contextlib import suppress
from pathlib import Path

from surge.common.spawn import surge_command, surge_env


def spawn_workers(
    endpoint: str, count: int, *, coordinator_timeout_s: float = 5.0, keys: Path | None = None
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        procs.append(
            subprocess.Popen(
                surge_command(
                    "worker",
                    "--connect", endpoint,
                    "--once",
                    "--name", f"local-{i}",
                    "--coordinator-timeout", str(coordinator_timeout_s),
                    # its load must not outlive this process, even one killed outright (SIGKILL)
                    "--parent-pid", str(os.getpid()),
                    *(["--keys", str(keys)] if keys is not None else []),
                ),
                env=surge_env(),
                start_new_session=True,
            )
        )
    return procs


async def reap(procs: list[subprocess.Popen[bytes]], *, grace_s: float = 10.0) -> None:
    """Wait for processes to exit by themselves, then terminate, then kill."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while any(p.poll() is None for p in procs) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = loop.time() + 5.0
    while any(p.poll() is None for p in procs) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.kill()
            with suppress(Exception):
                p.wait(timeout=5)


class DemoTarget:
    """The embedded demo target in a process of its own, on 127.0.0.1 and a free port.

    It is started with ``--parent-pid`` (this process): it watches that this process is still
    its parent, so it dies with its coordinator even when that is killed with SIGKILL and no
    cleanup runs.
    """

    def __init__(self, args: list[str] | None = None) -> None:
        self._args = args or []
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    async def start(self, timeout_s: float = 20.0) -> str:
        self.proc = subprocess.Popen(
            surge_command("target", "--host", "127.0.0.1", "--port", "0", "--parent-pid", str(os.getpid()), *self._args),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=surge_env(PYTHONUNBUFFERED="1"),
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout_s)
        marker = "listening on "
        if marker not in line:
            self.stop()
            raise RuntimeError(f"the demo target did not start: {line.strip() or 'no output'}")
        self.url = line.split(marker, 1)[1].strip()
        return self.url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

"""Machines for a test: Linux network namespaces on a bridge of their own.

A :class:`Network` is one namespace holding a bridge (the "LAN") plus one namespace per
machine, each with loopback up and an ``eth0`` (one end of a veth pair whose other end is a
port of the bridge) at ``10.200.0.N/24``. Nothing is added to the host's own namespace: the
veth pairs are made inside the bridge's namespace, and no machine has a route beyond
``10.200.0.0/24``, so a request from any of them can only reach another of them.

Names carry the test session's pid (``surge-it-<pid>-<tag>-<machine>``), so two sessions never
share one; :meth:`Network.close` kills what still runs in them and deletes them, and
:func:`network` calls it whatever the test did. Namespaces left by a session that was itself
killed (SIGKILL runs no cleanup) are removed by the next session (:func:`remove_stale`).

The test process itself stays in the host's namespace; it talks to the machines through
sockets made inside one of them (:meth:`Machine.connect`, :meth:`Machine.get_json`).

Without the privilege (not root, no ``ip``, a kernel or container that refuses a namespace)
the tests that need this are skipped, saying why; they are never run some other way.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

PREFIX = "surge-it"
SUBNET = "10.200.0"  # /24; each machine gets SUBNET.N
NETNS_DIR = Path("/run/netns")  # where `ip netns add` names its namespaces
_CLONE_NEWNET = 0x40000000

T = TypeVar("T")


class NetnsError(RuntimeError):
    """An ``ip`` command failed."""


def ip(*args: str) -> str:
    """Run ``ip ARGS`` (bounded); its stdout, or :class:`NetnsError` with its stderr."""
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if res.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
    return res.stdout


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None if they may be (creating one is the real test)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux's"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    return None


def cannot_create() -> str | None:
    """Why no network namespace can be made here (trying one), or None when one can."""
    reason = unavailable()
    if reason is not None:
        return reason
    ns = f"{PREFIX}-{os.getpid()}-probe"
    try:
        ip("netns", "add", ns)
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace here: {exc}"
    _kill_and_delete(ns)
    return None


def _in_namespace(ns: str, fn: Callable[[], T]) -> T:
    """``fn()`` in a thread that has joined network namespace ``ns``; sockets it makes stay there.

    setns(2) with CLONE_NEWNET moves only the calling thread, so the rest of the test process
    (pytest, the other threads) stays in the host's namespace.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(NETNS_DIR / ns) as f:
                if libc.setns(f.fileno(), _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            error.append(exc)

    thread = threading.Thread(target=run, name=f"in-{ns}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


class _Connection(http.client.HTTPConnection):
    def __init__(self, machine: Machine, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._machine = machine

    def connect(self) -> None:
        self.sock = self._machine.connect(self.host, self.port, timeout=self.timeout)


@dataclass(frozen=True)
class Machine:
    """One namespace standing in for a machine: its name in the test, namespace and address."""

    name: str
    ns: str
    address: str

    def argv(self, *argv: str) -> list[str]:
        """``argv`` run on this machine: ``ip netns exec NS argv...`` (which execs it: same pid)."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def popen(self, *argv: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``argv`` on this machine, stdout and stderr captured."""
        return subprocess.Popen(
            self.argv(*argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def connect(self, host: str, port: int, timeout: float | None = 5.0) -> socket.socket:
        """A TCP connection from this machine to ``host:port``."""
        return _in_namespace(self.ns, lambda: socket.create_connection((host, port), timeout=timeout))

    def get_json(self, host: str, port: int, path: str, timeout: float = 5.0) -> Any:
        """``GET http://host:port/path`` from this machine, the body parsed as JSON."""
        conn = _Connection(self, host, port, timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise AssertionError(f"GET {path} from {self.name}: HTTP {resp.status}: {body[:200]!r}")
            return json.loads(body)
        finally:
            conn.close()

    def routes(self) -> list[str]:
        return [line for line in ip("-n", self.ns, "-4", "route", "show").splitlines() if line.strip()]


class Network:
    """A bridge in a namespace of its own and machines plugged into it; see the module docstring."""

    def __init__(self, tag: str) -> None:
        self.prefix = f"{PREFIX}-{os.getpid()}-{tag}"
        self.lan = f"{self.prefix}-lan"
        self.machines: dict[str, Machine] = {}
        self._made: list[str] = []  # namespaces created, in order

    def __getitem__(self, name: str) -> Machine:
        return self.machines[name]

    def _add_namespace(self, ns: str) -> None:
        ip("netns", "add", ns)
        self._made.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def create_lan(self) -> None:
        self._add_namespace(self.lan)
        ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        ip("-n", self.lan, "link", "set", "br0", "up")

    def add(self, name: str, host_number: int) -> Machine:
        """A machine ``name`` at ``SUBNET.host_number``, plugged into the bridge."""
        assert 1 <= host_number <= 254 and re.fullmatch(r"[a-z0-9]{1,12}", name), (name, host_number)
        m = Machine(name, f"{self.prefix}-{name}", f"{SUBNET}.{host_number}")
        self._add_namespace(m.ns)
        port = f"p-{name}"  # lives in the bridge's namespace, so it cannot clash with the host's links
        ip("-n", self.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", m.ns)
        ip("-n", self.lan, "link", "set", port, "master", "br0", "up")
        ip("-n", m.ns, "addr", "add", f"{m.address}/24", "dev", "eth0")
        ip("-n", m.ns, "link", "set", "eth0", "up")
        self.machines[name] = m
        return m

    def close(self) -> None:
        """Kill whatever still runs in the machines (the test's own processes), delete every namespace."""
        for ns in reversed(self._made):
            _kill_and_delete(ns)
        self._made.clear()


def _kill_and_delete(ns: str) -> None:
    try:
        pids = ip("netns", "pids", ns).split()
    except NetnsError:
        pids = []
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    try:
        ip("netns", "del", ns)
    except NetnsError:
        pass


def remove_stale() -> None:
    """Delete namespaces this module named for a session whose process is gone."""
    try:
        listed = ip("netns", "list")
    except NetnsError:
        return
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{PREFIX}-(\d+)-.+", name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _kill_and_delete(name)


@contextmanager
def network(tag: str, machines: Mapping[str, int]) -> Iterator[Network]:
    """The LAN with ``machines`` (name -> host number); skips the test if no namespace can be made."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    remove_stale()
    net = Network(tag)
    try:
        try:
            net.create_lan()
        except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot create a network namespace here: {exc}")
        for name, number in machines.items():
            net.add(name, number)
        yield net
    finally:
        net.close()

"""The CURVE layer: key files, their refusals, and the ZAP gate over real sockets on 127.0.0.1.

Socket tests wait for an event with a generous bound (``_wait_for``) and never assert a duration.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from surge.cli import main
from surge.common.curve import (
    CoordinatorKeys,
    FleetAuthenticator,
    KeysError,
    RefusalLimiter,
    WorkerKeys,
    handshake_events,
    load_coordinator_keys,
    load_worker_keys,
    make_client,
    make_server,
    start_authenticator,
    write_keys,
)
from surge.common.errors import ExitCode

BOUND_S = 10.0


def _wait_for(what: Callable[[], bool], timeout_s: float = BOUND_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.01)
    return what()


def _handshake_lines(monitor: zmq.Socket[bytes], enough: Callable[[list[str]], bool]) -> list[str]:
    """What :func:`handshake_events` says, polled until ``enough`` of it has come (or the bound)."""
    lines: list[str] = []

    def more() -> bool:
        lines.extend(handshake_events(monitor))
        return enough(lines)

    _wait_for(more)
    return lines


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- files


def test_keys_are_written_in_two_directories_with_private_modes(tmp_path: Path) -> None:
    top = tmp_path / "fleet"
    written = write_keys(top)

    assert written.coordinator_dir == top / "coordinator" and written.worker_dir == top / "worker"
    assert sorted(p.relative_to(top).as_posix() for p in top.rglob("*")) == [
        "coordinator",
        "coordinator/coordinator.key",
        "coordinator/coordinator.key_secret",
        "coordinator/workers",
        "coordinator/workers/worker.key",
        "worker",
        "worker/coordinator.key",
        "worker/worker.key",
        "worker/worker.key_secret",
    ]
    for d in (top, top / "coordinator", top / "coordinator/workers", top / "worker"):
        assert _mode(d) == 0o700, d
    for secret in (top / "coordinator/coordinator.key_secret", top / "worker/worker.key_secret"):
        assert _mode(secret) == 0o600, secret
    # each side holds only its own secret
    assert "secret-key" not in (top / "worker/coordinator.key").read_text()
    assert "secret-key" not in (top / "coordinator/workers/worker.key").read_text()


def test_existing_keys_are_not_replaced_without_force(tmp_path: Path) -> None:
    write_keys(tmp_path)
    before = load_coordinator_keys(tmp_path)

    with pytest.raises(KeysError, match="already exist") as err:
        write_keys(tmp_path)
    assert err.value.exit_code == ExitCode.INVALID_CONFIG and "--force" in str(err.value)
    assert load_coordinator_keys(tmp_path) == before

    write_keys(tmp_path, force=True)
    after = load_coordinator_keys(tmp_path)
    assert after.public_key != before.public_key
    assert load_worker_keys(tmp_path).coordinator_public_key == after.public_key


@pytest.mark.parametrize("sub", ["", "coordinator"])
def test_coordinator_keys_load_from_the_top_directory_or_its_own(tmp_path: Path, sub: str) -> None:
    write_keys(tmp_path)
    worker = load_worker_keys(tmp_path / "worker")

    keys = load_coordinator_keys(tmp_path / sub)

    assert isinstance(keys, CoordinatorKeys) and keys.source == tmp_path / "coordinator"
    assert keys.authorized_workers == frozenset({worker.public_key})
    assert zmq.curve_public(keys.secret_key) == keys.public_key
    assert keys.secret_key.decode() not in repr(keys)


@pytest.mark.parametrize("sub", ["", "worker"])
def test_worker_keys_load_from_the_top_directory_or_its_own(tmp_path: Path, sub: str) -> None:
    write_keys(tmp_path)

    keys = load_worker_keys(tmp_path / sub)

    assert isinstance(keys, WorkerKeys) and keys.source == tmp_path / "worker"
    assert keys.coordinator_public_key == load_coordinator_keys(tmp_path).public_key
    assert keys.secret_key.decode() not in repr(keys)


def test_more_worker_keys_dropped_into_the_coordinator_directory_are_accepted(tmp_path: Path) -> None:
    write_keys(tmp_path / "a")
    write_keys(tmp_path / "b")
    (tmp_path / "a/coordinator/workers/b.key").write_bytes((tmp_path / "b/worker/worker.key").read_bytes())

    keys = load_coordinator_keys(tmp_path / "a")

    assert keys.authorized_workers == {load_worker_keys(tmp_path / "a").public_key, load_worker_keys(tmp_path / "b").public_key}


def _refusal(load: Callable[[Path], object], path: Path) -> str:
    with pytest.raises(KeysError) as err:
        load(path)
    assert err.value.exit_code == ExitCode.INVALID_CONFIG
    return str(err.value)


def test_a_missing_directory_or_file_is_refused_by_name(tmp_path: Path) -> None:
    assert "no such directory" in _refusal(load_coordinator_keys, tmp_path / "nope")
    assert "not a directory" in _refusal(load_worker_keys, _touch(tmp_path / "file"))
    assert f"{tmp_path / 'empty' / 'coordinator.key_secret'}: no such file" in _refusal(load_coordinator_keys, _dir(tmp_path / "empty"))

    write_keys(tmp_path / "k")
    (tmp_path / "k/worker/coordinator.key").unlink()
    assert f"{tmp_path / 'k/worker/coordinator.key'}: no such file" in _refusal(load_worker_keys, tmp_path / "k")
    for f in (tmp_path / "k/coordinator/workers").iterdir():
        f.unlink()
    assert "no *.key file; the coordinator would accept no worker" in _refusal(load_coordinator_keys, tmp_path / "k")


def test_the_other_sides_directory_is_named_as_such(tmp_path: Path) -> None:
    write_keys(tmp_path)

    assert "holds a worker's keys" in _refusal(load_coordinator_keys, tmp_path / "worker")
    assert "holds the coordinator's keys" in _refusal(load_worker_keys, tmp_path / "coordinator")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_secret_file_others_can_read_is_refused_with_the_chmod_to_run(tmp_path: Path, mode: int) -> None:
    write_keys(tmp_path)
    secret = tmp_path / "worker/worker.key_secret"
    secret.chmod(mode)

    text = _refusal(load_worker_keys, tmp_path)

    assert f"{secret}: secret key file is accessible by group or others (mode {mode:04o})" in text
    assert f"chmod 600 {secret}" in text


def test_malformed_keys_are_refused(tmp_path: Path) -> None:
    write_keys(tmp_path)
    secret = tmp_path / "coordinator/coordinator.key_secret"
    good = secret.read_text()

    secret.write_text(re.sub(r'secret-key = "[^"]*"', 'secret-key = "tooshort"', good))
    assert f"{secret}: malformed secret-key: expected 40 Z85 characters" in _refusal(load_coordinator_keys, tmp_path)

    secret.write_text(re.sub(r'secret-key = "(.)', 'secret-key = "\\\\', good))  # '\' is not Z85
    assert "malformed secret-key" in _refusal(load_coordinator_keys, tmp_path)

    other_secret = zmq.curve_keypair()[1].decode()
    secret.write_text(re.sub(r'secret-key = "[^"]*"', f'secret-key = "{other_secret}"', good))
    assert "does not belong to the public-key" in _refusal(load_coordinator_keys, tmp_path)

    secret.write_text(re.sub(r"\s+secret-key = .*", "", good))
    assert "no secret-key line" in _refusal(load_coordinator_keys, tmp_path)

    secret.write_text("not a certificate\n")
    assert f"{secret}: no public-key line" in _refusal(load_coordinator_keys, tmp_path)

    secret.write_text(good)
    dropped = tmp_path / "coordinator/workers/garbage.key"
    dropped.write_text('curve\n    public-key = "0123"\n')
    assert f"{dropped}: malformed public-key" in _refusal(load_coordinator_keys, tmp_path)


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


# --------------------------------------------------------------------------- the gate, over real sockets


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Gate:
    ctx: zmq.Context[zmq.Socket[bytes]]
    sock: zmq.Socket[bytes]
    auth: FleetAuthenticator
    endpoint: str
    refused: list[str]
    clock: FakeClock


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[CoordinatorKeys, WorkerKeys]:
    write_keys(tmp_path)
    return load_coordinator_keys(tmp_path), load_worker_keys(tmp_path)


@pytest.fixture
def gate(fleet: tuple[CoordinatorKeys, WorkerKeys]) -> Iterator[Gate]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    refused: list[str] = []
    clock = FakeClock()
    auth = start_authenticator(ctx, fleet[0], refused.append, clock=clock)
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    make_server(sock, fleet[0])
    auth.watch(sock)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield Gate(ctx, sock, auth, f"tcp://127.0.0.1:{port}", refused, clock)
    finally:
        sock.close()
        auth.stop()
        ctx.term()


class Clients:
    """The workers' side: another context, as on another machine; closes what it made."""

    def __init__(self) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sockets: list[zmq.Socket[bytes]] = []

    def socket(self, kind: int) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        self.sockets.append(sock)
        return sock

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.ctx.destroy(linger=0)  # also a monitor socket a failed test left open


@pytest.fixture
def client_ctx() -> Iterator[Clients]:
    clients = Clients()
    yield clients
    clients.close()


def _dealer(ctx: Clients, keys: WorkerKeys | None, *, retry: bool = True) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if not retry:
        sock.reconnect_ivl = -1  # one handshake per socket, so each makes exactly one refusal
    if keys is not None:
        make_client(sock, keys)
    return sock


def _stranger(fleet: tuple[CoordinatorKeys, WorkerKeys]) -> WorkerKeys:
    public, secret = zmq.curve_keypair()
    return WorkerKeys(public, secret, fleet[1].coordinator_public_key, Path("stranger"))


def _arrives(gate: Gate, timeout_s: float) -> list[bytes] | None:
    return gate.sock.recv_multipart() if gate.sock.poll(int(timeout_s * 1000)) else None


def test_an_authorized_worker_is_heard(gate: Gate, fleet: tuple[CoordinatorKeys, WorkerKeys], client_ctx: Clients) -> None:
    dealer = _dealer(client_ctx, fleet[1])
    monitor = dealer.get_monitor_socket()
    dealer.connect(gate.endpoint)
    dealer.send(b"hello")

    frames = _arrives(gate, BOUND_S)

    assert frames is not None and frames[1:] == [b"hello"]
    lines = _handshake_lines(monitor, lambda lines: bool(lines))
    assert lines == [f"secure handshake with the coordinator at {gate.endpoint} succeeded"]
    assert gate.refused == []
    monitor.close()


def test_a_worker_with_an_unknown_key_is_refused_and_reported(
    gate: Gate, fleet: tuple[CoordinatorKeys, WorkerKeys], client_ctx: Clients
) -> None:
    stranger = _stranger(fleet)
    dealer = _dealer(client_ctx, stranger)
    monitor = dealer.get_monitor_socket()
    dealer.connect(gate.endpoint)
    dealer.send(b"drive the fleet")

    assert _wait_for(lambda: bool(gate.refused))
    assert gate.refused[0] == (
        f"refused 127.0.0.1: unknown CURVE key {stranger.public_key.decode()} (not among the 1 authorized worker key(s))"
    )
    assert _arrives(gate, 0.5) is None
    expected = f"the coordinator at {gate.endpoint} refused this worker's key (ZAP status 400)"
    assert expected in _handshake_lines(monitor, lambda lines: expected in lines)
    monitor.close()


def test_a_client_without_curve_is_refused_and_reported(gate: Gate, client_ctx: Clients) -> None:
    dealer = _dealer(client_ctx, None)
    monitor = dealer.get_monitor_socket()
    dealer.connect(gate.endpoint)
    dealer.send(b"plain text")

    assert _wait_for(lambda: bool(gate.refused))
    # which of the two the server sees is a race (see FleetAuthenticator.watch)
    assert re.fullmatch(
        re.escape(f"refused a peer on {gate.endpoint}: ")
        + r"(no CURVE \(security mechanism mismatch\)|hung up mid-handshake \((Broken pipe|Connection reset by peer); .*\))",
        gate.refused[0],
    ), gate.refused
    assert _arrives(gate, 0.5) is None
    # the client may first see its greeting cut off (EPIPE) before the mismatch itself
    expected = f"the peer at {gate.endpoint} and this worker disagree on CURVE (one side has no keys)"
    assert expected in _handshake_lines(monitor, lambda lines: expected in lines)
    monitor.close()


def test_a_worker_of_another_fleet_is_refused_and_reported(
    gate: Gate, fleet: tuple[CoordinatorKeys, WorkerKeys], client_ctx: Clients, tmp_path: Path
) -> None:
    write_keys(tmp_path / "other")
    dealer = _dealer(client_ctx, load_worker_keys(tmp_path / "other"))
    dealer.connect(gate.endpoint)
    dealer.send(b"wrong coordinator key")

    assert _wait_for(lambda: bool(gate.refused))
    assert gate.refused[0] == f"refused a peer on {gate.endpoint}: CURVE handshake does not decrypt (keys of another fleet?)"
    assert _arrives(gate, 0.5) is None


def test_refusals_from_one_address_are_reported_once_per_interval_with_the_count_held_back(
    gate: Gate, fleet: tuple[CoordinatorKeys, WorkerKeys], client_ctx: Clients
) -> None:
    dealers = []
    for _ in range(5):
        dealer = _dealer(client_ctx, _stranger(fleet), retry=False)
        dealer.connect(gate.endpoint)
        dealers.append(dealer)

    assert _wait_for(lambda: gate.auth.refusals == 5)
    assert len(gate.refused) == 1

    gate.clock.now += 10.0
    late = _dealer(client_ctx, _stranger(fleet), retry=False)
    late.connect(gate.endpoint)

    assert _wait_for(lambda: len(gate.refused) == 2)
    assert gate.refused[1].endswith("(4 more refusal(s) from 127.0.0.1 not reported in the 10 s before)")
    assert gate.auth.refusals == 6 and gate.auth.callback_errors == 0


def test_a_failing_callback_does_not_stop_the_gate(fleet: tuple[CoordinatorKeys, WorkerKeys], client_ctx: Clients) -> None:
    def explode(_text: str) -> None:
        raise RuntimeError("logging is down")

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = start_authenticator(ctx, fleet[0], explode, interval_s=0.0)
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    make_server(sock, fleet[0])
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        bad = _dealer(client_ctx, _stranger(fleet), retry=False)
        bad.connect(f"tcp://127.0.0.1:{port}")
        assert _wait_for(lambda: auth.callback_errors == 1)
        good = _dealer(client_ctx, fleet[1])
        good.connect(f"tcp://127.0.0.1:{port}")
        good.send(b"still here")
        assert sock.poll(int(BOUND_S * 1000)) and sock.recv_multipart()[1:] == [b"still here"]
    finally:
        sock.close()
        auth.stop()
        ctx.term()


def test_a_server_without_its_gate_is_refused(fleet: tuple[CoordinatorKeys, WorkerKeys]) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    try:
        with pytest.raises(RuntimeError, match="start_authenticator"):
            make_server(sock, fleet[0])
    finally:
        sock.close(linger=0)
        ctx.term()


# --------------------------------------------------------------------------- the rate limiter, pure


def test_the_limiter_reports_the_first_refusal_then_one_per_interval_per_peer() -> None:
    clock = FakeClock()
    limiter = RefusalLimiter(10.0, clock)

    assert limiter.admit("10.0.0.1") == 0
    assert [limiter.admit("10.0.0.1") for _ in range(7)] == [None] * 7
    assert limiter.admit("10.0.0.2") == 0  # peers are told apart
    clock.now += 9.999
    assert limiter.admit("10.0.0.1") is None
    clock.now += 0.001
    assert limiter.admit("10.0.0.1") == 8
    assert limiter.admit("10.0.0.1") is None
    clock.now += 60
    assert limiter.admit("10.0.0.1") == 1
    assert limiter.admit("10.0.0.2") == 0


def test_the_limiter_forgets_quiet_peers_but_not_a_count_it_owes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RefusalLimiter, "_PRUNE_ABOVE", 3)
    clock = FakeClock()
    limiter = RefusalLimiter(10.0, clock)
    limiter.admit("owes")
    limiter.admit("owes")
    for peer in ("a", "b", "c"):
        limiter.admit(peer)
    clock.now += 10
    limiter.admit("d")  # over the bound: prune

    assert set(limiter._peers) == {"owes", "d"}
    assert limiter.admit("owes") == 1


# --------------------------------------------------------------------------- the command


def test_surge_keys_writes_the_fleet_and_will_not_overwrite_it(tmp_path: Path) -> None:
    runner = CliRunner()
    top = tmp_path / "fleet"

    first = runner.invoke(main, ["keys", str(top)])
    assert first.exit_code == 0, first.output
    assert f"wrote {top / 'coordinator/coordinator.key_secret'}" in first.output
    assert f"copy {top / 'coordinator'}/ to the coordinator's machine" in first.output
    assert f"copy {top / 'worker'}/ to every worker machine" in first.output
    key = load_coordinator_keys(top).public_key

    again = runner.invoke(main, ["keys", str(top)])
    assert again.exit_code == int(ExitCode.INVALID_CONFIG)
    assert "keys already exist" in again.output and "--force" in again.output
    assert load_coordinator_keys(top).public_key == key

    forced = runner.invoke(main, ["keys", "--force", str(top)])
    assert forced.exit_code == 0, forced.output
    assert load_coordinator_keys(top).public_key != key
    assert _mode(top / "worker/worker.key_secret") == 0o600
    assert os.listdir(top / "coordinator/workers") == ["worker.key"]

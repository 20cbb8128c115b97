"""Who may drive the fleet: CURVE keys, their files, and the ZAP gate on the coordinator.

surge is pointed at real servers, so a worker must obey its own coordinator and nobody else
(DESIGN.md, "Trust model"). ZeroMQ's CURVE gives both: the worker checks the coordinator's
public key during the handshake (a man in the middle cannot answer for it), and the coordinator
asks its ZAP handler whether the worker's public key is one it accepts. Everything is encrypted.

This module is, with :mod:`surge.common.wire`, :mod:`surge.common.router` and
:mod:`surge.common.dealer`, the ZeroMQ edge of surge: the only modules that import ``zmq``. It owns

* the key files: :func:`write_keys` (behind ``surge keys DIR``), :func:`load_coordinator_keys`,
  :func:`load_worker_keys`;
* applying keys to sockets: :func:`make_server`, :func:`make_client`;
* the gate: :func:`start_authenticator`, which accepts exactly the authorized worker keys and
  reports every refusal, rate-limited per peer (:class:`RefusalLimiter`);
* noticing a refused handshake on the worker's side: :func:`handshake_events`;

Key directory
-------------

``surge keys DIR`` writes one key pair for the coordinator and one for the fleet's workers.
Files are pyzmq's certificate format (:func:`zmq.auth.create_certificates`), which is plain
text and the one czmq uses too::

    metadata
    curve
        public-key = "<40 Z85 characters>"
        secret-key = "<40 Z85 characters>"      (only in *.key_secret files)

Layout (directories 0700, secret files 0600)::

    DIR/coordinator/                 -> the coordinator's machine
        coordinator.key_secret       the coordinator's key pair
        coordinator.key              its public key (also copied to worker/)
        workers/                     public keys of the workers it accepts, one *.key each
            worker.key
    DIR/worker/                      -> every worker machine
        worker.key_secret            the fleet's worker key pair
        worker.key                   its public key (also copied to coordinator/workers/)
        coordinator.key              the coordinator's public key, to check it by

A fleet member is anyone holding ``worker/``: all workers share one key pair, which keeps a
fleet of hundreds of machines to one secret to distribute (a Kubernetes Secret, say). To tell
machines apart, or to revoke one, give it its own pair and drop its public ``*.key`` file into
``coordinator/workers/``; every ``*.key`` file there is accepted. The directory is read when
the coordinator starts.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from surge.common.errors import ExitCode, SurgeError

ZAP_DOMAIN = b"surge"
"""The ZAP domain the coordinator's socket asks about; the authenticator answers only for it."""

REFUSAL_REPORT_INTERVAL_S = 10.0

COORDINATOR_DIR = "coordinator"
WORKER_DIR = "worker"
AUTHORIZED_WORKERS_DIR = "workers"
_COORDINATOR = "coordinator"  # certificate base names: coordinator.key, coordinator.key_secret
_WORKER = "worker"
_PUBLIC = ".key"
_SECRET = ".key_secret"

_HINT_MAKE = "make the fleet's keys with `surge keys DIR`"


class KeysError(SurgeError):
    """A key directory or file that cannot be used. Names the file and what was expected."""

    exit_code = ExitCode.INVALID_CONFIG


# --------------------------------------------------------------------------- keys in memory


@dataclass(frozen=True)
class CoordinatorKeys:
    """What the coordinator needs: its own key pair and the worker keys it accepts (all Z85)."""

    public_key: bytes
    secret_key: bytes = field(repr=False)
    authorized_workers: frozenset[bytes]
    source: Path


@dataclass(frozen=True)
class WorkerKeys:
    """What a worker needs: its key pair and the coordinator's public key (all Z85)."""

    public_key: bytes
    secret_key: bytes = field(repr=False)
    coordinator_public_key: bytes
    source: Path


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class WrittenKeys:
    """Where :func:`write_keys` put things."""

    coordinator_dir: Path
    worker_dir: Path
    files: tuple[Path, ...]


def write_keys(directory: str | os.PathLike[str], *, force: bool = False) -> WrittenKeys:
    """Make the fleet's key pairs under ``directory`` (see the module docstring for the layout).

    Refuses to replace any existing key file unless ``force``: a new coordinator key locks out
    every worker that holds the old ``worker/``, so overwriting is never silent. With ``force``,
    extra worker keys dropped into ``coordinator/workers/`` are left where they are.

    The directories are made 0700 *before* a secret is written into them, so there is no moment
    when another user could open a secret file, whatever the umask.
    """
    top = Path(directory)
    coord = top / COORDINATOR_DIR
    authorized = coord / AUTHORIZED_WORKERS_DIR
    worker = top / WORKER_DIR
    files = (
        coord / (_COORDINATOR + _SECRET),
        coord / (_COORDINATOR + _PUBLIC),
        authorized / (_WORKER + _PUBLIC),
        worker / (_WORKER + _SECRET),
        worker / (_WORKER + _PUBLIC),
        worker / (_COORDINATOR + _PUBLIC),
    )
    existing = [f for f in files if f.exists() or f.is_symlink()]
    if existing and not force:
        listed = ", ".join(str(f) for f in existing)
        raise KeysError(
            f"{top}: keys already exist ({listed}); a new coordinator key would lock out every worker holding the old ones",
            hint="pass --force to replace them, or choose another directory",
        )
    try:
        if not top.exists():
            top.mkdir(mode=0o700, parents=True)
            top.chmod(0o700)
        for d in (coord, authorized, worker):
            d.mkdir(mode=0o700, exist_ok=True)
            d.chmod(0o700)
        for f in existing:
            f.unlink()  # a symlink or foreign file is replaced, not written through
        zmq.auth.create_certificates(coord, _COORDINATOR)
        zmq.auth.create_certificates(worker, _WORKER)
        shutil.copyfile(coord / (_COORDINATOR + _PUBLIC), worker / (_COORDINATOR + _PUBLIC))
        shutil.copyfile(worker / (_WORKER + _PUBLIC), authorized / (_WORKER + _PUBLIC))
        for f in files:
            f.chmod(0o600 if f.name.endswith(_SECRET) else 0o644)
    except OSError as exc:
        raise KeysError(f"{top}: cannot write keys: {exc}") from None
    return WrittenKeys(coordinator_dir=coord, worker_dir=worker, files=files)


# --------------------------------------------------------------------------- loading


def load_coordinator_keys(path: str | os.PathLike[str]) -> CoordinatorKeys:
    """Read the coordinator's keys from the top directory of ``surge keys`` or its ``coordinator/``.

    Refuses (:class:`KeysError`) a missing directory or file, a secret file that group or
    others may read, a malformed key, a secret that does not match its public key, and an empty
    ``workers/`` (a coordinator that accepts nobody is a mistake, not a policy).
    """
    d = _key_dir(path, COORDINATOR_DIR)
    secret_file = d / (_COORDINATOR + _SECRET)
    if not secret_file.exists() and (d / (_WORKER + _SECRET)).exists():
        raise KeysError(
            f"{secret_file}: no such file; {d} holds a worker's keys, not the coordinator's",
            hint="give the coordinator the coordinator/ directory made by `surge keys`",
        )
    public, secret = _load_key_pair(secret_file)
    authorized_dir = d / AUTHORIZED_WORKERS_DIR
    if not authorized_dir.is_dir():
        raise KeysError(
            f"{authorized_dir}: no such directory; expected the public keys (*.key) of the workers to accept",
            hint=_HINT_MAKE,
        )
    keys = frozenset(_load_public_key(f) for f in sorted(authorized_dir.glob("*" + _PUBLIC)))
    if not keys:
        raise KeysError(
            f"{authorized_dir}: no *.key file; the coordinator would accept no worker",
            hint=f"copy worker.key (from the worker/ directory made by `surge keys`) into {authorized_dir}",
        )
    return CoordinatorKeys(public_key=public, secret_key=secret, authorized_workers=keys, source=d)


def load_worker_keys(path: str | os.PathLike[str]) -> WorkerKeys:
    """Read a worker's keys from the top directory of ``surge keys`` or its ``worker/``.

    Refuses (:class:`KeysError`) the same problems as :func:`load_coordinator_keys`; without
    the coordinator's public key a worker could not tell its coordinator from an impostor.
    """
    d = _key_dir(path, WORKER_DIR)
    secret_file = d / (_WORKER + _SECRET)
    if not secret_file.exists() and (d / (_COORDINATOR + _SECRET)).exists():
        raise KeysError(
            f"{secret_file}: no such file; {d} holds the coordinator's keys, not a worker's",
            hint="give workers the worker/ directory made by `surge keys`",
        )
    public, secret = _load_key_pair(secret_file)
    server = _load_public_key(d / (_COORDINATOR + _PUBLIC))
    return WorkerKeys(public_key=public, secret_key=secret, coordinator_public_key=server, source=d)


def _key_dir(path: str | os.PathLike[str], sub: str) -> Path:
    """``path/sub`` when it is there (the top directory was given), else ``path`` itself."""
    p = Path(path)
    if not p.exists():
        raise KeysError(f"{p}: no such directory; expected keys made by `surge keys`", hint=_HINT_MAKE)
    if not p.is_dir():
        raise KeysError(f"{p}: not a directory; expected the directory made by `surge keys` or its {sub}/")
    return p / sub if (p / sub).is_dir() else p


def _load_key_pair(path: Path) -> tuple[bytes, bytes]:
    if not path.is_file():
        raise KeysError(f"{path}: no such file; expected a CURVE secret key file", hint=_HINT_MAKE)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeysError(
            f"{path}: secret key file is accessible by group or others (mode {mode:04o}); refusing to use it",
            hint=f"chmod 600 {path}",
        )
    public, secret = _read_certificate(path)
    if secret is None:
        raise KeysError(f"{path}: no secret-key line; expected a *.key_secret file, this looks like a public key")
    public = _checked_key(public, path, "public-key")
    secret = _checked_key(secret, path, "secret-key")
    if zmq.curve_public(secret) != public:
        raise KeysError(f"{path}: the secret-key does not belong to the public-key in the same file")
    return public, secret


def _load_public_key(path: Path) -> bytes:
    if not path.is_file():
        raise KeysError(f"{path}: no such file; expected a CURVE public key file", hint=_HINT_MAKE)
    public, _ = _read_certificate(path)
    return _checked_key(public, path, "public-key")


def _read_certificate(path: Path) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except ValueError:
        raise KeysError(f'{path}: no public-key line; expected a ZeroMQ certificate (public-key = "...")') from None
    except OSError as exc:
        raise KeysError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _checked_key(key: bytes, path: Path, what: str) -> bytes:
    """A Z85 CURVE key is 40 characters that decode to 32 bytes; anything else is a damaged file."""
    try:
        ok = len(key) == 40 and len(z85.decode(key)) == 32
    except (KeyError, ValueError, TypeError):
        ok = False
    if not ok:
        raise KeysError(f"{path}: malformed {what}: expected 40 Z85 characters, got {key[:48]!r}")
    return key


# --------------------------------------------------------------------------- sockets


def make_server(sock: zmq.Socket[bytes], keys: CoordinatorKeys) -> None:
    """Make ``sock`` (the coordinator's ROUTER, before it binds) a CURVE server behind ZAP.

    ``ZAP_ENFORCE_DOMAIN`` makes it fail closed: without it, libzmq 4.3 lets *any* CURVE client
    in when no ZAP handler is running. And since a missing handler would then refuse every
    worker in silence, this checks that one is bound in the socket's context and raises
    ``RuntimeError`` if not: call :func:`start_authenticator` first.
    """
    probe = sock.context.socket(zmq.REP)
    try:
        probe.bind("inproc://zeromq.zap.01")
        running = False
    except zmq.ZMQError:
        running = True  # the address is taken: a ZAP handler is listening
    finally:
        probe.close(linger=0)
    if not running:
        raise RuntimeError("no ZAP handler in this socket's context: call start_authenticator(ctx, ...) first")
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.curve_secretkey = keys.secret_key
    sock.curve_publickey = keys.public_key
    sock.curve_server = True


def make_client(sock: zmq.Socket[bytes], keys: WorkerKeys) -> None:
    """Make ``sock`` (a worker's DEALER, before it connects) a CURVE client of its coordinator.

    ``curve_serverkey`` is what lets the worker refuse an impostor: the handshake fails unless
    the peer proves it holds the coordinator's secret key.
    """
    sock.curve_secretkey = keys.secret_key
    sock.curve_publickey = keys.public_key
    sock.curve_serverkey = keys.coordinator_public_key


# --------------------------------------------------------------------------- refusals


class RefusalLimiter:
    """Decides which refusals are reported: at most one per peer per ``interval_s``.

    A refused worker reconnects every 100 ms or so (libzmq's reconnect interval), and an
    attacker can connect as fast as it likes, so reporting every refusal would flood the log and
    bury the one line that matters. The first refusal from a peer is reported; the ones that
    follow within ``interval_s`` are counted, and the count rides on that peer's next report.

    Pure: it reads only the injected ``clock`` (seconds, monotonic). Not thread-safe by itself.
    """

    _PRUNE_ABOVE = 4096

    def __init__(self, interval_s: float = REFUSAL_REPORT_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._peers: dict[str, tuple[float, int]] = {}  # peer -> (last report at, suppressed since)

    def admit(self, peer: str) -> int | None:
        """``None`` if this refusal should not be reported, else how many were held back before it."""
        now = self._clock()
        last = self._peers.get(peer)
        if last is not None and now - last[0] < self.interval_s:
            self._peers[peer] = (last[0], last[1] + 1)
            return None
        self._peers[peer] = (now, 0)
        if len(self._peers) > self._PRUNE_ABOVE:
            self._prune(now)
        return last[1] if last is not None else 0

    def _prune(self, now: float) -> None:
        """Forget peers whose window is over and who owe no count, so churn cannot grow memory."""
        for peer, (at, suppressed) in list(self._peers.items()):
            if suppressed == 0 and now - at >= self.interval_s:
                del self._peers[peer]


def refusal_text(peer: str, reason: str, suppressed: int, interval_s: float) -> str:
    """The line reported for a refusal, with the count held back since the last one."""
    text = f"refused {peer}: {reason}"
    if suppressed:
        text += f" ({suppressed} more refusal(s) from {peer} not reported in the {interval_s:g} s before)"
    return text


class _FleetZap(ThreadAuthenticator):
    """pyzmq's threaded ZAP handler, deciding by the fleet's keys and saying why it refuses.

    pyzmq's own decision (``Authenticator.handle_zap_message``) is reported only as a debug line
    on the ``zmq.auth`` logger, and the reason never leaves the private ``_send_zap_reply``. So
    the decision is made here instead, over the same ZAP request frames (RFC 27: version,
    request id, domain, address, identity, mechanism, credentials).
    """

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], allowed: frozenset[bytes], refuse: Callable[[str, str], None]) -> None:
        super().__init__(ctx)
        self._worker_keys = frozenset(z85.decode(k) for k in allowed)  # ZAP hands over the binary key
        self._refuse = refuse

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        if len(msg) < 6:
            if len(msg) >= 2:
                self._reply(msg[1], b"400", b"malformed ZAP request")
            return
        version, request_id, domain, address, _identity, mechanism = msg[:6]
        credentials = msg[6:]
        if version != b"1.0":
            self._reply(request_id, b"400", b"unsupported ZAP version")
            return
        peer = address.decode("utf-8", "replace") or "an unknown address"
        if domain != ZAP_DOMAIN:
            self._reply(request_id, b"400", b"unknown domain")
            self._refuse(peer, f"asked for ZAP domain {domain!r}, not {ZAP_DOMAIN!r}")
        elif mechanism != b"CURVE" or len(credentials) != 1:
            self._reply(request_id, b"400", b"CURVE required")
            self._refuse(peer, f"no CURVE (mechanism {mechanism.decode('ascii', 'replace')})")
        elif credentials[0] in self._worker_keys:
            self._reply(request_id, b"200", b"OK", z85.encode(credentials[0]))
        else:
            self._reply(request_id, b"400", b"unknown key")
            key = z85.encode(credentials[0]).decode("ascii")
            self._refuse(peer, f"unknown CURVE key {key} (not among the {len(self._worker_keys)} authorized worker key(s))")

    def _reply(self, request_id: bytes, status: bytes, text: bytes, user_id: bytes = b"") -> None:
        self.zap_socket.send_multipart([b"1.0", request_id, status, text, user_id, b""])


_HUNG_UP = frozenset({errno.EPIPE, errno.ECONNRESET})
_SERVER_MONITOR_EVENTS = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


class FleetAuthenticator:
    """The running gate, from :func:`start_authenticator`. ``stop()`` it before ``ctx.term()``.

    ``refusals`` counts every refusal, reported or not (for tests and a final summary).
    """

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        keys: CoordinatorKeys,
        on_refused: Callable[[str], None],
        interval_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._ctx = ctx
        self._on_refused = on_refused
        self._limiter = RefusalLimiter(interval_s, clock)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchers: list[threading.Thread] = []
        self.refusals = 0
        self.callback_errors = 0
        self._zap = _FleetZap(ctx, keys.authorized_workers, self._refuse)
        self._zap.start()

    def _refuse(self, peer: str, reason: str) -> None:
        """Called from the ZAP thread and the watchers: count, rate-limit, report.

        An exception from ``on_refused`` is counted and swallowed: letting it kill the ZAP
        thread would stall every handshake after it, a refusal must never end a run.
        """
        with self._lock:
            self.refusals += 1
            suppressed = self._limiter.admit(peer)
        if suppressed is None:
            return
        try:
            self._on_refused(refusal_text(peer, reason, suppressed, self._limiter.interval_s))
        except Exception:
            with self._lock:
                self.callback_errors += 1

    def watch(self, sock: zmq.Socket[bytes]) -> None:
        """Also report handshakes that fail before ZAP is asked, on the server socket ``sock``.

        A peer that speaks no CURVE at all (mechanism mismatch), or that holds another fleet's
        coordinator key (the HELLO does not decrypt), is refused by libzmq itself and never
        reaches the ZAP handler; so is one that hangs up mid-handshake or never finishes it. Which
        of these a peer without CURVE shows is a race: when it reads the server's greeting first,
        it hangs up before the server reads its own, and the server sees only the hang-up. Only
        the socket's monitor sees any of these. libzmq names no peer address
        in those events (only the local endpoint it arrived on), so they are reported and
        rate-limited under ``a peer on <endpoint>``.

        Call it from the thread that owns ``sock`` (it sets the socket's one monitor, replacing
        any other); the events are read in a thread of this handle's own.
        """
        addr = f"inproc://surge-curve-watch-{id(self)}-{len(self._watchers)}"
        sock.monitor(addr, _SERVER_MONITOR_EVENTS)
        mon = self._ctx.socket(zmq.PAIR)
        mon.connect(addr)
        thread = threading.Thread(target=self._watch, args=(mon,), name="surge-curve-watch", daemon=True)
        self._watchers.append(thread)
        thread.start()

    def _watch(self, mon: zmq.Socket[bytes]) -> None:
        try:
            while not self._stopping.is_set():
                if not mon.poll(100):  # bounds how long stop() waits for this thread
                    continue
                event = parse_monitor_message(mon.recv_multipart())
                endpoint = event["endpoint"].decode("utf-8", "replace")
                reason = _handshake_failure(event["event"], event["value"])
                self._refuse(f"a peer on {endpoint}", reason)
        finally:
            mon.close(linger=0)

    def stop(self) -> None:
        """Stop the watchers and the ZAP thread, and close their sockets. Idempotent.

        Order: close (or stop using) the server socket first, then ``stop()``, then
        ``ctx.term()``. Stopping the gate while the server still accepts is safe (the socket
        fails closed) but every worker is then refused.
        """
        self._stopping.set()
        for thread in self._watchers:
            thread.join()
        self._watchers.clear()
        self._zap.stop()


def start_authenticator(
    ctx: zmq.Context[zmq.Socket[bytes]],
    keys: CoordinatorKeys,
    on_refused: Callable[[str], None],
    *,
    interval_s: float = REFUSAL_REPORT_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
) -> FleetAuthenticator:
    """Start the ZAP handler for ``ctx``: it accepts exactly ``keys.authorized_workers``.

    Every refusal goes to ``on_refused(text)``, with the peer's address and why, at most once per
    peer per ``interval_s`` (see :class:`RefusalLimiter`). ``on_refused`` runs in the
    authenticator's threads, not the caller's: keep it quick and thread-safe (a ``logging`` call
    is both). One handler per context: ZAP lives at a fixed inproc address, so a second start
    on the same context raises ``zmq.ZMQError`` (address in use).
    """
    return FleetAuthenticator(ctx, keys, on_refused, interval_s, clock)


# --------------------------------------------------------------------------- the client's view


_PROTOCOL_ERRORS = {
    getattr(zmq, name): name.removeprefix("PROTOCOL_ERROR_").lower().replace("_", " ")
    for name in dir(zmq)
    if name.startswith("PROTOCOL_ERROR_")
}


def _handshake_failure(event: int, value: int) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return "no CURVE (security mechanism mismatch)"
        if value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            return "CURVE handshake does not decrypt (keys of another fleet?)"
        return f"handshake protocol error ({_PROTOCOL_ERRORS.get(value, hex(value))})"
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"refused by ZAP (status {value})"
    if value in _HUNG_UP:
        # A peer without CURVE often reads the server's greeting, sees the mismatch and hangs up
        # before the server has read its own: then this is all the server learns of it.
        return f"hung up mid-handshake ({os.strerror(value)}; a peer without CURVE, or a scanner)"
    return f"handshake failed ({os.strerror(value) if value else 'no detail'})"


def handshake_events(monitor_socket: zmq.Socket[bytes]) -> list[str]:
    """Drain the pending events of a socket monitor, without blocking; describe the handshakes.

    For a worker's DEALER: ``sock.get_monitor_socket()`` once, then poll this from the socket's
    I/O thread. Each failed or succeeded handshake becomes one line, e.g. ``the coordinator at
    tcp://10.0.0.5:5557 refused this worker's key (ZAP status 400)``; other monitor events
    (connects, retries, disconnects) are consumed and dropped.
    """
    lines: list[str] = []
    while True:
        try:
            frames = monitor_socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return lines
        event = parse_monitor_message(frames)
        kind, value = event["event"], event["value"]
        at = event["endpoint"].decode("utf-8", "replace")
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            lines.append(f"secure handshake with the coordinator at {at} succeeded")
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            lines.append(f"the coordinator at {at} refused this worker's key (ZAP status {value})")
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
                lines.append(f"the peer at {at} and this worker disagree on CURVE (one side has no keys)")
            else:
                lines.append(f"handshake with {at} failed: {_handshake_failure(kind, value)}")
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            lines.append(f"handshake with {at} failed ({os.strerror(value) if value else 'no detail'})")

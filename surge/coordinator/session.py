"""One run, as the coordinator plays it over the wire.

Phases, each bounded in time:

1. **gather**: answer ``Hello`` with ``Welcome`` until ``expect_workers`` have come.
2. **load**: send each worker its ``Run`` (bundle + its slices); wait for every ``Ready``. One
   ``LoadFailed`` ends the run before any load with that worker's error and exit code.
3. **run**: send ``Start`` to all at once. Then, until every worker's final report is in:
   apply and acknowledge each ``Report``; every second send heartbeats, check for silent
   workers, and evaluate the ``abortOnFail`` thresholds on the fleet's merged data.
4. **stop** (only on abort, signal or a lost worker): send ``Stop`` to all and keep collecting
   until every live worker's final report is in, or ``stop_timeout_s`` passes.

The session never exits the process and never prints results: it returns a
:class:`SessionResult` and the caller judges and reports.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from surge.common.errors import ExitCode, ProtocolError, SurgeError, WorkerLost
from surge.common.metrics import Sink
from surge.common.protocol import (
    Ack,
    Bye,
    Heartbeat,
    Hello,
    LoadFailed,
    Message,
    Ready,
    Refuse,
    Report,
    Run,
    ScenarioSlice,
    Start,
    Stop,
    Welcome,
)
from surge.common.wire import PeerGone, RouterChannel
from surge.coordinator.aggregate import Aggregate

TICK_S = 1.0

# Called every tick with the elapsed time and a function that merges the fleet's sinks (a
# copy of every series of every worker: call it only when the answer is needed); returns a
# reason to stop the run, or None.
Watchdog = Callable[[float, Callable[[], dict[str, Sink]]], "StopReason | None"]


@dataclass(frozen=True)
class StopReason:
    exit_code: ExitCode
    message: str


@dataclass
class SessionResult:
    aggregate: Aggregate
    duration_s: float
    stopped: StopReason | None = None
    workers: list[str] = field(default_factory=list)


@dataclass
class _Peer:
    identity: bytes
    name: str
    index: int
    last_seen: float
    ready: bool = False


def _log(text: str) -> None:
    print(f"surge: {text}", file=sys.stderr, flush=True)


class Session:
    def __init__(
        self,
        chan: RouterChannel,
        *,
        expect_workers: int,
        gather_timeout_s: float = 60.0,
        load_timeout_s: float = 60.0,
        worker_timeout_s: float = 5.0,
        stop_timeout_s: float = 30.0,
        dismiss_workers: bool = False,
    ) -> None:
        if expect_workers < 1:
            raise ValueError("expect_workers must be at least 1")
        self._chan = chan
        self._n = expect_workers
        self._gather_timeout_s = gather_timeout_s
        self._load_timeout_s = load_timeout_s
        self._worker_timeout_s = worker_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._dismiss = dismiss_workers
        self._loop = asyncio.get_running_loop()
        self._peers: dict[bytes, _Peer] = {}
        self._stop_requested: StopReason | None = None
        self.bad_messages = 0

    # ------------------------------------------------------------------ plumbing

    def request_stop(self, reason: StopReason) -> None:
        """Ask the run to stop (a signal handler calls this); measured data is still collected."""
        if self._stop_requested is None:
            self._stop_requested = reason

    async def _recv(self, timeout_s: float) -> tuple[bytes, Message] | None:
        try:
            identity, msg = await asyncio.wait_for(self._chan.recv(), timeout_s)
        except TimeoutError:
            return None
        if isinstance(msg, ProtocolError):
            self.bad_messages += 1
            _log(f"refused a message from worker {identity.hex()[:8]}: {msg}")
            try:
                await self._chan.send(identity, Refuse(str(msg)))
            except PeerGone:
                pass
            return None
        peer = self._peers.get(identity)
        if peer is not None:
            peer.last_seen = self._loop.time()
        return identity, msg

    async def _send(self, peer: _Peer, msg: Message) -> None:
        try:
            await self._chan.send(peer.identity, msg)
        except PeerGone:
            pass  # noticed by its silence

    async def _broadcast(self, msg: Message) -> None:
        for peer in self._peers.values():
            await self._send(peer, msg)

    # ------------------------------------------------------------------ phases

    async def gather(self) -> list[str]:
        deadline = self._loop.time() + self._gather_timeout_s
        while len(self._peers) < self._n:
            left = deadline - self._loop.time()
            if left <= 0:
                raise WorkerLost(
                    f"only {len(self._peers)} of {self._n} workers connected to {self._chan.endpoint} "
                    f"within {self._gather_timeout_s:g}s",
                    hint="start them with: surge worker --connect " + self._chan.endpoint,
                )
            got = await self._recv(min(left, TICK_S))
            if got is None:
                continue
            identity, msg = got
            if isinstance(msg, Hello):
                peer = self._peers.get(identity)
                if peer is None:
                    peer = _Peer(identity, msg.name, len(self._peers), self._loop.time())
                    self._peers[identity] = peer
                await self._send(peer, Welcome(peer.index))
        return [p.name for p in sorted(self._peers.values(), key=lambda p: p.index)]

    async def run(
        self,
        *,
        bundle: dict[str, bytes],
        entry: str,
        env: dict[str, str],
        slices: Sequence[list[ScenarioSlice]],
        submetrics: list[str],
        report_interval_s: float,
        max_duration_s: float,
        watchdog: Watchdog | None = None,
        http_transport: str = "fast",
    ) -> SessionResult:
        """Phases 2-4. ``slices[i]`` goes to the worker with index i."""
        peers = sorted(self._peers.values(), key=lambda p: p.index)
        run_id = uuid.uuid4().hex[:12]
        for peer in peers:
            await self._send(
                peer,
                Run(run_id, bundle, entry, env, list(slices[peer.index]), submetrics, report_interval_s, http_transport),
            )
        await self._await_ready(run_id, peers)

        agg = Aggregate(len(peers))
        await self._broadcast(Start(run_id))
        t0 = self._loop.time()
        stopped: StopReason | None = None
        stop_sent = False
        stop_deadline = t0 + max_duration_s + self._stop_timeout_s
        next_tick = t0 + TICK_S
        try:
            while not agg.all_finished:
                now = self._loop.time()
                if stopped is None and self._stop_requested is not None:
                    stopped = self._stop_requested
                if stopped is not None and not stop_sent:
                    stop_sent = True
                    _log(f"stopping: {stopped.message}")
                    await self._broadcast(Stop(run_id, stopped.message))
                    stop_deadline = min(stop_deadline, now + self._stop_timeout_s)
                if now >= stop_deadline:
                    missing = [p.name for p in peers if not agg.finished[p.index]]
                    lost = StopReason(ExitCode.WORKER_LOST, f"no final report from {', '.join(missing)}")
                    stopped = stopped or lost
                    _log(lost.message)
                    break
                if now >= next_tick:
                    next_tick = now + TICK_S
                    await self._broadcast(Heartbeat())
                    silent = [
                        p for p in peers
                        if not agg.finished[p.index] and now - p.last_seen > self._worker_timeout_s
                    ]
                    if silent and stopped is None:
                        names = ", ".join(p.name for p in silent)
                        stopped = StopReason(
                            ExitCode.WORKER_LOST, f"worker(s) {names} silent for {self._worker_timeout_s:g}s"
                        )
                        continue
                    if silent and stopped is not None and stopped.exit_code is ExitCode.WORKER_LOST:
                        for p in silent:
                            agg.finished[p.index] = True  # gone: do not wait for it any longer
                    if watchdog is not None and stopped is None:
                        stopped = watchdog(now - t0, agg.series)
                        if stopped is not None:
                            continue
                got = await self._recv(max(0.0, min(next_tick, stop_deadline) - self._loop.time()))
                if got is None:
                    continue
                identity, msg = got
                sender = self._peers.get(identity)
                if sender is None:
                    if isinstance(msg, Hello):
                        await self._chan.send(identity, Refuse("a run is already in progress"))
                    continue
                if isinstance(msg, Report) and msg.run_id == run_id:
                    # A duplicate is acknowledged again too: its first ack was lost.
                    agg.accept(sender.index, msg)
                    await self._send(sender, Ack(run_id, msg.seq))
                    if msg.aborted and stopped is None:
                        stopped = StopReason(ExitCode.SCRIPT_ABORTED, f"{sender.name}: {msg.aborted}")
        finally:
            duration = self._loop.time() - t0
            if self._dismiss:
                await self._broadcast(Bye("run finished"))
        return SessionResult(agg, duration, stopped, [p.name for p in peers])

    async def _await_ready(self, run_id: str, peers: list[_Peer]) -> None:
        deadline = self._loop.time() + self._load_timeout_s
        while not all(p.ready for p in peers):
            left = deadline - self._loop.time()
            if left <= 0:
                slow = ", ".join(p.name for p in peers if not p.ready)
                await self._broadcast(Stop(run_id, "load timed out"))
                raise WorkerLost(f"worker(s) {slow} did not load the scenario within {self._load_timeout_s:g}s")
            got = await self._recv(min(left, TICK_S))
            if got is None:
                continue
            identity, msg = got
            peer = self._peers.get(identity)
            if peer is None:
                continue
            if isinstance(msg, Ready) and msg.run_id == run_id:
                peer.ready = True
            elif isinstance(msg, LoadFailed) and msg.run_id == run_id:
                await self._broadcast(Stop(run_id, "another worker failed to load the scenario"))
                if self._dismiss:
                    await self._broadcast(Bye("run failed to load"))
                err = SurgeError(f"worker {peer.name} could not load the scenario: {msg.message}")
                try:
                    err.exit_code = ExitCode(msg.exit_code)
                except ValueError:
                    err.exit_code = ExitCode.SCRIPT_ERROR
                raise err

"""One run, as the coordinator plays it over the wire.

Phases, each bounded in time:

1. **gather**: answer ``Hello`` with ``Welcome`` until ``expect_workers`` have come; a worker
   that goes silent meanwhile gives its slot back. Ctrl-C here ends the run with nothing sent.
2. **load**: send each worker its ``Run`` (bundle + its slices); wait for every ``Ready``. One
   ``LoadFailed`` ends the run before any load with that worker's error and exit code.
3. **run**: send ``Start`` to all at once. Then, until every worker's final report is in:
   apply and acknowledge each ``Report`` (skip and ``Reject`` one that did not validate);
   every second check for silent workers and for workers whose event loop is blocked, and
   evaluate the ``abortOnFail`` thresholds on the fleet's merged data.
4. **stop** (only on abort, signal or a lost worker): send ``Stop`` to all and keep collecting
   until every live worker's final report is in, or ``stop_timeout_s`` passes.

Heartbeats flow in every phase from the link's I/O thread (:mod:`surge.common.wire`), and a
worker's silence is judged by when its frames arrived there. A worker that says ``Hello``
while a run goes is told to wait for the next one (``Refuse(retry_s)``), at most once every
few seconds. Every lost worker is kept as a :class:`LostWorker`, for exit 120's last line.

The session never exits the process and never prints results: it returns a
:class:`SessionResult` and the caller judges and reports.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from surge.common.clock import ClockSample, start_lead_s
from surge.common.endpoint_stats import DEFAULT_MAX_ENDPOINTS
from surge.common.errors import ExitCode, Interrupted, SurgeError, WorkerLost
from surge.common.protocol import (
    Ack,
    Bye,
    Hello,
    LoadFailed,
    Message,
    Ready,
    Refuse,
    Reject,
    Report,
    Run,
    ScenarioSlice,
    Setup,
    SetupDone,
    Start,
    Stop,
    Takeover,
    Taken,
    Teardown,
    TeardownDone,
    Welcome,
)
from surge.common.ratelimit import LogLimiter
from surge.common.router import Arrival, Refused, RouterLink
from surge.coordinator.aggregate import Accepted, Aggregate
from surge.coordinator.outcome import LostWorker, SessionResult, StopReason, Watchdog
from surge.coordinator.handover import Handovers
from surge.coordinator.plan import report_delays_s
from surge.coordinator.takeover import COUNTED, iterations_key
from surge.results.endpoints import EndpointTable
from surge.results.timeline import Timeline

TICK_S = 1.0
STALL_WARN_S = 2.0  # a worker whose loop has not run this long is named, with the line that holds it
ON_WORKER_LOSS = ("fail", "continue")  # --on-worker-loss
BUSY_RETRY_S = 5.0  # what a worker that arrives during a run is told
SETUP_SLACK_S = 10.0  # beyond setupTimeout/teardownTimeout: the worker enforces them; this is if it cannot
CLOCK_ROUNDS = 5  # Ping/Pong round trips per worker before Start (the shortest one counts)
CLOCK_GAP_S = 0.02  # between two rounds
CLOCK_WAIT_S = 1.0  # at most, for the answers: a worker that never answers starts on receipt
MAX_REASONS = 100  # rejected reports named per worker (the count is in the aggregate's skipped)
# Broken down per scenario for the live view and the report, when a run has several.
SCENARIO_SERIES = ("http_reqs", "http_req_duration", "http_req_failed", "iterations")
MAX_CAPACITY = 1024  # processes behind one member (surge worker --processes N), as surge run's -w

@dataclass
class _Peer:
    identity: bytes
    name: str
    index: int
    address: str
    ready: bool = False
    capacity: int = 1  # Hello.capacity: worker processes behind this member


def _log(text: str) -> None:
    print(f"surge: {text}", file=sys.stderr, flush=True)


class Session:
    def __init__(
        self,
        chan: RouterLink,
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
        self._limited = LogLimiter(_log)
        self._busy_told: dict[bytes, float] = {}
        # The current (or last) run's interval points, for live views to read while it plays.
        self.timeline: Timeline | None = None
        self.endpoints: EndpointTable | None = None  # and its per-endpoint table

    # ------------------------------------------------------------------ plumbing

    @property
    def bad_messages(self) -> int:
        return self._chan.bad_frames

    def request_stop(self, reason: StopReason) -> None:
        """Ask the run to stop (a signal handler calls this); measured data is still collected."""
        if self._stop_requested is None:
            self._stop_requested = reason

    async def _recv(self, timeout_s: float) -> Arrival | Refused | None:
        got = self._chan.recv_nowait()
        if got is not None:  # a busy fleet: no wait_for (a task and a timer per message)
            await asyncio.sleep(0)  # but still let the loop run its other work (the link's liveness beat)
            return got
        try:
            return await asyncio.wait_for(self._chan.recv(), max(0.0, timeout_s))
        except TimeoutError:
            return None

    def _send(self, peer: _Peer, msg: Message) -> None:
        self._chan.send(peer.identity, msg)

    def _broadcast(self, msg: Message) -> None:
        for peer in self._peers.values():
            self._send(peer, msg)

    def dismiss(self, reason: str) -> None:
        """Tell every welcomed worker to leave (one-run workers that ``surge run`` started)."""
        self._broadcast(Bye(reason))

    def _silent(self, peer: _Peer, now: float) -> bool:
        """Silent by when its frames *arrived* (the link stamps them), not by when we read them."""
        last = self._chan.last_arrival(peer.identity)
        return last is not None and now - last > self._worker_timeout_s

    def _tell_busy(self, arrival: Arrival) -> None:
        if not isinstance(arrival.msg, Hello):
            return
        last = self._busy_told.get(arrival.identity)
        if last is not None and arrival.at - last < BUSY_RETRY_S:
            return
        if len(self._busy_told) > 4096:
            self._busy_told.clear()
        self._busy_told[arrival.identity] = arrival.at
        self._limited(
            "busy", f"worker {arrival.msg.name} ({arrival.peer or 'unknown address'}) arrived during the run; told to wait"
        )
        self._chan.send(arrival.identity, Refuse("a run is already in progress", retry_s=BUSY_RETRY_S))

    def _check_stalls(self) -> None:
        for peer in self._peers.values():
            hb = self._chan.health(peer.identity)
            if hb is not None and hb.stall_s >= STALL_WARN_S:
                at = f" at {hb.where}" if hb.where else ""
                self._limited(
                    f"stall {peer.name}",
                    f"worker {peer.name}: its event loop has not run for {hb.stall_s:.1f}s: scenario code{at} is "
                    "blocking it (a VU must await, e.g. vu.sleep, never block, e.g. time.sleep); its requests, "
                    "reports and Stop are late until it lets go",
                )

    # ------------------------------------------------------------------ phases

    async def gather(self) -> list[str]:
        deadline = self._loop.time() + self._gather_timeout_s
        while len(self._peers) < self._n:
            if self._stop_requested is not None:
                if self._dismiss:  # its own one-run workers leave; long-lived ones wait for the next run
                    self.dismiss("interrupted")
                raise Interrupted(
                    f"{self._stop_requested.message} while waiting for workers "
                    f"({len(self._peers)} of {self._n} connected); no load was sent"
                )
            left = deadline - self._loop.time()
            if left <= 0:
                raise WorkerLost(
                    f"only {len(self._peers)} of {self._n} workers connected to {self._chan.endpoint} "
                    f"within {self._gather_timeout_s:g}s",
                    hint="start them with: surge worker --connect " + self._chan.endpoint,
                )
            now = self._chan.now()
            for gone in [p for p in self._peers.values() if self._silent(p, now)]:
                _log(f"worker {gone.name} went silent before the run started; waiting for another")
                self._forget(gone)
            got = await self._recv(min(left, TICK_S / 4))
            if not isinstance(got, Arrival):
                continue
            if isinstance(got.msg, Hello):
                known = self._peers.get(got.identity)
                if known is None:
                    capacity = got.msg.capacity
                    if not 1 <= capacity <= MAX_CAPACITY:
                        self._refuse_capacity(got)
                        continue
                    known = _Peer(got.identity, got.msg.name, len(self._peers), got.peer, capacity=capacity)
                    self._peers[got.identity] = known
                    self._chan.watch(got.identity)
                    if not self._dismiss:  # workers of its own (surge run) need no introduction
                        procs = f" with {capacity} processes" if capacity > 1 else ""
                        _log(f"worker {known.name} joined from {got.peer or 'an unknown address'}{procs} "
                             f"({len(self._peers)} of {self._n})")
                self._send(known, Welcome(known.index))
        return [p.name for p in sorted(self._peers.values(), key=lambda p: p.index)]

    @property
    def capacities(self) -> list[int]:
        """Each gathered member's worker processes (``Hello.capacity``), in worker index order."""
        return [p.capacity for p in sorted(self._peers.values(), key=lambda p: p.index)]

    def _refuse_capacity(self, got: Arrival) -> None:
        assert isinstance(got.msg, Hello)
        reason = (
            f"capacity {got.msg.capacity} is out of range: a member runs 1 to {MAX_CAPACITY} worker processes "
            "(surge worker --processes N)"
        )
        self._limited(f"capacity {got.identity.hex()}", f"refused worker {got.msg.name} "
                      f"({got.peer or 'unknown address'}): {reason}")
        self._chan.send(got.identity, Refuse(reason))

    def _forget(self, peer: _Peer) -> None:
        del self._peers[peer.identity]
        self._chan.forget(peer.identity)
        for i, p in enumerate(sorted(self._peers.values(), key=lambda p: p.index)):
            p.index = i

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
        setup: bool = False,
        teardown: bool = False,
        setup_timeout_s: float = 60.0,
        teardown_timeout_s: float = 60.0,
        discard_response_bodies: bool = False,
        max_endpoints: int = DEFAULT_MAX_ENDPOINTS,
        http_options: dict[str, Any] | None = None,
        on_worker_loss: str = "fail",
    ) -> SessionResult:
        """Phases 2-4. ``slices[i]`` goes to the worker with index i.

        ``on_worker_loss``: ``fail`` stops the run when a worker is lost (exit 120 after the
        summary); ``continue`` hands its share to the workers still running
        (:mod:`surge.coordinator.takeover`) and the run goes on, judged by its thresholds.

        With ``setup``, worker 0 runs the scenario's ``setup()`` once every worker is Ready, and
        its return value rides on ``Start`` to every VU; with ``teardown``, worker 0 runs
        ``teardown()`` once the load is over (after an abort too), and its samples are merged.

        ``env`` is only the ``-e`` pairs: each worker overlays them on its own machine's
        environment (k6's rule); the coordinator's environment never leaves this process.
        """
        if on_worker_loss not in ON_WORKER_LOSS:
            raise ValueError(f"on_worker_loss must be one of {ON_WORKER_LOSS}, got {on_worker_loss!r}")
        peers = sorted(self._peers.values(), key=lambda p: p.index)
        run_id = uuid.uuid4().hex[:12]
        # What each worker plays (its plan, then what it takes over), for a takeover to cut up.
        ledger = Handovers([slices[p.index] for p in peers])
        tracked: frozenset[str] = frozenset()
        if on_worker_loss == "continue":
            # How many iterations each worker completed, per iteration-counting scenario: what
            # a lost one still owed is what it was planned minus what it reported done.
            tracked = frozenset(iterations_key(sl.name) for sls in slices for sl in sls if sl.executor in COUNTED)
        # Per scenario, when there is more than one, what the live view and the report break
        # down by scenario (each is a sub-metric the workers record beside the others).
        scenarios = sorted({sl.name for sls in slices for sl in sls})
        per_scenario = frozenset(
            f"{metric}{{scenario:{name}}}" for name in scenarios if len(scenarios) > 1 for metric in SCENARIO_SERIES
        )
        internal = (tracked | per_scenario) - set(submetrics)
        submetrics = [*submetrics, *sorted(internal)]
        delays = report_delays_s(len(peers), report_interval_s)
        for peer in peers:
            self._send(
                peer,
                Run(run_id, bundle, entry, env, list(slices[peer.index]), submetrics, report_interval_s, http_transport,
                    lifecycle=peer.index == 0, setup_timeout_s=setup_timeout_s, teardown_timeout_s=teardown_timeout_s,
                    discard_response_bodies=discard_response_bodies, report_delay_s=delays[peer.index],
                    max_endpoints=max_endpoints, http_options=dict(http_options or {})),
            )
        await self._await_ready(run_id, peers)
        data = await self._setup(run_id, peers, setup_timeout_s) if setup else b""

        clocks = await self._sync_clocks(peers)
        timeline = self.timeline = Timeline(report_interval_s, max_duration_s, [p.name for p in peers])
        agg = Aggregate(len(peers), tracked_counters=tracked, timeline=timeline, max_endpoints=max_endpoints)
        self.endpoints = agg.endpoints
        # One start instant for the fleet, on each worker's own clock (surge/common/clock.py).
        lead = start_lead_s(clocks)
        start = self._chan.now() + lead
        for peer, clock in zip(peers, clocks):
            self._send(peer, Start(run_id, data, start + clock.offset_s if clock is not None else 0.0))
        t0 = self._loop.time() + lead
        stopped: StopReason | None = None
        stop_sent = False
        stop_deadline = t0 + max_duration_s + self._stop_timeout_s
        next_tick = t0 + TICK_S
        lost: list[LostWorker] = []
        lost_idx: set[int] = set()
        load_ended: float | None = None
        rejected: dict[str, list[str]] = {}

        def declare_lost(p: _Peer, why: str, *, may_hand_over: bool = True) -> None:
            # Gone: not waited for, and nothing it sends from now on is applied, so that the
            # summary holds exactly what LostWorker says was kept. No more heartbeats to it
            # either: if it is alive, its own guard stops its load.
            i = p.index
            at_s = self._loop.time() - t0
            agg.finished[i] = True
            lost_idx.add(i)
            timeline.retire(i)
            self._send(p, Stop(run_id, "this worker was declared lost"))  # if it is alive, it hears this first
            self._chan.forget(p.identity)
            left = ledger.lost(i)
            handed = False
            if may_hand_over and on_worker_loss == "continue" and stopped is None:
                done = {sl.name: int(agg.counter(i, iterations_key(sl.name))) for sl in left if sl.executor in COUNTED}
                handed = hand_over(p.name, left, done, at_s)
            if handed:
                agg.handed_over(i)
            lost.append(LostWorker(p.name, at_s, why, agg.reports[i], agg.reported_s[i], agg.requests[i], handed))

        def hand_over(name: str, left: list[ScenarioSlice], done: dict[str, int], at_s: float,
                      exclude: int | None = None) -> bool:
            """``name``'s share to the workers still playing, one weight per process; False if there are none."""
            survivors = [q for q in peers
                         if q.index not in lost_idx and not agg.finished[q.index] and q.index != exclude]
            if not survivors:
                return False
            sends = ledger.hand_over(name, left, done, at_s, [(q.index, q.capacity) for q in survivors])
            for q in survivors:
                if q.index in sends:
                    seq, new = sends[q.index]
                    self._send(q, Takeover(run_id, new, seq))
            _log(f"worker {name}'s share from {at_s:.1f}s into the run goes to {', '.join(q.name for q in survivors)}")
            return True

        def handed_back(sender: _Peer, msg: Taken) -> StopReason | None:
            """What a survivor could not play goes to another; a reason to stop if nobody is left."""
            back = ledger.taken(sender.index, msg.seq, msg.refused)
            if back is None:
                return None
            if hand_over(back.lost, back.slices, {}, self._loop.time() - t0, exclude=sender.index):
                return None
            for j, w in enumerate(lost):
                if w.name == back.lost:
                    lost[j] = replace(w, handed_over=False)
            return StopReason(ExitCode.WORKER_LOST, f"no worker was left to take over worker {back.lost}'s share")

        try:
            # Also until every Takeover is answered: a worker that finished may hand one back.
            while not agg.all_finished or (ledger.pending and stopped is None):
                now = self._loop.time()
                if stopped is None and self._stop_requested is not None:
                    stopped = self._stop_requested
                if stopped is not None and not stop_sent:
                    stop_sent = True
                    _log(f"stopping: {stopped.message}")
                    self._broadcast(Stop(run_id, stopped.message))
                    stop_deadline = min(stop_deadline, now + self._stop_timeout_s)
                if now >= stop_deadline:
                    missing = [p for p in peers if not agg.finished[p.index]]
                    for p in missing:
                        hb = self._chan.health(p.identity)
                        stuck = f"; its event loop was stuck at {hb.where}" if hb and hb.stall_s and hb.where else ""
                        declare_lost(p, f"no final report{stuck}", may_hand_over=False)
                    unanswered = sorted({peers[x.worker].name for x in ledger.pending.values()})
                    reason = StopReason(ExitCode.WORKER_LOST, f"no final report from {', '.join(p.name for p in missing)}"
                                        if missing else f"no answer to a takeover from {', '.join(unanswered)}")
                    stopped = stopped or reason
                    _log(reason.message)
                    break
                if now >= next_tick:
                    next_tick = now + TICK_S
                    self._check_stalls()
                    arrived = self._chan.now()
                    silent = [p for p in peers if not agg.finished[p.index] and self._silent(p, arrived)]
                    if silent and (stopped is None or stopped.exit_code is ExitCode.WORKER_LOST):
                        for p in silent:
                            declare_lost(p, f"silent for {self._worker_timeout_s:g}s")
                        if stopped is None and all(w.handed_over for w in lost):
                            continue
                        if stopped is None:
                            names = ", ".join(p.name for p in silent)
                            stopped = StopReason(
                                ExitCode.WORKER_LOST, f"worker(s) {names} silent for {self._worker_timeout_s:g}s"
                            )
                        continue
                    if watchdog is not None and stopped is None:
                        stopped = watchdog(now - t0, agg.series)
                        if stopped is not None:
                            continue
                got = await self._recv(min(next_tick, stop_deadline) - self._loop.time())
                if got is None:
                    continue
                sender = self._peers.get(got.identity)
                if sender is None:
                    if isinstance(got, Arrival):
                        self._tell_busy(got)
                    continue
                if sender.index in lost_idx:
                    continue  # declared lost: too late to count (see declare_lost)
                if isinstance(got, Refused):
                    if got.report is not None and got.report[0] == run_id:
                        _, seq, final = got.report
                        taken = agg.skip(sender.index, seq, final)
                        if taken in (Accepted.APPLIED, Accepted.BUFFERED):
                            reasons = rejected.setdefault(sender.name, [])
                            if len(reasons) < MAX_REASONS:
                                reasons.append(f"report {seq}: {got.reason}")
                            self._send(sender, Reject(run_id, seq, got.reason))
                        elif taken is Accepted.DUPLICATE:
                            self._send(sender, Ack(run_id, seq))  # a damaged resend of one already taken
                    continue
                msg = got.msg
                if isinstance(msg, Report) and msg.run_id == run_id:
                    # A duplicate is acknowledged again too: its first ack was lost. One too far
                    # ahead is not: its worker sends it again once the gap before it has filled.
                    if agg.accept(sender.index, msg) is not Accepted.TOO_FAR:
                        self._send(sender, Ack(run_id, msg.seq))
                        self._chan.applied(sender.identity, run_id, agg.next_seq(sender.index))
                    if msg.aborted and stopped is None:
                        stopped = StopReason(ExitCode.SCRIPT_ABORTED, f"{sender.name}: {msg.aborted}")
                elif isinstance(msg, Taken) and msg.run_id == run_id:
                    if stopped is None:
                        stopped = handed_back(sender, msg)
                elif isinstance(msg, Hello):
                    if agg.finished[sender.index]:
                        self._send(sender, Welcome(sender.index))  # done with this run; the next may come
                    else:
                        # It says hello only after it dropped the run (its own silence guard
                        # fired first): what it had not reported is gone, and waiting for its
                        # final report would only delay the end.
                        declare_lost(sender, "it dropped the run (it heard nothing from this coordinator)")
                        if stopped is None and not lost[-1].handed_over:
                            stopped = StopReason(ExitCode.WORKER_LOST, f"worker {sender.name} dropped the run")
            load_ended = self._loop.time()  # the rates are per second of load, teardown aside
            if teardown and 0 in lost_idx:
                _log(f"teardown() did not run: worker {peers[0].name}, which ran setup(), was lost")
            if teardown and 0 not in lost_idx:
                failed = await self._teardown(run_id, peers[0], data, teardown_timeout_s, agg)
                stopped = stopped or failed
        finally:
            duration = (load_ended if load_ended is not None else self._loop.time()) - t0
            timeline.finish()
            if self._dismiss:
                self.dismiss("run finished")
        return SessionResult(agg, duration, stopped, [p.name for p in peers], lost, rejected, clocks, internal,
                             [p.capacity for p in peers], timeline)

    async def _sync_clocks(self, peers: list[_Peer]) -> list[ClockSample | None]:
        """``CLOCK_ROUNDS`` Ping/Pong round trips with every worker (their links stamp them)."""
        deadline = self._loop.time() + CLOCK_WAIT_S
        for _ in range(CLOCK_ROUNDS):
            for peer in peers:
                self._chan.probe(peer.identity)
            await asyncio.sleep(CLOCK_GAP_S)
        while self._loop.time() < deadline:
            got = [self._chan.clock(p.identity) for p in peers]
            if all(c is not None and c.rounds >= CLOCK_ROUNDS for c in got):
                break
            await asyncio.sleep(CLOCK_GAP_S)
        clocks = [self._chan.clock(p.identity) for p in peers]
        for peer, clock in zip(peers, clocks):
            if clock is None:
                _log(f"worker {peer.name} answered no clock probe; it starts when Start reaches it")
        return clocks

    async def _setup(self, run_id: str, peers: list[_Peer], timeout_s: float) -> bytes:
        """setup() on worker 0: its packed return value, or the run ends here with no load sent."""
        runner = peers[0]
        self._send(runner, Setup(run_id))
        deadline = self._loop.time() + timeout_s + SETUP_SLACK_S
        while True:
            failure: SurgeError | None = None
            if self._stop_requested is not None:
                failure = Interrupted(f"{self._stop_requested.message} during setup(); no load was sent")
            elif self._loop.time() >= deadline:
                failure = SurgeError(f"setup() on worker {runner.name} did not finish within {timeout_s:g}s")
                failure.exit_code = ExitCode.SETUP_TIMEOUT
            elif any(self._silent(p, self._chan.now()) for p in peers):
                names = ", ".join(p.name for p in peers if self._silent(p, self._chan.now()))
                failure = WorkerLost(f"worker(s) {names} went silent during setup()")
            if failure is None:
                got = await self._recv(min(deadline - self._loop.time(), TICK_S / 4))
                if not isinstance(got, Arrival):
                    continue
                if got.identity not in self._peers:
                    self._tell_busy(got)
                    continue
                msg = got.msg
                if not (isinstance(msg, SetupDone) and msg.run_id == run_id and got.identity == runner.identity):
                    continue
                if not msg.error:
                    return msg.data
                failure = SurgeError(f"setup() failed on worker {runner.name}: {msg.error}",
                                     hint="nothing was sent but what setup() itself sent")
                try:
                    failure.exit_code = ExitCode(msg.exit_code)
                except ValueError:
                    failure.exit_code = ExitCode.SCRIPT_ERROR
            self._broadcast(Stop(run_id, "setup() did not succeed"))
            if self._dismiss:
                self.dismiss("setup() did not succeed")
            raise failure

    async def _teardown(
        self, run_id: str, runner: _Peer, data: bytes, timeout_s: float, agg: Aggregate
    ) -> StopReason | None:
        """teardown() on worker 0, its report merged; a reason if it failed, else None."""
        self._send(runner, Teardown(run_id, data))
        deadline = self._loop.time() + timeout_s + SETUP_SLACK_S
        while self._loop.time() < deadline:
            if self._silent(runner, self._chan.now()):
                return StopReason(ExitCode.WORKER_LOST, f"worker {runner.name} went silent during teardown()")
            got = await self._recv(min(deadline - self._loop.time(), TICK_S / 4))
            if not isinstance(got, Arrival) or got.identity != runner.identity:
                if isinstance(got, Arrival) and got.identity not in self._peers:
                    self._tell_busy(got)
                continue
            msg = got.msg
            if isinstance(msg, Report) and msg.run_id == run_id:
                if agg.accept(runner.index, msg) is not Accepted.TOO_FAR:
                    self._send(runner, Ack(run_id, msg.seq))
            elif isinstance(msg, TeardownDone) and msg.run_id == run_id:
                if not msg.error:
                    return None
                _log(f"teardown() failed on worker {runner.name}: {msg.error}")
                try:
                    code = ExitCode(msg.exit_code)
                except ValueError:
                    code = ExitCode.SCRIPT_ERROR
                return StopReason(code, f"teardown() failed: {msg.error.splitlines()[0]}")
        _log(f"teardown() on worker {runner.name} did not finish within {timeout_s:g}s")
        return StopReason(ExitCode.TEARDOWN_TIMEOUT, f"teardown() did not finish within {timeout_s:g}s")

    async def _await_ready(self, run_id: str, peers: list[_Peer]) -> None:
        deadline = self._loop.time() + self._load_timeout_s
        next_scan = 0.0  # the silence and stall scans run once a quarter tick, not once a message
        unready = {p.identity for p in peers if not p.ready}
        while unready:
            if self._stop_requested is not None:
                self._broadcast(Stop(run_id, self._stop_requested.message))
                if self._dismiss:
                    self.dismiss("interrupted")
                raise Interrupted(f"{self._stop_requested.message} while the workers loaded the scenario; no load was sent")
            left = deadline - self._loop.time()
            if left <= 0:
                slow = ", ".join(p.name for p in peers if not p.ready)
                self._broadcast(Stop(run_id, "load timed out"))
                raise WorkerLost(f"worker(s) {slow} did not load the scenario within {self._load_timeout_s:g}s")
            now = self._chan.now()
            if now >= next_scan:  # each is a pass over the fleet: per message, 1,000 Readys made 10^6 of them
                next_scan = now + TICK_S / 4
                silent = [p for p in peers if not p.ready and self._silent(p, now)]
                if silent:
                    self._broadcast(Stop(run_id, "a worker was lost while loading"))
                    names = ", ".join(p.name for p in silent)
                    raise WorkerLost(f"worker(s) {names} went silent while loading the scenario (for {self._worker_timeout_s:g}s)")
                self._check_stalls()
            got = await self._recv(min(left, TICK_S / 4))
            if not isinstance(got, Arrival):
                continue
            peer = self._peers.get(got.identity)
            if peer is None:
                self._tell_busy(got)
                continue
            msg = got.msg
            if isinstance(msg, Ready) and msg.run_id == run_id:
                peer.ready = True
                unready.discard(peer.identity)
            elif isinstance(msg, LoadFailed) and msg.run_id == run_id:
                self._broadcast(Stop(run_id, "another worker failed to load the scenario"))
                if self._dismiss:
                    self.dismiss("run failed to load")
                err = SurgeError(f"worker {peer.name} could not load the scenario: {msg.message}")
                try:
                    err.exit_code = ExitCode(msg.exit_code)
                except ValueError:
                    err.exit_code = ExitCode.SCRIPT_ERROR
                raise err

"""A load machine of N worker processes as one member of the fleet (``surge worker --processes N``).

The ``surge worker`` process becomes a **relay**: it binds a local ROUTER on an ``ipc://``
endpoint in a private temporary directory (mode 0700: only this user reaches it, so no keys
are needed), starts N ordinary agents (``surge worker --connect ipc://...``) and, once all N
said ``Hello``, says ``Hello(capacity=N)`` to the coordinator through its own
:class:`~surge.common.dealer.DealerLink` (keys and timeouts from its command line). To the
coordinator it is one worker that weighs N in the plan (:func:`surge.coordinator.plan.plan_members`);
to its processes it is a coordinator::

    coordinator -> relay                 relay -> processes
    Run(slices, lifecycle)               Run to each, with only the slices of its ``member``
                                         (member 0 for the process), lifecycle only to process 0
    Setup / Teardown                     to process 0; its SetupDone / TeardownDone go up
    Start(at)                            to each, ``at`` unchanged (one machine, one monotonic clock)
    Takeover(slices)                     each slice to the process of its ``member``
    Stop / Bye                           to each
    Grant / Ack / Reject of its reports  the relay's own outbox (:mod:`surge.worker.outbox`)

    processes -> relay                   relay -> coordinator
    Ready from all (LoadFailed from one) Ready (that LoadFailed)
    Offer, then Report                   granted by the relay's own router (:mod:`surge.common.grants`),
                                         acknowledged at once, merged (:mod:`surge.worker.localmerge`);
                                         one Report per ``report_interval_s``, final once every
                                         process's final report is in, ``aborted`` sent at once

Safety. The processes watch the relay as agents watch a coordinator (their link's guard stops
their load when it goes silent) and they are started with ``--parent-pid``, so that they exit
when the relay is gone, even killed with SIGKILL. The relay watches the coordinator: on its
silence it stops every process now, then behaves like an agent (exits with ``--once``, else
starts afresh and waits for the next coordinator). A process that dies or goes silent mid-run
breaks the machine: the relay stops the other processes and drops its link to the coordinator,
so that the coordinator declares the whole member lost (exit 120, naming the machine) when its
silence passes the worker timeout. It does not report the loss in words, because only a part
of the machine's share would have been played and the protocol has no word for "part of a
member was lost"; a silent member is what the coordinator already handles in order (what was
reported is kept and said so). With ``--once`` the relay then exits 120; without, it starts a
fresh set of processes and says ``Hello`` again for the next run. On SIGTERM or SIGINT it stops
its processes and exits 105.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from surge.common.endpoint_stats import bounded_max_endpoints
from surge.common.errors import ExitCode
from surge.common.inorder import Accepted
from surge.common.protocol import (
    Ack,
    Grant,
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
from surge.common.spawn import surge_command, surge_env
from surge.common.dealer import DealerLink
from surge.common.router import Arrival, Refused, RouterLink
from surge.worker.localmerge import MachineMerge
from surge.worker.outbox import RESEND_AFTER_S, Outbox

if TYPE_CHECKING:
    from surge.common.curve import WorkerKeys

MAX_PROCESSES = 1024  # the coordinator refuses a capacity beyond this
START_TIMEOUT_S = 60.0  # for every process to say Hello
STOP_GRACE_S = 5.0  # after Bye, before terminate (and as long again before kill)
FINAL_ACK_WAIT_S = 60.0
_TICK_S = 0.1
PARENT_POLL_S = 0.5
EXIT_GRACE_S = 0.5  # after the last process exited, for its last frames to arrive


def _log(text: str) -> None:
    print(f"surge worker[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


def default_processes() -> int:
    """``--processes auto``: the CPUs this process may run on (its affinity), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux: no affinity to ask about
        return os.cpu_count() or 1


def watch_parent(parent_pid: int, on_gone: Callable[[], None]) -> threading.Thread:
    """Call ``on_gone`` (from a daemon thread) once this process's parent is no longer ``parent_pid``.

    A relay's processes are started with ``--parent-pid``: when the relay dies, even by SIGKILL
    with no cleanup, they are reparented and see it within :data:`PARENT_POLL_S`.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        on_gone()

    thread = threading.Thread(target=watch, name="surge-parent-watch", daemon=True)
    thread.start()
    return thread


def slices_of(slices: Sequence[ScenarioSlice], process: int) -> list[ScenarioSlice]:
    """The slices ``process`` of this machine plays, as its own (``member`` 0: it is a single worker)."""
    return [replace(s, member=0) for s in slices if s.member == process]


def route_takeover(slices: Sequence[ScenarioSlice], playing: Sequence[int]) -> list[ScenarioSlice]:
    """A Takeover's slices with their ``member`` moved, where need be, to a process still playing.

    The coordinator knows the machine, not its processes: one of them may have finished its own
    share already (a process without a VU of a shared-iterations scenario ends at once) and
    could not play what it is handed. Its slices go to the processes still playing, in turn.
    """
    alive = set(playing)
    out = []
    turn = 0
    for sl in slices:
        if sl.member not in alive:
            sl = replace(sl, member=playing[turn % len(playing)])
            turn += 1
        out.append(sl)
    return out


def process_runs(msg: Run, processes: int) -> list[Run]:
    """The Run each of ``processes`` gets: its own slices; setup() and teardown() only on process 0."""
    return [replace(msg, slices=slices_of(msg.slices, i), lifecycle=msg.lifecycle and i == 0) for i in range(processes)]


@dataclass
class _Process:
    index: int
    proc: subprocess.Popen[bytes]
    identity: bytes | None = None  # once it said Hello
    ready: bool = False


class Machine:
    """The relay: N local agents behind one member (see the module docstring)."""

    def __init__(
        self,
        connect: str,
        processes: int,
        *,
        name: str | None = None,
        once: bool = False,
        coordinator_timeout_s: float = 5.0,
        keys: WorkerKeys | None = None,
        on_wedged: Callable[[str], None] | None = None,
        resend_after_s: float = RESEND_AFTER_S,
    ) -> None:
        if not 2 <= processes <= MAX_PROCESSES:
            raise ValueError(f"a machine runs 2 to {MAX_PROCESSES} processes, got {processes}")
        self._connect = connect
        self._n = processes
        self._name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._once = once
        self._timeout_s = coordinator_timeout_s
        self._keys = keys
        self._on_wedged = on_wedged
        self._resend_after_s = resend_after_s
        self._loop = asyncio.get_running_loop()
        self._limited = LogLimiter(_log, window_s=30.0)
        self._exit: int | None = None
        self._tmp = ""
        self._local: RouterLink | None = None
        self._link: DealerLink | None = None
        self._procs: list[_Process] = []
        self._session_over = False
        self._welcomed = False
        self._outbox = Outbox(self._send_frame_up, self._loop.time, resend_after_s=resend_after_s)
        self._clear_run()

    def _clear_run(self) -> None:
        self._run: Run | None = None
        self._merge: MachineMerge | None = None
        self._ready_sent = False
        self._started = False
        self._final_sent = False
        self._aborted_sent = False
        self._next_report_at = 0.0
        self._teardown_done: TeardownDone | None = None
        self._teardown_deadline = 0.0
        self._all_exited_at: float | None = None
        self._handovers: dict[int, tuple[set[int], list[ScenarioSlice]]] = {}  # Takeover seq -> (processes to answer, handed back)
        self._outbox.reset()
        for p in self._procs:
            p.ready = False

    # ------------------------------------------------------------------ main loop

    async def serve(self) -> int:
        """Serve until told to leave; the return value is the process exit status."""
        self._tmp = tempfile.mkdtemp(prefix="surge-machine-")  # 0700: the ipc socket is ours alone
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._signalled, sig.name)
        try:
            self._local = RouterLink(f"ipc://{self._tmp}/relay", log=_log)
            while self._exit is None:
                await self._session()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._loop.remove_signal_handler(sig)
            await self._stop_processes("the machine is leaving")
            if self._link is not None:
                self._link.close()
            if self._local is not None:
                self._local.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
        return self._exit

    def _signalled(self, signame: str) -> None:
        _log(f"{signame}: stopping this machine's {self._n} processes")
        self._exit = int(ExitCode.EXTERNAL_ABORT)

    async def _session(self) -> None:
        """Processes up, then one coordinator's runs, until it is lost, a process is, or we leave."""
        self._session_over = False
        self._welcomed = False
        self._clear_run()
        if not await self._start_processes():
            if self._exit is None:
                self._exit = int(ExitCode.WORKER_LOST)
            return
        self._link = DealerLink(
            self._connect,
            hello=Hello(self._name, socket.gethostname(), os.getpid(), capacity=self._n),
            silence_s=self._timeout_s,
            on_silence=self._lost_coordinator,
            on_wedged=self._on_wedged,
            keys=self._keys,
            log=_log,
        )
        _log(f"{self._n} processes ready; connecting to the coordinator at {self._connect}")
        up = self._loop.create_task(self._pump_up(self._link))
        local = self._loop.create_task(self._pump_local())
        try:
            while self._exit is None and not self._session_over:
                await asyncio.sleep(_TICK_S)
                for task in (up, local):
                    if task.done():
                        task.result()  # a bug in a handler must not pass for a quiet machine
                self._tick()
        finally:
            for task in (up, local):
                task.cancel()
            # Going silent upstream is how the coordinator learns that this member is gone.
            self._link.close()
            self._link = None
            await self._stop_processes("the run is over for this machine")

    async def _pump_up(self, link: DealerLink) -> None:
        while True:
            self._from_coordinator(await link.recv())

    async def _pump_local(self) -> None:
        assert self._local is not None
        while True:
            self._from_process(await self._local.recv())

    def _send_up(self, msg: Message) -> None:
        if self._link is not None:
            self._link.send(msg)

    def _send_frame_up(self, frame: bytes) -> None:
        if self._link is not None:
            self._link.send_frame(frame)

    def _to(self, p: _Process, msg: Message) -> None:
        if self._local is not None and p.identity is not None:
            self._local.send(p.identity, msg)

    def _to_all(self, msg: Message) -> None:
        for p in self._procs:
            self._to(p, msg)

    # ------------------------------------------------------------------ processes

    def _command(self, index: int, endpoint: str) -> list[str]:
        return surge_command(
            "worker",
            "--connect", endpoint,
            "--name", f"{self._name}.{index}",
            "--coordinator-timeout", str(self._timeout_s),
            "--parent-pid", str(os.getpid()),
            *(["--once"] if self._once else []),
        )

    async def _start_processes(self) -> bool:
        assert self._local is not None
        env = surge_env()  # the processes run this very surge, wherever it was imported from
        # Their own session: a Ctrl-C in the terminal reaches the relay alone, which stops them in order.
        self._procs = [
            _Process(i, subprocess.Popen(self._command(i, self._local.endpoint), env=env, start_new_session=True))
            for i in range(self._n)
        ]
        by_pid = {p.proc.pid: p for p in self._procs}
        deadline = self._loop.time() + START_TIMEOUT_S
        while any(p.identity is None for p in self._procs):
            if self._exit is not None:
                return False
            for p in self._procs:
                if p.proc.poll() is not None:
                    _log(f"process {p.index} (pid {p.proc.pid}) exited with status {p.proc.returncode} before it was ready")
                    return False
            if self._loop.time() >= deadline:
                _log(f"not every process said hello within {START_TIMEOUT_S:g}s")
                return False
            try:
                got = await asyncio.wait_for(self._local.recv(), 0.25)
            except TimeoutError:
                continue
            if isinstance(got, Arrival) and isinstance(got.msg, Hello):
                joined = by_pid.get(got.msg.pid)
                if joined is not None and joined.identity in (None, got.identity):
                    joined.identity = got.identity
                    self._local.watch(got.identity)
                    self._local.send(got.identity, Welcome(joined.index))
        return True

    async def _stop_processes(self, reason: str) -> None:
        """Stop and Bye every process, then wait for them to exit (terminate, then kill, if they do not)."""
        procs, self._procs = self._procs, []
        if not procs:
            return
        for p in procs:
            if self._run is not None:
                self._to(p, Stop(self._run.run_id, reason))
            self._to(p, Bye(reason))
            if self._local is not None and p.identity is not None:
                self._local.forget(p.identity)
        for sig_step in (None, signal.SIGTERM, signal.SIGKILL):
            if sig_step is not None:
                for p in procs:
                    if p.proc.poll() is None:
                        p.proc.send_signal(sig_step)
            deadline = self._loop.time() + STOP_GRACE_S
            while any(p.proc.poll() is None for p in procs) and self._loop.time() < deadline:
                await asyncio.sleep(0.05)
            if all(p.proc.poll() is not None for p in procs):
                return

    def _process_lost(self, p: _Process, why: str) -> None:
        mid_run = self._run is not None and not self._outbox.drained
        others = self._n - 1
        if mid_run:
            _log(f"process {p.index} {why} during the run: stopping the other {others}; the coordinator will "
                 "count this machine as lost")
        else:
            _log(f"process {p.index} {why}: stopping the other {others}")
        if self._once:
            self._exit = int(ExitCode.WORKER_LOST)
        self._session_over = True

    def _check_processes(self) -> None:
        assert self._local is not None
        now = self._local.now()
        for p in self._procs:
            code = p.proc.poll()
            if code is not None:
                done = self._once and code == 0 and self._merge is not None and self._merge.finished[p.index]
                if not done:
                    self._process_lost(p, f"(pid {p.proc.pid}) exited with status {code}")
                    return
            elif p.identity is not None:
                last = self._local.last_arrival(p.identity)
                if last is not None and now - last > self._timeout_s:
                    self._process_lost(p, f"(pid {p.proc.pid}) was silent for {self._timeout_s:g}s")
                    return
        if self._once and self._procs and all(p.proc.poll() is not None for p in self._procs):
            # A one-run machine leaves once every process is done and its results are safe; the
            # last frames of a process that just exited may still be on their way: a moment for them.
            if self._all_exited_at is None:
                self._all_exited_at = self._loop.time()
            elif (self._outbox.drained and self._teardown_done is None
                  and self._loop.time() - self._all_exited_at >= EXIT_GRACE_S):
                self._exit = 0

    # ------------------------------------------------------------------ the coordinator's messages

    def _ours(self, run_id: str) -> bool:
        return self._run is not None and run_id == self._run.run_id

    def _from_coordinator(self, msg: Message) -> None:
        if isinstance(msg, Welcome):
            if not self._welcomed and self._link is not None:
                self._welcomed = True
                self._link.welcomed()
        elif isinstance(msg, Refuse):
            if msg.retry_s > 0:
                self._limited("busy", f"the coordinator at {self._connect} is busy ({msg.reason}); waiting for its next run")
            else:
                _log(f"the coordinator refused this machine: {msg.reason}")
                self._exit = 2
        elif isinstance(msg, Run):
            self._load(msg)
        elif isinstance(msg, Setup):
            if self._ours(msg.run_id):
                self._to(self._procs[0], msg)
        elif isinstance(msg, Start):
            if self._ours(msg.run_id) and self._ready_sent and not self._started:
                self._started = True
                assert self._run is not None
                self._next_report_at = self._loop.time() + self._run.report_interval_s
                self._to_all(msg)  # ``at`` is on this machine's monotonic clock: the same for every process
        elif isinstance(msg, Takeover):
            self._take_over(msg)
        elif isinstance(msg, Teardown):
            if self._ours(msg.run_id):
                self._to(self._procs[0], msg)
        elif isinstance(msg, Stop):
            if self._ours(msg.run_id):
                self._to_all(msg)
                if not self._started:
                    self._clear_run()  # stopped before it started: nothing was measured
        elif isinstance(msg, Grant):
            if self._ours(msg.run_id):
                self._outbox.grant(msg.seq)
        elif isinstance(msg, Ack):
            if self._ours(msg.run_id):
                self._outbox.settle(msg.seq)
        elif isinstance(msg, Reject):
            if self._ours(msg.run_id) and msg.seq in self._outbox:
                _log(f"the coordinator refused report {msg.seq} ({msg.reason}); its data is lost, the run goes on")
                self._outbox.settle(msg.seq)
        elif isinstance(msg, Bye):
            self._exit = 0

    def _take_over(self, msg: Takeover) -> None:
        """Each slice to a process still playing (:func:`route_takeover`); what they hand back goes up.

        Answered upstream once every process it went to has answered (or at once, all of it
        handed back, when no process is playing), so nothing handed to this machine is dropped.
        """
        merge = self._merge
        playing = [p.index for p in self._procs if merge is not None and not merge.finished[p.index]]
        if not self._ours(msg.run_id) or not self._started or not playing:
            self._send_up(Taken(msg.run_id, msg.seq, list(msg.slices)))
            return
        routed = route_takeover(msg.slices, playing)
        waiting: set[int] = set()
        for p in self._procs:
            mine = slices_of(routed, p.index)
            if mine:
                waiting.add(p.index)
                self._to(p, Takeover(msg.run_id, mine, msg.seq))
        self._handovers[msg.seq] = (waiting, [])

    def _load(self, msg: Run) -> None:
        if self._run is not None and not self._outbox.drained:
            self._send_up(LoadFailed(msg.run_id, int(ExitCode.SCRIPT_ERROR), "worker is busy with another run"))
            return
        stray = sorted({s.member for s in msg.slices if not 0 <= s.member < self._n})
        if stray:
            self._send_up(LoadFailed(msg.run_id, int(ExitCode.INVALID_CONFIG),
                                     f"slices for process(es) {stray} on a machine of {self._n} processes"))
            return
        self._clear_run()
        self._run = msg
        self._merge = MachineMerge(self._n, bounded_max_endpoints(msg.max_endpoints))
        for p, run in zip(self._procs, process_runs(msg, self._n), strict=True):
            self._to(p, run)

    def _lost_coordinator(self) -> None:
        measuring = self._started and not self._final_sent
        _log(f"no word from the coordinator for {self._timeout_s:g}s"
             + (": stopping the load on every process now" if measuring else ""))
        # The session's end stops (Stop, then Bye) every process at once, and a next session
        # starts fresh ones before it says Hello again.
        self._session_over = True
        if self._once:
            self._exit = 1

    # ------------------------------------------------------------------ the processes' messages

    def _from_process(self, got: Arrival | Refused) -> None:
        p = next((q for q in self._procs if q.identity == got.identity), None)
        if p is None:
            return
        merge, run = self._merge, self._run
        if isinstance(got, Refused):
            if got.report is not None and run is not None and merge is not None and got.report[0] == run.run_id:
                _, seq, final = got.report
                if merge.skip(p.index, seq, final) is not Accepted.TOO_FAR:
                    self._to(p, Reject(run.run_id, seq, got.reason))
            return
        msg = got.msg
        if isinstance(msg, Hello):
            if run is not None and p.ready:
                # Hello after Ready: it dropped its run (its guard heard nothing from this relay).
                self._process_lost(p, "dropped its run")
            else:  # a beacon sent before our Welcome reached it
                self._to(p, Welcome(p.index))
            return
        if run is None or merge is None or getattr(msg, "run_id", None) != run.run_id:
            return
        if isinstance(msg, Report):
            if merge.accept(p.index, msg) is not Accepted.TOO_FAR:
                self._to(p, Ack(run.run_id, msg.seq))  # its data lives in the merge, then in our outbox
            if (merge.aborted and not self._aborted_sent) or (merge.all_final and not self._final_sent):
                self._report()  # an abort goes up at once, and so does the end of the machine's share
            elif self._started and not self._final_sent and merge.interval_complete(run.report_interval_s):
                # every process's report of this interval is in: up it goes, whole; the tick's
                # deadline is pushed back, as a fallback for a process that stopped reporting
                self._report()
                self._next_report_at = self._loop.time() + run.report_interval_s * 1.5
        elif isinstance(msg, Ready):
            p.ready = True
            if all(q.ready for q in self._procs) and not self._ready_sent:
                self._ready_sent = True
                self._send_up(Ready(run.run_id))
        elif isinstance(msg, LoadFailed):
            self._send_up(msg)
            self._to_all(Stop(run.run_id, "another process failed to load the scenario"))
            self._clear_run()
        elif isinstance(msg, Taken):
            handover = self._handovers.get(msg.seq)
            if handover is not None and p.index in handover[0]:
                waiting, refused = handover
                waiting.discard(p.index)
                refused.extend(msg.refused)
                if not waiting:
                    del self._handovers[msg.seq]
                    self._send_up(Taken(run.run_id, msg.seq, refused))
        elif isinstance(msg, SetupDone) and p.index == 0:
            self._send_up(msg)
        elif isinstance(msg, TeardownDone) and p.index == 0:
            # teardown's samples first, acknowledged, then its end (as an agent does)
            self._report()
            self._teardown_done = msg
            self._teardown_deadline = self._loop.time() + FINAL_ACK_WAIT_S

    # ------------------------------------------------------------------ reports

    def _report(self) -> None:
        if self._merge is None or self._run is None:
            return
        report = self._merge.take(self._run.run_id)
        self._aborted_sent = self._aborted_sent or bool(report.aborted)
        self._final_sent = self._final_sent or report.final
        self._outbox.put(report)

    def _tick(self) -> None:
        now = self._loop.time()
        self._outbox.resend_due()
        run, merge = self._run, self._merge
        if run is not None and merge is not None and self._started and now >= self._next_report_at:
            self._next_report_at = now + run.report_interval_s
            if not self._final_sent or merge.has_data:
                self._report()
        if self._teardown_done is not None and (self._outbox.drained or now >= self._teardown_deadline):
            if not self._outbox.drained:
                _log("teardown's report was never acknowledged")
            self._send_up(self._teardown_done)
            self._teardown_done = None
        self._check_processes()


async def run_machine(
    connect: str,
    processes: int,
    *,
    name: str | None = None,
    once: bool = False,
    coordinator_timeout_s: float = 5.0,
    keys: WorkerKeys | None = None,
    on_wedged: Callable[[str], None] | None = None,
) -> int:
    machine = Machine(
        connect, processes, name=name, once=once, coordinator_timeout_s=coordinator_timeout_s, keys=keys,
        on_wedged=on_wedged,
    )
    return await machine.serve()

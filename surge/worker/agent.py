"""The worker agent: connects to a coordinator, runs what it is sent, reports, and stays safe.

One agent per worker process. Its :class:`~surge.common.dealer.DealerLink` says ``Hello`` until
the coordinator answers ``Welcome``, then the agent waits for a ``Run``: it writes the bundle
to a temporary directory, imports the scenario and answers ``Ready`` (or ``LoadFailed`` with
the script error), starts on ``Start``, and streams ``Report`` messages every
``report_interval_s``.

Nothing measured is lost: each flush of the recorder becomes a numbered report that stays in
the *outbox* (:mod:`surge.worker.outbox`) until the coordinator acknowledges it, and is sent
again, with a backoff, until it is; a full outbox merges new flushes into one held delta. A report the coordinator could not validate comes back as ``Reject``: it is dropped alone,
counted and logged, and the run goes on. The run is over for this worker when its final
report is acknowledged (or rejected).

Safety: the link's I/O thread heartbeats in every phase and watches the coordinator's
silence. After ``coordinator_timeout_s`` of silence the agent stops its load at once (surge
must never leave load running against someone's server with nobody watching), then exits
(``once``) or goes back to saying ``Hello``. If scenario code holds the event loop so that the
agent cannot even do that, the thread calls ``on_wedged`` (see :mod:`surge.common.wire`).

A coordinator that is busy with another run answers ``Refuse(retry_s > 0)``: the worker waits
for the next run instead of leaving (under honcho, one process leaving stops them all).
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from surge.common import api
from surge.common.errors import ExitCode, SurgeError
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
from surge.common.scenario import load_module, write_bundle
from surge.common.dealer import DealerLink
from surge.worker import lifecycle
from surge.worker.gcpolicy import freezing_survivors
from surge.worker.outbox import (  # noqa: F401 - resend_delay_s, split_report, merged: also read from here
    MAX_OUTBOX,
    MAX_REPORT_BYTES,
    RESEND_AFTER_S,
    RESEND_MAX_S,
    Outbox,
    merged,
    resend_delay_s,
    split_report,
)
from surge.worker.runner import WorkerRun

if TYPE_CHECKING:
    from surge.common.curve import WorkerKeys

FINAL_ACK_WAIT_S = 60.0
WAITING_NOTICE_S = (2.0, 30.0)  # first "waiting for the coordinator" after, then every


def _log(text: str) -> None:
    print(f"surge worker[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


class Agent:
    def __init__(
        self,
        connect: str,
        *,
        name: str | None = None,
        once: bool = False,
        coordinator_timeout_s: float = 5.0,
        resend_after_s: float = RESEND_AFTER_S,
        keys: WorkerKeys | None = None,
        on_wedged: Callable[[str], None] | None = None,
        max_outbox: int = MAX_OUTBOX,
        max_report_bytes: int = MAX_REPORT_BYTES,
    ) -> None:
        self._name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._hello = Hello(self._name, socket.gethostname(), os.getpid())
        self._connect = connect
        self._once = once
        self._timeout_s = coordinator_timeout_s
        self._resend_after_s = resend_after_s
        self._loop = asyncio.get_running_loop()
        self._link = DealerLink(
            connect,
            hello=self._hello,
            silence_s=coordinator_timeout_s,
            on_silence=self._lost_coordinator,
            on_wedged=on_wedged,
            stall_site=self._stall_site,
            keys=keys,
            log=_log,
        )
        self._limited = LogLimiter(_log, window_s=30.0)
        self._welcomed = False
        self._run_msg: Run | None = None
        self._run: WorkerRun | None = None
        self._module: ModuleType | None = None
        self._lifecycle_task: asyncio.Task[None] | None = None
        self._teardown_over = asyncio.Event()
        self._source = ""
        self._play: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._held: tuple[float, Report] | None = None  # (when it is due, an interval report waiting for its phase)
        self._outbox = Outbox(self._link.send_frame, self._loop.time, resend_after_s=resend_after_s,
                              max_outbox=max_outbox, max_report_bytes=max_report_bytes)
        self._run_done = asyncio.Event()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._bundle_dir = ""
        self._exit: int | None = None
        self.rejected = 0

    # ------------------------------------------------------------------ main loop

    async def serve(self) -> int:
        """Serve until told to leave; the return value is the process exit status."""
        ticker = self._loop.create_task(self._tick())
        try:
            while self._exit is None:
                try:
                    msg = await asyncio.wait_for(self._link.recv(), 1.0)
                except TimeoutError:
                    continue
                await self._handle(msg)
        finally:
            ticker.cancel()
            self._stop_load()
            await self._drain_tasks()
            self._link.close()
            if self._tmp is not None:
                self._tmp.cleanup()
        return self._exit

    async def _tick(self) -> None:
        """Resends with backoff, and word of a coordinator that does not answer."""
        started = self._loop.time()
        next_notice = started + WAITING_NOTICE_S[0]
        while True:
            now = self._loop.time()
            self._outbox.resend_due()
            if self._welcomed:
                next_notice = now + WAITING_NOTICE_S[0]
            elif now >= next_notice:
                next_notice = now + WAITING_NOTICE_S[1]
                _log(f"waiting for the coordinator at {self._connect}")
            await asyncio.sleep(min(0.25, self._resend_after_s / 2))

    def _stall_site(self) -> str:
        """Where the loop's thread is stuck, as the scenario's ``file:line in function`` (called from the link's thread)."""
        frame = sys._current_frames().get(threading.main_thread().ident or 0)
        root = self._bundle_dir
        while root and frame is not None:
            f = frame.f_code.co_filename
            if f.startswith(root):
                rel = os.path.relpath(f, root)
                return f"{rel}:{frame.f_lineno} in {frame.f_code.co_name}"
            frame = frame.f_back
        return ""  # not in the scenario's code: nothing to blame it for

    def _lost_coordinator(self) -> None:
        if self._play is not None and not self._play.done():
            _log(f"no word from the coordinator for {self._timeout_s:g}s: stopping the load now")
        else:
            _log(f"no word from the coordinator for {self._timeout_s:g}s")
        if self._play is not None:
            self._play.cancel()  # play()'s own cleanup stops every VU and closes connections
        self._stop_load()
        self._reset_run()
        self._welcomed = False
        self._link.unwelcomed(self._hello)
        if self._once:
            self._exit = 1

    # ------------------------------------------------------------------ messages

    async def _handle(self, msg: Message) -> None:
        if isinstance(msg, Welcome):
            if not self._welcomed:
                self._welcomed = True
                self._link.welcomed()
        elif isinstance(msg, Refuse):
            if msg.retry_s > 0:
                self._limited("busy", f"the coordinator at {self._connect} is busy ({msg.reason}); waiting for its next run")
            else:
                _log(f"the coordinator refused this worker: {msg.reason}")
                self._exit = 2
        elif isinstance(msg, Run):
            await self._load(msg)
        elif isinstance(msg, Setup):
            if self._ours(msg.run_id) and self._play is None and self._lifecycle_task is None:
                self._lifecycle_task = self._loop.create_task(self._setup(msg.run_id))
        elif isinstance(msg, Start):
            if self._run is not None and self._ours(msg.run_id) and self._play is None:
                try:
                    self._run.data = lifecycle.unpack(msg.data)
                except Exception as exc:  # noqa: BLE001 - a bad value from the wire: the VUs get None
                    _log(f"setup()'s data did not unpack ({type(exc).__name__}: {exc}); vu.data is None")
                self._play = self._loop.create_task(self._play_run(msg.at))
        elif isinstance(msg, Takeover):
            # Always answered: what is not played here goes to another worker, never nowhere.
            refused = msg.slices
            if self._run is not None and self._ours(msg.run_id) and self._play is not None:
                try:
                    if self._run.take_over(msg.slices):
                        refused = []
                        _log(f"taking over {len(msg.slices)} slice(s) of a lost worker's share")
                    else:
                        _log("a lost worker's share arrived after this worker's own run had ended; handed back")
                except Exception as exc:  # noqa: BLE001 - a slice this worker cannot play: said, never a crash
                    _log(f"could not take over a lost worker's share ({type(exc).__name__}: {exc}); handed back")
            self._link.send(Taken(msg.run_id, msg.seq, refused))
        elif isinstance(msg, Teardown):
            if self._ours(msg.run_id) and self._run is not None:
                self._lifecycle_task = self._loop.create_task(self._teardown(msg))
        elif isinstance(msg, Stop):
            if self._run_msg is not None and msg.run_id == self._run_msg.run_id:
                if self._play is None:
                    self._reset_run()  # stopped before it started: nothing was measured
                else:
                    self._stop_load()
        elif isinstance(msg, Grant):
            if self._run_msg is not None and msg.run_id == self._run_msg.run_id:
                self._outbox.grant(msg.seq)
        elif isinstance(msg, Ack):
            if self._run_msg is not None and msg.run_id == self._run_msg.run_id:
                self._settled(msg.seq)
        elif isinstance(msg, Reject):
            if self._run_msg is not None and msg.run_id == self._run_msg.run_id and msg.seq in self._outbox:
                self.rejected += 1
                _log(f"the coordinator refused report {msg.seq} ({msg.reason}); its data is lost, the run goes on")
                self._settled(msg.seq)
        elif isinstance(msg, Bye):
            self._exit = 0

    def _ours(self, run_id: str) -> bool:
        return self._run_msg is not None and run_id == self._run_msg.run_id

    async def _setup(self, run_id: str) -> None:
        run, module = self._run, self._module
        assert run is not None and module is not None and self._run_msg is not None
        out = await lifecycle.run(
            lifecycle.SETUP, getattr(module, "setup", None), run.lifecycle_vu("setup"), (),
            self._run_msg.setup_timeout_s, run.recorder, self._bundle_dir,
        )
        self._lifecycle_task = None
        self._link.send(SetupDone(run_id, out.data, out.error, out.exit_code))

    async def _teardown(self, msg: Teardown) -> None:
        run, module = self._run, self._module
        assert run is not None and module is not None and self._run_msg is not None
        try:
            data = lifecycle.unpack(msg.data)
        except Exception:  # noqa: BLE001 - as for Start
            data = None
        out = await lifecycle.run(
            lifecycle.TEARDOWN, getattr(module, "teardown", None), run.lifecycle_vu("teardown"), (data,),
            self._run_msg.teardown_timeout_s, run.recorder, self._bundle_dir,
        )
        # teardown's own requests and metrics: one more final report, acknowledged before its end is told
        self._run_done.clear()
        self._send_report(final=True)
        try:
            await asyncio.wait_for(self._run_done.wait(), FINAL_ACK_WAIT_S)
        except TimeoutError:
            _log("teardown's report was never acknowledged")
        self._link.send(TeardownDone(msg.run_id, out.error, out.exit_code))
        self._teardown_over.set()

    def _settled(self, seq: int) -> None:
        self._outbox.settle(seq)
        if self._outbox.drained:
            self._run_done.set()

    async def _load(self, msg: Run) -> None:
        if self._run_msg is not None:
            self._link.send(LoadFailed(msg.run_id, int(ExitCode.SCRIPT_ERROR), "worker is busy with another run"))
            return
        try:
            api.env.set_overrides(msg.env)  # this machine's environment overlaid with the -e pairs
            self._tmp = tempfile.TemporaryDirectory(prefix="surge-bundle-")
            root = Path(self._tmp.name)
            self._bundle_dir = str(root.resolve()) + os.sep
            write_bundle(msg.bundle, root)
            # Importing runs scenario code on this loop; the link's thread keeps heartbeating.
            module = load_module(root / (msg.entry.replace(".", "/") + ".py"), root=root, module_name=msg.entry)
            self._source = msg.entry.replace(".", "/") + ".py"
            self._run = WorkerRun(
                module, self._source, msg.slices, env=api.env, submetrics=msg.submetrics, http_transport=msg.http_transport,
                discard_response_bodies=msg.discard_response_bodies, http_options=msg.http_options,
                halted=self._link.gone_quiet, max_endpoints=msg.max_endpoints,
            )
            self._module = module
        except SurgeError as exc:
            self._link.send(LoadFailed(msg.run_id, int(exc.exit_code), str(exc)))
            self._reset_run()
            return
        except Exception as exc:  # noqa: BLE001 - any failure to prepare is reported, never a crash
            self._link.send(LoadFailed(msg.run_id, int(ExitCode.SCRIPT_ERROR), f"{type(exc).__name__}: {exc}"))
            self._reset_run()
            return
        self._run_msg = msg
        self._outbox.reset()
        self._run_done.clear()
        self._teardown_over.clear()
        self._link.send(Ready(msg.run_id))

    # ------------------------------------------------------------------ a run

    async def _play_run(self, at: float) -> None:
        run, msg = self._run, self._run_msg
        assert run is not None and msg is not None
        # A local name: if this run is dropped (a lost coordinator) while its cleanup still
        # awaits, a next run's reporter must not be the one cancelled here.
        reporter = self._reporter = self._loop.create_task(self._report_every(msg.report_interval_s, msg.report_delay_s))
        try:
            await run.play(at)
        finally:
            reporter.cancel()
            try:
                await reporter
            except asyncio.CancelledError:
                pass
        if run.fenced:
            # Its coordinator went quiet mid-run: no final report (the coordinator must not take
            # this worker for one that finished its share); the loss is handled as a loss.
            self._lost_coordinator()
            return
        if run.interrupted_iterations:
            _log(f"{run.interrupted_iterations} iteration(s) interrupted at the end of their grace period")
        # The fleet ends together, so the last interval report (still waiting for its phase)
        # and the final one leave at this member's phase too, not in one burst with everyone's.
        held, due = self._held, self._loop.time() + msg.report_delay_s
        self._held = None
        if held is not None:
            due = max(due, held[0])
        if msg.report_delay_s > 0:
            await asyncio.sleep(due - self._loop.time())
        if held is not None:
            self._outbox.put(held[1])  # before the final one: the outbox numbers reports as they come
        self._send_report(final=True)
        try:
            await asyncio.wait_for(self._run_done.wait(), FINAL_ACK_WAIT_S)
        except TimeoutError:
            _log("the final report was never acknowledged")
        if msg.lifecycle and self._module is not None and lifecycle.has(self._module, "teardown"):
            try:  # the coordinator sends Teardown once every worker's final report is in
                await asyncio.wait_for(self._teardown_over.wait(), msg.teardown_timeout_s + FINAL_ACK_WAIT_S)
            except TimeoutError:
                _log("teardown() was never asked for")
        self._reset_run()
        if self._once:
            # a one-run worker leaves once its results are safe; Bye may come first
            self._exit = 0 if self._exit is None else self._exit

    async def _report_every(self, interval_s: float, delay_s: float) -> None:
        # At whole multiples of the interval after the plan's time 0 (not every interval after
        # the last report, which drifts by each wake-up's lateness): the k-th report covers the
        # k-th interval on the fleet's shared timeline, so the coordinator's interval points
        # (surge/results/timeline.py) line up across workers however long the run. A loop that
        # stalled past an instant reports at the next one. The report is cut at the instant and
        # sent ``delay_s`` later (this member's phase, Run.report_delay_s): what it covers stays
        # on the shared timeline, only its arrival is spread out.
        last_k = 0
        while True:
            run = self._run
            t0 = run.started_at if run is not None else None
            if t0 is None:  # before the start instant: nothing is recorded yet
                await asyncio.sleep(interval_s)
            else:
                now = self._loop.time()
                # a wake-up a little early must not make two reports of one instant
                k = last_k = max(math.floor((now - t0) / interval_s) + 1, last_k + 1)
                await asyncio.sleep(t0 + k * interval_s - now)
            try:
                report = self._cut_report(final=False)
            except Exception as exc:  # noqa: BLE001 - the reporter must outlive any one bad flush
                self._limited("report", f"could not build a report ({type(exc).__name__}: {exc}); its data is lost")
                continue
            if report is None:
                continue
            if delay_s > 0:
                # sent by _play_run if the load ends (and this task is cancelled) meanwhile
                self._held = (self._loop.time() + delay_s, report)
                await asyncio.sleep(delay_s)
                self._held = None
            self._outbox.put(report)

    def _send_report(self, *, final: bool) -> None:
        report = self._cut_report(final=final)
        if report is not None:
            self._outbox.put(report)

    def _cut_report(self, *, final: bool) -> Report | None:
        """What the recorder holds since the last cut, as a Report (seq 0: the outbox numbers it)."""
        run, msg = self._run, self._run_msg
        if run is None or msg is None:
            return None
        series, checks = run.recorder.flush()
        aborted = str(run.aborted) if run.aborted is not None else ""
        samples = run.take_vus_samples()
        return Report(msg.run_id, 0, run.elapsed_s, series, checks, final, aborted, samples)

    def _stop_load(self) -> None:
        if self._run is not None:
            self._run.stop_now()

    def _reset_run(self) -> None:
        if self._lifecycle_task is not None and not self._lifecycle_task.done():
            self._lifecycle_task.cancel()
        self._lifecycle_task = None
        self._teardown_over.set()  # nobody waits for a teardown of a run that is gone
        self._module = None
        self._run = None
        self._run_msg = None
        self._held = None
        self._play = None
        self._outbox.reset()
        self._bundle_dir = ""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def _drain_tasks(self) -> None:
        for task in (self._play, self._reporter, self._lifecycle_task):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                    pass


async def run_worker(
    connect: str,
    *,
    name: str | None = None,
    once: bool = False,
    coordinator_timeout_s: float = 5.0,
    keys: WorkerKeys | None = None,
    on_wedged: Callable[[str], None] | None = None,
) -> int:
    agent = Agent(
        connect, name=name, once=once, coordinator_timeout_s=coordinator_timeout_s, keys=keys, on_wedged=on_wedged
    )
    with freezing_survivors():  # at 10,000 VUs full collections cost a third of the core (gcpolicy)
        return await agent.serve()

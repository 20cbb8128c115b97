"""The worker agent: connects to a coordinator, runs what it is sent, reports, and stays safe.

One agent per worker process. It says ``Hello`` until the coordinator answers ``Welcome``,
then waits for a ``Run``: it writes the bundle to a temporary directory, imports the scenario
and answers ``Ready`` (or ``LoadFailed`` with the script error), starts on ``Start``, and
streams ``Report`` messages every ``report_interval_s``.

Nothing measured is lost: each flush of the recorder becomes a numbered report that stays in
the *outbox* until the coordinator acknowledges it, and is sent again every few seconds until
it is. The run is over for this worker when its final report is acknowledged.

Safety: both sides send a ``Heartbeat`` every second. If the coordinator is silent for
``coordinator_timeout_s`` the agent stops its load at once (surge must never leave load
running against someone's server with nobody watching), then exits (``once``) or goes back
to saying ``Hello``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from pathlib import Path

from surge.common import api
from surge.common.errors import ExitCode, ProtocolError, SurgeError
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
    Start,
    Stop,
    Welcome,
)
from surge.common.scenario import load_module, write_bundle
from surge.common.wire import DealerChannel
from surge.worker.runner import WorkerRun

HEARTBEAT_S = 1.0
RESEND_AFTER_S = 3.0


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
        curve_server_key: bytes | None = None,
    ) -> None:
        self._chan = DealerChannel(connect, curve_server_key=curve_server_key)
        self._name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._once = once
        self._timeout_s = coordinator_timeout_s
        self._resend_after_s = resend_after_s
        self._loop = asyncio.get_running_loop()
        self._last_rx = self._loop.time()
        self._welcomed = False
        self._run_msg: Run | None = None
        self._run: WorkerRun | None = None
        self._source = ""
        self._play: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._outbox: dict[int, tuple[float, Report]] = {}
        self._seq = 0
        self._final_seq: int | None = None
        self._run_done = asyncio.Event()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._exit: int | None = None

    # ------------------------------------------------------------------ main loop

    async def serve(self) -> int:
        """Serve until told to leave; the return value is the process exit status."""
        ticker = self._loop.create_task(self._tick())
        try:
            while self._exit is None:
                try:
                    msg = await asyncio.wait_for(self._chan.recv(), HEARTBEAT_S)
                except TimeoutError:
                    continue
                self._last_rx = self._loop.time()
                if isinstance(msg, ProtocolError):
                    _log(f"refused a message from the coordinator: {msg}")
                    continue
                await self._handle(msg)
        finally:
            ticker.cancel()
            self._stop_load()
            await self._drain_tasks()
            self._chan.close()
            if self._tmp is not None:
                self._tmp.cleanup()
        return self._exit

    async def _tick(self) -> None:
        """Hello until welcomed, heartbeats, resends, and the coordinator-silence guard."""
        while True:
            now = self._loop.time()
            if not self._welcomed:
                await self._chan.send(Hello(self._name, socket.gethostname(), os.getpid()))
            else:
                await self._chan.send(Heartbeat())
                for seq, (sent_at, report) in list(self._outbox.items()):
                    if now - sent_at >= self._resend_after_s:
                        self._outbox[seq] = (now, report)
                        await self._chan.send(report)
            if self._welcomed and now - self._last_rx > self._timeout_s:
                self._lost_coordinator()
            await asyncio.sleep(min(HEARTBEAT_S, self._resend_after_s))

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
        if self._once:
            self._exit = 1

    # ------------------------------------------------------------------ messages

    async def _handle(self, msg: Message) -> None:
        if isinstance(msg, Welcome):
            self._welcomed = True
        elif isinstance(msg, Refuse):
            _log(f"the coordinator refused this worker: {msg.reason}")
            self._exit = 2
        elif isinstance(msg, Run):
            await self._load(msg)
        elif isinstance(msg, Start):
            if self._run is not None and self._run_msg is not None and msg.run_id == self._run_msg.run_id and self._play is None:
                self._play = self._loop.create_task(self._play_run())
        elif isinstance(msg, Stop):
            if self._run_msg is not None and msg.run_id == self._run_msg.run_id:
                if self._play is None:
                    self._reset_run()  # stopped before it started: nothing was measured
                else:
                    self._stop_load()
        elif isinstance(msg, Ack):
            if self._run_msg is not None and msg.run_id == self._run_msg.run_id:
                self._outbox.pop(msg.seq, None)
                if self._final_seq is not None and not self._outbox:
                    self._run_done.set()
        elif isinstance(msg, Bye):
            self._exit = 0
        # Heartbeat: _last_rx is all it is for.

    async def _load(self, msg: Run) -> None:
        if self._run_msg is not None:
            await self._chan.send(LoadFailed(msg.run_id, int(ExitCode.SCRIPT_ERROR), "worker is busy with another run"))
            return
        try:
            api.env.set_overrides(msg.env)  # the coordinator's __ENV, visible at import time too
            self._tmp = tempfile.TemporaryDirectory(prefix="surge-bundle-")
            root = Path(self._tmp.name)
            write_bundle(msg.bundle, root)
            module = load_module(root / (msg.entry.replace(".", "/") + ".py"), root=root, module_name=msg.entry)
            self._source = msg.entry.replace(".", "/") + ".py"
            self._run = WorkerRun(
                module, self._source, msg.slices, env=msg.env, submetrics=msg.submetrics, http_transport=msg.http_transport
            )
        except SurgeError as exc:
            await self._chan.send(LoadFailed(msg.run_id, int(exc.exit_code), str(exc)))
            self._reset_run()
            return
        except Exception as exc:  # noqa: BLE001 - any failure to prepare is reported, never a crash
            await self._chan.send(LoadFailed(msg.run_id, int(ExitCode.SCRIPT_ERROR), f"{type(exc).__name__}: {exc}"))
            self._reset_run()
            return
        self._run_msg = msg
        self._seq = 0
        self._final_seq = None
        self._outbox.clear()
        self._run_done.clear()
        await self._chan.send(Ready(msg.run_id))

    # ------------------------------------------------------------------ a run

    async def _play_run(self) -> None:
        run, msg = self._run, self._run_msg
        assert run is not None and msg is not None
        self._reporter = self._loop.create_task(self._report_every(msg.report_interval_s))
        try:
            await run.play()
        finally:
            self._reporter.cancel()
            try:
                await self._reporter
            except asyncio.CancelledError:
                pass
        if run.interrupted_iterations:
            _log(f"{run.interrupted_iterations} iteration(s) interrupted at the end of their grace period")
        await self._send_report(final=True)
        try:
            await asyncio.wait_for(self._run_done.wait(), 60.0)
        except TimeoutError:
            _log("the final report was never acknowledged")
        self._reset_run()
        if self._once:
            # a one-run worker leaves once its results are safe; Bye may come first
            self._exit = 0 if self._exit is None else self._exit

    async def _report_every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self._send_report(final=False)

    async def _send_report(self, *, final: bool) -> None:
        run, msg = self._run, self._run_msg
        if run is None or msg is None:
            return
        series, checks = run.recorder.flush()
        if not series and not checks and not final and run.aborted is None:
            return
        self._seq += 1
        aborted = str(run.aborted) if run.aborted is not None else ""
        report = Report(msg.run_id, self._seq, run.elapsed_s, series, checks, final, aborted)
        # Into the outbox first: the delta now lives there until the coordinator acknowledges it.
        self._outbox[self._seq] = (self._loop.time(), report)
        if final:
            self._final_seq = self._seq
        await self._chan.send(report)

    def _stop_load(self) -> None:
        if self._run is not None:
            self._run.stop_now()

    def _reset_run(self) -> None:
        self._run = None
        self._run_msg = None
        self._play = None
        self._outbox.clear()
        self._final_seq = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def _drain_tasks(self) -> None:
        for task in (self._play, self._reporter):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                    pass


async def run_worker(connect: str, *, name: str | None = None, once: bool = False, coordinator_timeout_s: float = 5.0) -> int:
    agent = Agent(connect, name=name, once=once, coordinator_timeout_s=coordinator_timeout_s)
    return await agent.serve()

"""A whole test run from the coordinator's seat: prepare, gather, run, report.

Used by ``surge run`` (local workers spawned here) and ``surge coordinator`` (workers
elsewhere, connecting to ``bind``). Returns an :class:`~surge.coordinator.report.Outcome`;
the CLI turns its exit code into the process status.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surge.common import api
from surge.common.durations import format_duration
from surge.common.errors import ExitCode
from surge.common.http_options import http_options_raw
from surge.common.metrics import Sink
from surge.common.curve import CoordinatorKeys, load_coordinator_keys, load_worker_keys
from surge.common.endpoints import is_loopback_endpoint
from surge.common.overrides import Overrides
from surge.common.router import RouterLink
from surge.common.wire import LinkError
from surge.coordinator.local import DemoTarget, reap, spawn_workers
from surge.coordinator.plan import plan_members
from surge.coordinator.prepare import Prepared, prepare
from surge.coordinator.report import Outcome, report
from surge.coordinator.outcome import StopReason, Watchdog
from surge.coordinator.session import Session
from surge.results.live import LiveSnapshot, LiveView
from surge.results.outfiles import OutSpec, check_writable, open_outputs
from surge.results.progress_term import progress_view
from surge.results.thresholds import abort_verdict, evaluate
from surge.results.timeline import TimelineData

DEMO_ANON_KEY = "surge-demo-anon-key"


@dataclass
class RunConfig:
    scenario: Path
    env: dict[str, str] = field(default_factory=dict)
    bind: str = "tcp://127.0.0.1:*"
    expect_workers: int = 1
    spawn_workers: int = 0  # local worker processes to start (surge run)
    summary_export: Path | None = None
    summary_mode: str = "compact"  # --summary-mode: k6 v1's compact or full text summary
    no_summary: bool = False  # --no-summary: no text summary (the export and handle_summary still happen)
    report_interval_s: float = 1.0
    demo_target: bool = False
    quiet: bool = False
    gather_timeout_s: float = 60.0
    worker_timeout_s: float = 5.0
    http_transport: str = "fast"
    keys: Path | None = None  # the directory `surge keys` made (or its coordinator/ part)
    insecure: bool = False  # listen beyond loopback without keys
    overrides: Overrides = field(default_factory=Overrides)  # --vus, --duration, --stage, --tag... (k6's precedence)
    # --no-setup / --no-teardown: carried for setup()/teardown(), which do not exist yet; nothing reads them.
    no_setup: bool = False
    no_teardown: bool = False
    on_worker_loss: str = "fail"  # or "continue": the lost worker's share moves to the others
    outputs: tuple[OutSpec, ...] = ()  # --out json=FILE / csv=FILE: interval points, written as the run goes
    junit: Path | None = None  # --junit FILE: one test case per threshold, written by the report
    prometheus: tuple[str, int] | None = None  # --prometheus: (host, port) to serve /metrics on while the run goes
    report: Path | None = None  # --report FILE.html: the HTML report, written after the summary
    dashboard: tuple[str, int] | None = None  # --dashboard [ADDR:]PORT: the live dashboard's (host, port)


def _say(cfg: RunConfig, text: str) -> None:
    if not cfg.quiet:
        print(f"surge: {text}", file=sys.stderr, flush=True)


def _demo_stats(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url + "/__surge/stats", timeout=5) as resp:  # noqa: S310 - our own 127.0.0.1 target
            data: dict[str, object] = json.loads(resp.read())
            return data
    except OSError:
        return None


def _views(cfg: RunConfig, prepared: Prepared) -> list[LiveView]:
    """The live outputs this run asked for (each reads one snapshot a second).

    Each is opened now, before any load: an unwritable file or a port in use ends the run
    here, and the views already opened are closed again.
    """
    views: list[LiveView] = []
    try:
        # --out files are created now and --junit's path tried
        if cfg.junit is not None:
            check_writable(cfg.junit, "--junit")
        views.extend(open_outputs(cfg.outputs, prepared.metric_defs, prepared.thresholds))
        if cfg.prometheus is not None:
            from surge.results.prometheus_server import PrometheusView  # prometheus_client only when asked for

            prom = PrometheusView(*cfg.prometheus, metric_defs=prepared.metric_defs)
            views.append(prom)
            _say(cfg, f"prometheus metrics on {prom.url}")
        if cfg.dashboard is not None:
            from surge.results.dashboard import Dashboard  # aiohttp's server, only when asked for

            board = Dashboard(*cfg.dashboard, title=cfg.scenario.name, interval_s=cfg.report_interval_s,
                              metric_defs=prepared.metric_defs)
            for line in board.notices:  # even with -q: the URL is what the flag is for
                print(f"surge: {line}", file=sys.stderr, flush=True)
            views.append(board)
        if not cfg.quiet:  # live progress on stderr: rich frames on a terminal, a plain line every 5 s elsewhere
            views.append(progress_view())
    except BaseException:
        _close_views(views, None)
        raise
    return views


def _watchdog(prepared: Prepared, cfg: RunConfig, max_s: float, session: Session, views: list[LiveView]) -> Watchdog:
    abortable = [mt for mt in prepared.thresholds if any(t.abort_on_fail for t in mt.thresholds)]

    def show(elapsed_s: float, series: dict[str, Sink]) -> None:
        timeline = session.timeline
        snapshot = LiveSnapshot(
            elapsed_s=elapsed_s, max_duration_s=max_s, series=series,
            timeline=timeline.data() if timeline is not None else TimelineData(cfg.report_interval_s, cfg.report_interval_s, (), {}, ()),
            verdicts=evaluate(prepared.thresholds, series, elapsed_s), options=prepared.options,
            workers=tuple(timeline.worker_names) if timeline is not None else (),
            endpoints=partial(session.endpoints.summary, elapsed_s) if session.endpoints is not None else None,
        )
        for view in list(views):
            try:
                view.update(snapshot)
            except Exception as exc:  # noqa: BLE001 - a live view must never be what breaks the run
                views.remove(view)
                print(f"surge: {type(view).__name__} switched off: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def watch(elapsed_s: float, merged: Callable[[], dict[str, Sink]]) -> StopReason | None:
        if not abortable and not views:
            return None
        series = merged()
        if views:
            show(elapsed_s, series)
        if not abortable:
            return None
        verdict = abort_verdict(evaluate(abortable, series, elapsed_s), elapsed_s)
        if verdict is None:
            return None
        return StopReason(
            ExitCode.THRESHOLDS_FAILED,
            f"threshold {verdict.key}: {verdict.source} crossed (observed {verdict.observed:g}) with abortOnFail",
        )

    return watch


def _close_views(views: list[LiveView], summary: dict[str, Any] | None) -> None:
    for view in views:
        try:
            view.close(summary)
        except Exception as exc:  # noqa: BLE001 - as in update: the run's outcome stands
            print(f"surge: {type(view).__name__} did not close cleanly: {type(exc).__name__}: {exc}", file=sys.stderr,
                  flush=True)


def _coordinator_keys(cfg: RunConfig) -> CoordinatorKeys | None:
    """The keys to listen with; beyond loopback, none is an error unless ``--insecure``."""
    if cfg.keys is not None:
        keys = load_coordinator_keys(cfg.keys)
        if cfg.spawn_workers:
            load_worker_keys(cfg.keys)  # its own workers get the same directory: it must hold both halves
        return keys
    if not is_loopback_endpoint(cfg.bind) and not cfg.insecure:
        raise LinkError(
            f"refusing to listen on {cfg.bind} without keys: anyone who reaches it could join the fleet "
            "and receive the scenario and its -e values",
            hint="make keys with `surge keys DIR` and give --keys DIR to the coordinator and to every worker, "
            "or --insecure on a network you trust",
        )
    return None


async def run_test(cfg: RunConfig) -> Outcome:
    target: DemoTarget | None = None
    if cfg.demo_target:
        target = DemoTarget()
        url = await target.start()
        cfg.env.setdefault("BASE_URL", url)
        cfg.env.setdefault("ANON_KEY", DEMO_ANON_KEY)
        _say(cfg, f"demo target listening on {url}")
    procs = []
    chan: RouterLink | None = None
    session: Session | None = None
    views: list[LiveView] = []
    summary: dict[str, Any] | None = None
    try:
        keys = _coordinator_keys(cfg)
        prepared = prepare(cfg.scenario, cfg.env, cfg.overrides)  # 104/107 here: nothing has been sent yet
        views = _views(cfg, prepared)  # a port already taken fails here too, before any load
        chan = RouterLink(cfg.bind, keys=keys)
        if cfg.spawn_workers:
            procs = spawn_workers(
                chan.endpoint, cfg.spawn_workers, coordinator_timeout_s=cfg.worker_timeout_s, keys=cfg.keys
            )
        else:
            _say(cfg, f"waiting for {cfg.expect_workers} worker(s) on {chan.endpoint}")
        session = Session(
            chan,
            expect_workers=cfg.expect_workers,
            gather_timeout_s=cfg.gather_timeout_s,
            worker_timeout_s=cfg.worker_timeout_s,
            dismiss_workers=bool(cfg.spawn_workers),
        )
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        interrupts = [0]

        def on_signal(signame: str) -> None:
            interrupts[0] += 1
            if interrupts[0] == 1:
                _say(cfg, f"{signame}: stopping the run and collecting what was measured (again to quit now)")
                assert session is not None
                session.request_stop(StopReason(ExitCode.EXTERNAL_ABORT, f"interrupted by {signame}"))
            elif main_task is not None:
                main_task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            workers = await session.gather()
            capacities = session.capacities
            options = prepared.options
            processes = f" ({sum(capacities)} processes)" if sum(capacities) != len(workers) else ""
            _say(
                cfg,
                f"{len(options.scenarios)} scenario(s), {options.total_max_vus()} max VUs, "
                f"{format_duration(options.max_duration_s())} max duration (incl. graceful stop), "
                f"{len(workers)} worker(s){processes}",
            )
            # Planned per process: a machine of N processes weighs N (surge worker --processes N).
            slices = plan_members(options, capacities)
            result = await session.run(
                bundle=prepared.bundle,
                entry=prepared.entry,
                # Only the -e pairs cross the wire: each worker overlays them on its own
                # machine's environment. The coordinator's environment stays here.
                env=api.env.overrides(),
                slices=slices,
                submetrics=prepared.submetrics,
                report_interval_s=cfg.report_interval_s,
                max_duration_s=options.max_duration_s(),
                watchdog=_watchdog(prepared, cfg, options.max_duration_s(), session, views),
                http_transport=cfg.http_transport,
                setup=prepared.has_setup and not cfg.no_setup,
                teardown=prepared.has_teardown and not cfg.no_teardown,
                setup_timeout_s=options.setup_timeout_s,
                teardown_timeout_s=options.teardown_timeout_s,
                discard_response_bodies=options.discard_response_bodies,
                max_endpoints=options.max_endpoints,
                http_options=http_options_raw(options.raw),
                on_worker_loss=cfg.on_worker_loss,
            )
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        outcome = report(prepared, result, summary_export=cfg.summary_export, junit=cfg.junit,
                         summary_mode=cfg.summary_mode, no_summary=cfg.no_summary)
        summary = outcome.data
        if cfg.report is not None:
            from surge.results.report_file import write_report

            try:
                write_report(cfg.report, summary, title=cfg.scenario.name)
            except OSError as exc:  # as a summary export that fails: the run's verdict stands, said loudly
                print(f"surge: error: --report {cfg.report}: cannot write it ({exc})", file=sys.stderr, flush=True)
        if target is not None:
            stats = _demo_stats(target.url)
            if stats is not None:
                _say(cfg, f"demo target counted {stats.get('requests')} requests")
        return outcome
    finally:
        _close_views(views, summary)
        if session is not None and cfg.spawn_workers:
            session.dismiss("the coordinator is leaving")
        if chan is not None:
            chan.close()
        if procs:
            await reap(procs)
        if target is not None:
            target.stop()

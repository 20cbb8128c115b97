"""The ``surge`` command. The only module that exits the process.

Exit statuses are k6's (see :mod:`surge.common.errors`): 0 passed, 99 thresholds crossed,
104 invalid options, 105 interrupted, 107 script error, and 120 when a worker was lost.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from surge.common.durations import parse_duration
from surge.common.errors import ExitCode, SurgeError
from surge.common.overrides import Overrides

if TYPE_CHECKING:
    from surge.coordinator.report import Outcome


def _env_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="-e/--env")
        env[key] = value
    return env


def _seconds(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _timeout(ctx: click.Context, param: click.Parameter, value: str) -> float:
    seconds = _seconds(ctx, param, value)
    if seconds < 2.0:  # heartbeats come every second: less would declare a healthy worker lost
        raise click.BadParameter(f"must be at least 2s (heartbeats come every second), got {value}")
    return seconds


T = TypeVar("T")


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    import uvloop

    return uvloop.run(coro)


def _finish(coro: Coroutine[Any, Any, Outcome]) -> None:
    """Run a coordinator coroutine and exit with its outcome's code."""
    try:
        outcome = _run_loop(coro)
    except SurgeError as exc:
        click.echo(f"surge: error: {exc}", err=True)
        sys.exit(int(exc.exit_code))
    except (KeyboardInterrupt, asyncio.CancelledError):
        click.echo("surge: interrupted", err=True)
        sys.exit(int(ExitCode.EXTERNAL_ABORT))
    code = int(outcome.exit_code)
    if code == ExitCode.THRESHOLDS_FAILED:
        click.echo("surge: error: some thresholds have been crossed", err=True)
    for line in outcome.epilogue:  # each says whether it is an error or a warning
        click.echo(f"surge: {line}", err=True)
    sys.exit(code)


def _endpoint(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from surge.common.wire import LinkError, check_endpoint

    if value is None:
        return None
    try:
        return check_endpoint(value)
    except LinkError as exc:
        raise click.BadParameter(str(exc)) from None


def _outs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[Any, ...]:
    from surge.results.outfiles import parse_out

    try:
        return tuple(parse_out(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _listener(flag: str, *, allow_zero: bool) -> Callable[[click.Context, click.Parameter, str | None], tuple[str, int] | None]:
    """The callback of an HTTP listener's ``[ADDR:]PORT`` flag (``--dashboard``, ``--prometheus``)."""
    from surge.common.endpoints import parse_listen_address

    def parse(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, int] | None:
        if value is None:
            return None
        try:
            return parse_listen_address(value, flag=flag, allow_zero=allow_zero)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return parse


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="surge")
def main() -> None:
    """surge: distributed load testing with k6's test model and Python scenarios."""


_common = [
    click.argument("scenario", type=click.Path(path_type=Path)),
    click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a variable for the scenario (k6's __ENV)."),
    click.option("--summary-export", type=click.Path(path_type=Path), help="Write the end-of-test summary data as JSON."),
    click.option("--summary-mode", type=click.Choice(["compact", "full"]), default="compact", show_default=True,
                 help="The end-of-test text, in k6 v1's layout: compact (thresholds, checks and the totals by "
                      "section) or full (also the HTTP phase trends, and a section per group and per scenario)."),
    click.option("--no-summary", is_flag=True, help="Print no end-of-test text; --summary-export and "
                 "handle_summary still get the summary data."),
    click.option("--report-interval", default="1s", callback=_seconds, show_default=True, help="How often workers report."),
    click.option("-q", "--quiet", is_flag=True, help="No live progress and no progress lines."),
    click.option("--http-transport", type=click.Choice(["fast", "aiohttp"]), default="fast", show_default=True,
                 help="fast: uvloop + httptools, cheapest per request; aiohttp: aiohttp's client, the reference the "
                      "fast transport is tested against, slower per request (same options, no proxies from the environment)."),
    click.option("--keys", type=click.Path(path_type=Path), default=None,
                 help="The directory `surge keys` made: CURVE-encrypt the fleet and admit only workers holding its keys."),
    click.option("--worker-timeout", default="5s", callback=_timeout, show_default=True,
                 help="A worker silent this long is lost (its heartbeats come every second)."),
    click.option("--out", "out", multiple=True, metavar="KIND=FILE", callback=_outs,
                 help="Write the run's interval points as the run goes: json=FILE (k6's NDJSON shape) or csv=FILE "
                      "(k6's csv columns plus every statistic); repeatable."),
    click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), default=None,
                 help="Write JUnit XML at the end: one test case per threshold, a failure naming the observed value."),
    click.option("--report", "report", type=click.Path(path_type=Path), default=None, metavar="FILE.html",
                 help="Write the HTML report (one self-contained file) at the end; `surge report` renders one later."),
    click.option("--dashboard", "dashboard", default=None, callback=_listener("--dashboard", allow_zero=True), metavar="[ADDR:]PORT",
                 help="Serve the live dashboard while the run goes (127.0.0.1 unless ADDR; port 0 picks one)."),
    click.option("--on-worker-loss", type=click.Choice(["fail", "continue"]), default="fail", show_default=True,
                 help="A worker lost mid-run: fail stops the run (exit 120 after the summary); continue moves its "
                      "VUs, rate and remaining iterations to the other workers and judges the run by its thresholds."),
    click.option("--prometheus", default=None, metavar="[ADDR:]PORT", callback=_listener("--prometheus", allow_zero=False),
                 help="Serve the fleet's metrics and thresholds at http://ADDR:PORT/metrics while the run goes "
                      "(ADDR defaults to 127.0.0.1), for Prometheus to scrape."),
]


# k6's flags that override the script's options (k6's precedence: see surge.common.overrides).
# Their values reach the override as typed, so that a bad one is listed with every other problem
# (exit 104) instead of ending the command alone.
_overriding = [
    click.option("-u", "--vus", default=None, metavar="N",
                 help="VUs (k6's --vus). Beside --duration or --stage it replaces the script's scenarios; alone it "
                      "changes the script's vus shortcut."),
    click.option("-d", "--duration", default=None, metavar="DURATION",
                 help="Run N VUs (--vus, default 1) for DURATION, e.g. 30s, replacing the script's scenarios, "
                      "stages and duration (k6's --duration)."),
    click.option("-i", "--iterations", default=None, metavar="N",
                 help="Run N iterations shared by the VUs (k6's --iterations: a shared-iterations scenario; with "
                      "--duration, that is its maxDuration), replacing the script's scenarios."),
    click.option("-s", "--stage", "stages", multiple=True, metavar="DURATION:TARGET",
                 help="A ramping stage, e.g. 30s:100; repeatable (or comma-separated), in order; replaces the "
                      "script's scenarios, stages and duration (k6's --stage)."),
    click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
                 help="Tag every sample of the run (k6's global tags); repeatable. A scenario's own tag of the "
                      "same name wins."),
    click.option("--no-thresholds", is_flag=True, help="Do not parse or check the thresholds: the run passes whatever "
                 "they would say (k6's --no-thresholds)."),
    click.option("--summary-trend-stats", default=None, metavar="STATS",
                 help="Trend statistics in the summary, comma-separated, e.g. avg,p(95),p(99.9); replaces "
                      "summaryTrendStats."),
    click.option("--summary-time-unit", default=None, metavar="UNIT",
                 help="Show every duration in the summary in UNIT: s, ms or us; replaces summaryTimeUnit."),
    click.option("--max-endpoints", default=None, metavar="N",
                 help="Rows of the per-endpoint table (default 100); the requests of any later name are "
                      "counted under __overflow__. Replaces maxEndpoints."),
]
_setup_flags = [
    click.option("--no-setup", is_flag=True, help="Skip setup()."),
    click.option("--no-teardown", is_flag=True, help="Skip teardown()."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _with(decorators: Sequence[Callable[[Any], Any]], f: F) -> F:
    for deco in reversed(decorators):
        f = deco(f)
    return f


def _with_common(f: F) -> F:
    return _with([*_common, *_overriding, *_setup_flags], f)


def _with_overriding(f: F) -> F:
    return _with(_overriding, f)


def _overrides(flags: dict[str, Any]) -> Overrides:
    """The overriding flags (popped from ``flags``, the command's extra keyword arguments)."""
    return Overrides(
        vus=flags.pop("vus"), duration=flags.pop("duration"), iterations=flags.pop("iterations"),
        stages=flags.pop("stages"), tags=flags.pop("tags"),
        no_thresholds=flags.pop("no_thresholds"), summary_trend_stats=flags.pop("summary_trend_stats"),
        summary_time_unit=flags.pop("summary_time_unit"), max_endpoints=flags.pop("max_endpoints"),
    )


@main.command()
@_with_common
@click.option("-w", "--workers", type=click.IntRange(1, 1024), default=None, help="Local worker processes [default: one per core].")
@click.option("--demo-target", is_flag=True, help="Start the embedded demo target and point BASE_URL/ANON_KEY at it.")
def run(scenario: Path, env: tuple[str, ...], summary_export: Path | None, report_interval: float, quiet: bool,
        http_transport: str, keys: Path | None, workers: int | None, demo_target: bool, **flags: Any) -> None:
    """Run SCENARIO with a coordinator and local worker processes (listening on loopback only)."""
    from surge.coordinator.testrun import RunConfig, run_test

    n = workers or os.cpu_count() or 1
    cfg = RunConfig(
        scenario=scenario, env=_env_pairs(env), expect_workers=n, spawn_workers=n,
        summary_export=summary_export, report_interval_s=report_interval, demo_target=demo_target, quiet=quiet,
        http_transport=http_transport, keys=keys,
        overrides=_overrides(flags), no_setup=flags.pop("no_setup"), no_teardown=flags.pop("no_teardown"),
        on_worker_loss=flags.pop("on_worker_loss"), worker_timeout_s=flags.pop("worker_timeout"),
        outputs=flags.pop("out"), junit=flags.pop("junit"), prometheus=flags.pop("prometheus"),
        report=flags.pop("report"), dashboard=flags.pop("dashboard"),
        summary_mode=flags.pop("summary_mode"), no_summary=flags.pop("no_summary"),
    )
    _finish(run_test(cfg))


@main.command()
@_with_common
@click.option("--bind", default="tcp://0.0.0.0:5557", show_default=True, callback=_endpoint,
              help="ZeroMQ endpoint workers connect to.")
@click.option("--expect-workers", type=click.IntRange(1, 100000), required=True, help="Workers to wait for before starting.")
@click.option("--wait", "gather_timeout", default="60s", callback=_seconds, show_default=True, help="How long to wait for them.")
@click.option("--insecure", is_flag=True, help="Listen beyond loopback without --keys (only on a network you trust).")
def coordinator(scenario: Path, env: tuple[str, ...], summary_export: Path | None, report_interval: float, quiet: bool,
                http_transport: str, keys: Path | None, bind: str, expect_workers: int, gather_timeout: float,
                insecure: bool, **flags: Any) -> None:
    """Coordinate SCENARIO over workers that connect to --bind (multi-machine runs)."""
    from surge.coordinator.testrun import RunConfig, run_test

    cfg = RunConfig(
        scenario=scenario, env=_env_pairs(env), bind=bind, expect_workers=expect_workers,
        summary_export=summary_export, report_interval_s=report_interval, quiet=quiet, gather_timeout_s=gather_timeout,
        http_transport=http_transport, keys=keys, insecure=insecure,
        overrides=_overrides(flags), no_setup=flags.pop("no_setup"), no_teardown=flags.pop("no_teardown"),
        on_worker_loss=flags.pop("on_worker_loss"), worker_timeout_s=flags.pop("worker_timeout"),
        outputs=flags.pop("out"), junit=flags.pop("junit"), prometheus=flags.pop("prometheus"),
        report=flags.pop("report"), dashboard=flags.pop("dashboard"),
        summary_mode=flags.pop("summary_mode"), no_summary=flags.pop("no_summary"),
    )
    _finish(run_test(cfg))


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("-w", "--workers", type=click.IntRange(1, 1024), default=None,
              help="Workers to split the load over [default: one per core, as surge run].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document, for tools.")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a variable for the scenario (k6's __ENV).")
@_with_overriding
def inspect(scenario: Path, workers: int | None, as_json: bool, env: tuple[str, ...], **flags: Any) -> None:
    """Show what `surge run SCENARIO` would run, without sending a request or starting a worker.

    The options after the command line's overrides, each scenario's executor, start, duration
    with graceful stop and peak VUs, the totals, and each worker's VUs and VU ids.
    """
    import json

    from surge.coordinator.prepare import prepare
    from surge.coordinator.preview import describe, render_text

    try:
        prepared = prepare(scenario, _env_pairs(env), _overrides(flags))
    except SurgeError as exc:
        click.echo(f"surge: error: {exc}", err=True)
        sys.exit(int(exc.exit_code))
    doc = describe(prepared, workers or os.cpu_count() or 1)
    click.echo(json.dumps(doc, indent=2) if as_json else render_text(doc))


def _processes(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    """``--processes``: a whole number from 1 to 1024, or ``auto`` (the CPUs this process may use)."""
    from surge.worker.machine import MAX_PROCESSES, default_processes

    if value.strip().lower() == "auto":
        return min(default_processes(), MAX_PROCESSES)
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_PROCESSES:
        raise click.BadParameter(f"expected a whole number from 1 to {MAX_PROCESSES} or 'auto', got {value!r}")
    return n


@main.command()
@click.option("--connect", required=True, callback=_endpoint, help="The coordinator's endpoint, e.g. tcp://jumpbox:5557.")
@click.option("--name", default=None, help="Name shown by the coordinator [default: host-pid].")
@click.option("--once", is_flag=True, help="Exit after one run (surge run starts workers this way).")
@click.option("--coordinator-timeout", default=5.0, type=click.FloatRange(min=0.5), show_default=True,
              help="Seconds of coordinator silence after which load stops.")
@click.option("--keys", type=click.Path(path_type=Path), default=None,
              help="The directory `surge keys` made (or its worker/ part), to join a fleet that uses keys.")
@click.option("--processes", default="1", callback=_processes, metavar="N|auto", show_default=True,
              help="Worker processes on this machine, one per core: auto is the CPUs this process may use. With 2 "
                   "or more, this process relays for them: one member of capacity N to the coordinator, their "
                   "reports merged here into one report per interval.")
@click.option("--parent-pid", type=int, default=None, hidden=True,
              help="Exit when this process is no longer the parent (a machine's relay starts its processes so).")
def worker(connect: str, name: str | None, once: bool, coordinator_timeout: float, keys: Path | None,
           processes: int, parent_pid: int | None) -> None:
    """Run load for a coordinator; stays up for the next run unless --once."""
    from surge.worker.agent import run_worker
    from surge.worker.machine import run_machine, watch_parent

    def wedged(reason: str) -> None:
        # Called from the link's thread when scenario code holds the event loop and the
        # coordinator is gone: the load cannot be stopped in order, so the process ends.
        click.echo(f"surge worker[{os.getpid()}]: {reason}; exiting so that no load is left running", err=True)
        os._exit(int(ExitCode.WORKER_LOST))

    if parent_pid is not None:
        def orphaned() -> None:
            # A machine's process whose relay is gone, or a `surge run` worker whose coordinator
            # is (even killed outright): no load may outlive it.
            click.echo(f"surge worker[{os.getpid()}]: its parent (pid {parent_pid}) is gone; exiting", err=True)
            os._exit(int(ExitCode.WORKER_LOST))

        watch_parent(parent_pid, orphaned)

    try:
        worker_keys = None
        if keys is not None:
            from surge.common.curve import load_worker_keys

            worker_keys = load_worker_keys(keys)
        if processes > 1:
            code = _run_loop(run_machine(connect, processes, name=name, once=once,
                                         coordinator_timeout_s=coordinator_timeout, keys=worker_keys, on_wedged=wedged))
        else:
            code = _run_loop(run_worker(connect, name=name, once=once, coordinator_timeout_s=coordinator_timeout,
                                        keys=worker_keys, on_wedged=wedged))
    except SurgeError as exc:
        click.echo(f"surge worker: error: {exc}", err=True)
        code = int(exc.exit_code)
    except KeyboardInterrupt:
        code = int(ExitCode.EXTERNAL_ABORT)
    sys.exit(code)


@main.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, metavar="FILE.html",
              help="Where to write the page [default: RESULTS with .html].")
def report_command(results: Path, output: Path | None) -> None:
    """Render the HTML report of a saved run: RESULTS is a `surge run --summary-export` file."""
    from surge.results.report_file import report_from_file

    out = output if output is not None else results.with_suffix(".html")
    if out.resolve() == results.resolve():
        click.echo(f"surge: error: {out} would overwrite the results it is made from; give -o FILE.html", err=True)
        sys.exit(int(ExitCode.INVALID_CONFIG))
    try:
        report_from_file(results, out)
    except SurgeError as exc:
        click.echo(f"surge: error: {exc}", err=True)
        sys.exit(int(exc.exit_code))
    click.echo(f"wrote {out}")


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace existing keys (every worker holding the old ones is locked out).")
def keys(directory: Path, force: bool) -> None:
    """Make the fleet's CURVE keys in DIRECTORY: coordinator/ for the coordinator, worker/ for workers."""
    from surge.common.curve import write_keys

    try:
        written = write_keys(directory, force=force)
    except SurgeError as exc:
        click.echo(f"surge: error: {exc}", err=True)
        sys.exit(int(exc.exit_code))
    for f in written.files:
        click.echo(f"wrote {f}")
    click.echo(f"copy {written.coordinator_dir}/ to the coordinator's machine: surge coordinator --keys {written.coordinator_dir}")
    click.echo(f"copy {written.worker_dir}/ to every worker machine: surge worker --keys {written.worker_dir}")
    click.echo("keep both private: anyone holding worker/ is a member of the fleet; "
               "to admit another worker key pair, drop its public .key file into "
               f"{written.coordinator_dir / 'workers'}/")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, type=int, show_default=True, help="0 picks a free port.")
@click.option("--latency-median-ms", default=40.0, type=float, show_default=True)
@click.option("--latency-sigma", default=0.5, type=float, show_default=True, help="Lognormal sigma.")
@click.option("--error-rate", default=0.0, type=float, show_default=True, help="Share of requests answered with --error-status.")
@click.option("--error-status", default=500, type=int, show_default=True)
@click.option("--anon-key", default="surge-demo-anon-key", show_default=True, help="Expected bearer token and apikey.")
@click.option("--seed", default=None, type=int)
@click.option("--parent-pid", type=int, default=None, hidden=True, help="Exit when this process is no longer the parent.")
def target(host: str, port: int, latency_median_ms: float, latency_sigma: float, error_rate: float,
           error_status: int, anon_key: str, seed: int | None, parent_pid: int | None) -> None:
    """Serve the demo create-checkout-session endpoint."""
    from surge.target import TargetConfig, run_target

    try:
        cfg = TargetConfig(
            host=host, port=port, anon_key=anon_key, latency_median_ms=latency_median_ms,
            latency_sigma=latency_sigma, error_rate=error_rate, error_status=error_status, seed=seed,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    run_target(cfg, parent_pid=parent_pid)

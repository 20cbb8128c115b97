"""After the run: verdicts, the summary, ``handle_summary``, outputs and the exit code.

The exit code is decided here and only here: the reason the run stopped early if it did
(105 signal, 120 lost worker, 99 a threshold with ``abortOnFail``), else 99 if any threshold
failed at the end, else 0. The summary is printed and exported whatever the code: what was
measured before an abort is still reported.

The text is k6 v1's (surge/results/summary_text.py), compact or full (``--summary-mode``);
``--no-summary`` drops only the text: ``--summary-export`` and ``handle_summary`` still get the
data. Full mode's SCENARIO sections also show the series the session records per scenario for
itself (``http_reqs{scenario:x}``...), which stay out of ``data`` as they are not k6's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from surge.common.errors import ExitCode, ScriptError
from surge.common.metrics import INTERNAL_METRICS, RateSink, Sink, TrendSink, new_sink, parse_series_name, trend_stat
from surge.coordinator.prepare import Prepared
from surge.coordinator.outcome import SessionResult
from surge.results.endpoints import overflow_hint
from surge.results.junit import junit_xml
from surge.results.outfiles import write_junit
from surge.results.outputs import SummaryOutputError, summary_json, write_outputs
from surge.results.summary import SeriesResult, build_summary
from surge.results.summary_text import SUMMARY_MODES, SummaryMode, text_summary
from surge.results.thresholds import Verdict, evaluate


@dataclass(frozen=True)
class Outcome:
    exit_code: ExitCode
    data: dict[str, Any]
    verdicts: list[Verdict]
    # What the CLI prints last, after the summary: e.g. which worker was lost, when, and
    # what of its data was kept (exit 120).
    epilogue: tuple[str, ...] = ()


def summarize(
    prepared: Prepared, result: SessionResult, series: dict[str, Sink], *, is_tty: bool = False
) -> tuple[dict[str, Any], list[Verdict]]:
    """The k6-shaped summary data and the verdicts, from the fleet's merged ``series``."""
    series = dict(series)
    for mt in prepared.thresholds:
        series.setdefault(mt.key, new_sink(mt.metric.type))
    for name in ("vus", "vus_max", "http_reqs", "iterations"):
        series.setdefault(name, new_sink(prepared.metric_defs[name].type))
    verdicts = evaluate(prepared.thresholds, series, result.duration_s)
    results = []
    for key, sink in series.items():
        metric = prepared.metric_defs.get(parse_series_name(key).metric)
        if metric is not None:
            results.append(SeriesResult(key=key, metric=metric, sink=sink))
    data = build_summary(
        series=results,
        verdicts=verdicts,
        checks=result.aggregate.checks(),
        duration_s=result.duration_s,
        trend_stats=prepared.options.summary_trend_stats,
        options=dict(prepared.options.raw),
        is_stdout_tty=is_tty,
    )
    return data, verdicts


def scenario_entries(prepared: Prepared, result: SessionResult, series: dict[str, Sink]) -> dict[str, Any]:
    """The session's own per-scenario series (kept out of ``data``), as summary entries for full mode."""
    results = []
    for key in sorted(result.internal_series):
        name = parse_series_name(key)
        metric = prepared.metric_defs.get(name.metric)
        if key in series and metric is not None and any(tag == "scenario" for tag, _ in name.tags):
            results.append(SeriesResult(key=key, metric=metric, sink=series[key]))
    data = build_summary(series=results, verdicts=[], checks={}, duration_s=result.duration_s,
                         trend_stats=prepared.options.summary_trend_stats)
    entries: dict[str, Any] = data["metrics"]
    return entries


SATURATION_WARN_SHARE = 0.05


def saturation_warning(series: dict[str, Sink]) -> str | None:
    """Words for the summary when the generator, not the server, shaped the latencies."""
    sat = series.get("surge_saturated")
    if not isinstance(sat, RateSink) or sat.total == 0 or sat.passes / sat.total <= SATURATION_WARN_SHARE:
        return None
    share = sat.passes / sat.total
    lag = series.get("surge_loop_lag")
    lag_p99 = trend_stat(lag.sketch, "p(99)") if isinstance(lag, TrendSink) else 0.0
    cpu = series.get("surge_cpu")  # a trend of per-second shares of one core (1.0 = a core busy)
    cpu_max = cpu.sketch.max if isinstance(cpu, TrendSink) and not cpu.is_empty() else 0.0
    return (
        f"WARNING: the load generator was saturated for {share:.0%} of its worker-seconds "
        f"(peak CPU {cpu_max:.0%} of a core, event-loop lag p99 {lag_p99:.1f} ms): the latencies "
        "above include surge's own queueing, not only the server's. Add workers or load machines, "
        "or lower the load per worker."
    )


def worker_entries(result: SessionResult) -> list[dict[str, Any]]:
    """``state.workers``: each worker's name and figures, in index order (see surge/results/summary.py).

    ``overloaded`` marks a worker saturated for more than :data:`SATURATION_WARN_SHARE` of its
    seconds: the machine, not the server, set its latencies.
    """
    agg = result.aggregate
    lost = {w.name for w in result.lost}
    out = []
    for i in range(agg.n_workers):
        f = agg.figures(i)
        name = result.workers[i] if i < len(result.workers) else f"worker {i}"
        clock = result.clocks[i] if i < len(result.clocks) else None
        out.append({
            "name": name,
            "processes": result.capacities[i] if i < len(result.capacities) else 1,
            "lost": name in lost,
            # its monotonic clock minus the coordinator's, and the round trip that measured it
            # (surge/common/clock.py); None if it answered no probe and started on receipt
            "clockOffsetMs": clock.offset_s * 1000 if clock is not None else None,
            "roundTripMs": clock.rtt_s * 1000 if clock is not None else None,
            "requests": f.requests,
            "failures": f.failures,
            "cpuMean": f.cpu_mean,  # a share of one core
            "cpuMax": f.cpu_max,
            "loopLagMeanMs": f.lag_mean_ms,
            "loopLagMaxMs": f.lag_max_ms,
            "saturatedShare": f.saturated_share,
            "overloaded": f.saturated_share > SATURATION_WARN_SHARE,
        })
    return out


def exit_code_for(result: SessionResult, verdicts: list[Verdict]) -> ExitCode:
    if result.stopped is not None:
        return result.stopped.exit_code
    if any(not v.ok for v in verdicts):
        return ExitCode.THRESHOLDS_FAILED
    return ExitCode.PASSED


def report(
    prepared: Prepared,
    result: SessionResult,
    *,
    summary_export: Path | None,
    junit: Path | None = None,
    summary_mode: str = "compact",
    no_summary: bool = False,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
    base_dir: Path = Path("."),
) -> Outcome:
    """Judge the run, print or hand over the summary, write exports; return the outcome.

    ``summary_mode`` is ``compact`` or ``full`` (else ``ValueError``); ``no_summary`` prints no
    text summary.
    """
    if summary_mode not in SUMMARY_MODES:
        raise ValueError(f"summary mode must be one of {', '.join(SUMMARY_MODES)}, got {summary_mode!r}")
    mode: SummaryMode = summary_mode
    # merged once, for the summary and the warning; what the session tracked for itself is not in the data
    every = result.aggregate.series()
    series = {k: v for k, v in every.items()
              if k not in result.internal_series and parse_series_name(k).metric not in INTERNAL_METRICS}
    data, verdicts = summarize(prepared, result, series, is_tty=stdout.isatty())
    extra = scenario_entries(prepared, result, every) if mode == "full" else None

    def print_summary() -> None:
        if not no_summary:
            stdout.write(text_summary(data, summary_mode=mode, extra_metrics=extra) + "\n")

    workers = worker_entries(result)
    data["state"]["workers"] = workers
    # surge's own key beside k6's: the per-endpoint table, merged from the fleet (surge/results/endpoints.py)
    data["endpoints"] = result.aggregate.endpoints.summary(result.duration_s)
    hint = overflow_hint(data["endpoints"])
    if hint is not None:  # said once, here, whatever the number of workers that overflowed
        stderr.write(f"surge: {hint}\n")
    if result.timeline is not None:
        # surge's own key beside k6's: the run over time, for `surge report` and the outputs
        data["timeline"] = result.timeline.to_json()
    warning = saturation_warning(series)
    if warning is not None:
        data["state"]["generatorSaturated"] = True
        stderr.write(f"surge: {warning}\n")
    overloaded = [w["name"] for w in workers if w["overloaded"]]
    if overloaded and len(workers) > 1:
        stderr.write(f"surge: overloaded worker(s): {', '.join(overloaded)} (saturated in more than "
                     f"{SATURATION_WARN_SHARE:.0%} of their seconds; see the per-worker table)\n")
    if result.rejected:
        data["state"]["rejectedReports"] = {name: list(reasons) for name, reasons in result.rejected.items()}
        skipped = dict(zip(result.workers, result.aggregate.skipped))
        for name, reasons in result.rejected.items():
            stderr.write(
                f"surge: {skipped.get(name, len(reasons))} report(s) from {name} did not validate and are not "
                f"in the summary (first: {reasons[0]})\n"
            )
    if result.lost:
        data["state"]["lostWorkers"] = [
            {"name": w.name, "atSeconds": round(w.at_s, 3), "why": w.why, "reports": w.reports,
             "reportedSeconds": round(w.reported_s, 3), "requests": w.requests, "handedOver": w.handed_over}
            for w in result.lost
        ]
    if summary_export is not None:
        summary_export.parent.mkdir(parents=True, exist_ok=True)
        summary_export.write_text(summary_json(data), encoding="utf-8")
    if junit is not None:
        # from the verdicts themselves (not the summary data, which keeps only "ok"): the
        # observed values in the failures are the ones the exit code was decided on
        kinds = {name: (d.type.value, d.contains.value) for name, d in prepared.metric_defs.items()}
        try:
            write_junit(junit, junit_xml(verdicts, suite=prepared.source, duration_s=result.duration_s, metrics=kinds))
        except OSError as exc:
            stderr.write(f"surge: could not write --junit {junit}: {exc}\n")
    if prepared.handle_summary is not None:
        try:
            out = prepared.handle_summary(data)
        except Exception as exc:  # noqa: BLE001 - the user's function; the default summary still prints
            stderr.write(f"surge: handle_summary raised {type(exc).__name__}: {exc}; printing the default summary\n")
            print_summary()
        else:
            if out is not None and not isinstance(out, dict):
                raise ScriptError(f"{prepared.source}: handle_summary must return a dict, got {type(out).__name__}")
            try:
                write_outputs(out or {}, stdout=stdout, stderr=stderr, base_dir=base_dir)
            except ValueError as exc:
                raise ScriptError(f"{prepared.source}: handle_summary returned {exc}") from None
            except SummaryOutputError as exc:
                stderr.write(f"surge: could not write every summary output: {exc}\n")
    else:
        print_summary()
    stdout.flush()
    return Outcome(exit_code_for(result, verdicts), data, verdicts, tuple(w.line() for w in result.lost))

"""What the live progress shows: one :class:`Progress` per snapshot, drawn as text or with rich.

This module decides *what* to show and how it reads; :mod:`surge.results.progress_term` decides
*where* (a redrawn rich frame on a terminal, a plain line every few seconds in a CI log). Nothing
here reads a clock or writes to a stream, so every number is checked from built snapshots.

Per scenario (k6's progress bars, ``ui/pb`` in k6):

* **the bar** is the share of the scenario's own length gone by (``startTime`` shifts it; a
  scenario that has not started is ``waiting``). For the iteration-counting executors, whose
  length is only a ``maxDuration`` ceiling, the bar is iterations done over iterations planned,
  as k6 draws it;
* **VUs**: the plan's target at this instant (:func:`surge.common.schedule.vus_at`); for the
  arrival-rate executors the plan's target *rate* now (iterations/s) beside ``maxVUs``. The
  measured count is the fleet's ``vus`` gauge: workers do not report it per scenario, so a
  single-scenario run shows ``measured/target`` and a multi-scenario run shows each scenario's
  target only and the fleet's measured total in the header line;
* **iterations, requests/s, p95, failures**: the fleet's cumulative series (the per-scenario
  sub-metrics ``http_reqs{scenario:X}`` etc. when there are several scenarios). Requests/s is
  the last closed timeline point's rate, or the count so far over the time so far before the
  first point closes.

Then every threshold as it stands now: ✓/✗, its expression, the observed value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from surge.common.arrivals import ArrivalPlan
from surge.common.durations import format_duration
from surge.common.metrics import (
    BUILTIN_METRICS,
    CounterSink,
    GaugeSink,
    MetricType,
    RateSink,
    Sink,
    TrendSink,
    ValueType,
    trend_stat,
)
from surge.common.options import Executor, ScenarioConfig
from surge.common.schedule import vus_at
from surge.results.live import LiveSnapshot
from surge.results.thresholds import Verdict, parse_expression
from surge.results.timeline import TimelineData

BAR_WIDTH = 30


class State(Enum):
    WAITING = "waiting"  # before its startTime
    RUNNING = "running"
    STOPPING = "stopping"  # past its length, within its graceful stop
    DONE = "done"


@dataclass(frozen=True)
class ScenarioProgress:
    name: str
    executor: str
    state: State
    fraction: float  # 0..1: the bar
    elapsed_s: float  # within the scenario, clamped to 0..length_s
    length_s: float
    target_vus: int  # the plan's VUs now (maxVUs for arrival-rate)
    target_rate: float | None  # arrival-rate only: iterations per second the plan asks for now
    vus: int | None  # measured; None when not measured per scenario (multi-scenario runs)
    iterations: int
    planned_iterations: int | None  # iteration-counting executors only
    requests: int
    reqs_per_s: float
    p95_ms: float | None  # None before the first response
    failed: int


@dataclass(frozen=True)
class ThresholdProgress:
    key: str
    source: str
    ok: bool
    observed: str  # "p(95)=12.31ms", "rate=0.42%"


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    max_duration_s: float
    vus: int  # the fleet's measured VUs, every scenario together
    iterations: int
    requests: int
    reqs_per_s: float
    p95_ms: float | None
    failed: int
    scenarios: tuple[ScenarioProgress, ...]
    thresholds: tuple[ThresholdProgress, ...]

    @property
    def failed_share(self) -> float:
        return self.failed / self.requests if self.requests else 0.0


# --------------------------------------------------------------------------- what to show


def target_rate_at(plan: ArrivalPlan, offset_s: float) -> float:
    """The iterations per second an arrival-rate plan asks for at ``offset_s`` (0 outside it)."""
    t = 0.0
    for seg in plan.segments:
        if offset_s < t + seg.duration_s:
            share = (offset_s - t) / seg.duration_s if seg.duration_s > 0 else 1.0
            return (seg.from_rate + (seg.to_rate - seg.from_rate) * max(0.0, share)) / plan.time_unit_s
        t += seg.duration_s
    return 0.0


def _count(series: Mapping[str, Sink], key: str) -> int:
    sink = series.get(key)
    return int(sink.total) if isinstance(sink, CounterSink) else 0


def _p95_ms(series: Mapping[str, Sink], key: str) -> float | None:
    sink = series.get(key)
    if not isinstance(sink, TrendSink) or sink.sketch.count == 0:
        return None
    return trend_stat(sink.sketch, "p(95)")


def _failed(series: Mapping[str, Sink], key: str) -> int:
    sink = series.get(key)
    return sink.passes if isinstance(sink, RateSink) else 0  # http_req_failed: a "pass" is a failed request


def _per_s(timeline: TimelineData, series: Mapping[str, Sink], key: str, running_s: float) -> float:
    if timeline.points:
        last = timeline.points[-1].values.get(key)
        return last.get("rate", 0.0) if last is not None else 0.0  # no data in the last point: none sent
    return _count(series, key) / running_s if running_s > 0 else 0.0


def _planned_iterations(sc: ScenarioConfig) -> int | None:
    if sc.executor is Executor.SHARED_ITERATIONS:
        return sc.iterations
    if sc.executor is Executor.PER_VU_ITERATIONS:
        return sc.iterations * sc.vus
    return None


def scenario_progress(sc: ScenarioConfig, snap: LiveSnapshot, *, multi: bool) -> ScenarioProgress:
    """One scenario's row; ``multi``: read its ``{scenario:X}`` sub-metrics, not the fleet's series."""
    tag = f"{{scenario:{sc.name}}}" if multi else ""
    series = snap.series
    length = sc.length_s()
    since_start = snap.elapsed_s - sc.start_time_s
    at = min(max(since_start, 0.0), length)
    iterations = _count(series, "iterations" + tag)
    planned = _planned_iterations(sc)
    if planned is not None:
        fraction = min(iterations / planned, 1.0) if planned else 1.0
    else:
        fraction = at / length if length > 0 else 1.0
    if since_start < 0:
        state = State.WAITING
    elif (planned is not None and iterations >= planned) or snap.elapsed_s >= sc.end_offset_s():
        state = State.DONE
    elif since_start >= length:
        state = State.STOPPING
    else:
        state = State.RUNNING
    live = state in (State.RUNNING, State.STOPPING)
    # The plan's target, not a measurement: workers report one fleet-wide `vus` gauge, not one
    # per scenario, so only a single-scenario run can put a measured count beside its target.
    target_rate = target_rate_at(sc.arrival_plan(), at) if sc.executor.arrival_rate and state is State.RUNNING else None
    target_vus = (sc.max_vus_limit if sc.executor.arrival_rate else vus_at(sc.steps(), at)) if live else 0
    vus = None if multi else _gauge(series, "vus")
    return ScenarioProgress(
        name=sc.name, executor=sc.executor.value, state=state, fraction=fraction, elapsed_s=at, length_s=length,
        target_vus=target_vus, target_rate=target_rate, vus=vus, iterations=iterations, planned_iterations=planned,
        requests=_count(series, "http_reqs" + tag),
        reqs_per_s=_per_s(snap.timeline, series, "http_reqs" + tag, max(since_start, 0.0)) if live else 0.0,
        p95_ms=_p95_ms(series, "http_req_duration" + tag), failed=_failed(series, "http_req_failed" + tag),
    )


def _gauge(series: Mapping[str, Sink], key: str) -> int:
    sink = series.get(key)
    return int(sink.value) if isinstance(sink, GaugeSink) and not sink.is_empty() else 0


def format_ms(ms: float) -> str:
    """A latency as people read it: ``850µs``, ``12.31ms``, ``1.25s``."""
    if not math.isfinite(ms):
        return str(ms)
    if ms >= 1000:
        return f"{ms / 1000:.2f}s"
    if ms >= 1:
        return f"{ms:.2f}ms"
    return f"{ms * 1000:.0f}µs"


def _number(x: float) -> str:
    return f"{x:.0f}" if x == int(x) else f"{x:.2f}"


def observed_text(verdict: Verdict, series: Mapping[str, Sink]) -> str:
    """``aggregation=value`` in the metric's unit: a rate as a share, a time as a latency.

    Whether a trend holds times is known for the built-in metrics only (a custom trend's
    ``isTime`` is not in the snapshot), so a custom trend's value is a plain number.
    """
    try:
        aggregation = parse_expression(verdict.source)[0]
    except ValueError:
        return f"{verdict.observed:g}"
    metric = BUILTIN_METRICS.get(verdict.key.split("{", 1)[0])
    sink = series.get(verdict.key)
    x = verdict.observed
    if aggregation == "rate" and (isinstance(sink, RateSink) or (metric is not None and metric.type is MetricType.RATE)):
        value = f"{x * 100:.2f}%"
    elif aggregation == "rate" and (isinstance(sink, CounterSink) or (metric is not None and metric.type is MetricType.COUNTER)):
        value = f"{x:.2f}/s"
    elif metric is not None and metric.contains is ValueType.TIME and aggregation != "count":
        value = format_ms(x)
    else:
        value = _number(x) if math.isfinite(x) else str(x)
    return f"{aggregation}={value}"


def progress_of(snap: LiveSnapshot) -> Progress:
    """Everything the live progress shows for one snapshot."""
    multi = len(snap.options.scenarios) > 1
    series = snap.series
    return Progress(
        elapsed_s=snap.elapsed_s, max_duration_s=snap.max_duration_s, vus=_gauge(series, "vus"),
        iterations=_count(series, "iterations"), requests=_count(series, "http_reqs"),
        reqs_per_s=_per_s(snap.timeline, series, "http_reqs", snap.elapsed_s),
        p95_ms=_p95_ms(series, "http_req_duration"), failed=_failed(series, "http_req_failed"),
        scenarios=tuple(scenario_progress(sc, snap, multi=multi) for sc in snap.options.scenarios),
        thresholds=tuple(ThresholdProgress(v.key, v.source, v.ok, observed_text(v, series)) for v in snap.verdicts),
    )


# --------------------------------------------------------------------------- as text


def plain_line(p: Progress) -> str:
    """The one line a CI log gets every few seconds (no colour, no cursor movement)."""
    p95 = format_ms(p.p95_ms) if p.p95_ms is not None else "-"
    line = (
        f"running ({format_duration(round(p.elapsed_s))}/{format_duration(p.max_duration_s)}), {p.vus} VUs, "
        f"{p.iterations} iterations, {p.requests} requests, {p.reqs_per_s:.1f} req/s, p95={p95}, "
        f"{p.failed} failed ({p.failed_share:.2%})"
    )
    if p.thresholds:
        crossed = sum(not t.ok for t in p.thresholds)
        line += f", thresholds {len(p.thresholds) - crossed} ok" + (f" {crossed} crossed" if crossed else "")
    return line


def clock(seconds: float) -> str:
    """k6's progress clock: ``0m05.0s``, ``12m30.0s``."""
    seconds = max(seconds, 0.0)
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{s:04.1f}s"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """k6's bar: ``[=====>------]``, ``width`` cells between the brackets."""
    fraction = min(max(fraction, 0.0), 1.0)
    done = int(fraction * width)
    if done >= width:
        return "[" + "=" * width + "]"
    return "[" + "=" * done + ">" + "-" * (width - done - 1) + "]"


def vus_text(s: ScenarioProgress) -> str:
    if s.target_rate is not None:
        vus = f"{s.vus}/{s.target_vus} VUs" if s.vus is not None else f"max {s.target_vus} VUs"
        return f"{s.target_rate:.2f} iters/s, {vus}"
    if s.vus is None:
        return f"{s.target_vus} VUs (plan)"
    return f"{s.vus}/{s.target_vus} VUs"


# k6's status runes (ui/pb): waiting, running, stopping, done
_MARK = {State.WAITING: ("•", "dim"), State.RUNNING: (" ", ""), State.STOPPING: ("↓", "yellow"), State.DONE: ("✓", "green")}


def _bar_text(s: ScenarioProgress) -> Text:
    text = bar(s.fraction)
    filled = text.rstrip("-]")  # the "[===>" part; the padding is faint, as in k6
    out = Text(filled, style="dim" if s.state is State.WAITING else "green")
    out.append(text[len(filled):-1], style="dim")
    out.append("]", style="dim" if s.state is State.WAITING else "green")
    return out


def renderable(p: Progress) -> RenderableType:
    """The rich frame: a header line, one row per scenario, one line per threshold."""
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append("running", style="bold")
    header.append(
        f" ({clock(p.elapsed_s)}/{clock(p.max_duration_s)}), {p.vus} VUs, {p.iterations} iterations, "
        f"{p.requests} requests, {p.reqs_per_s:.1f} req/s, "
        f"p95 {format_ms(p.p95_ms) if p.p95_ms is not None else '-'}, "
    )
    header.append(f"{p.failed} failed ({p.failed_share:.2%})", style="red" if p.failed else "")
    rows = Table.grid(padding=(0, 1))
    for column in ("name", "mark", "bar", "vus", "time", "iters", "rate", "p95", "failed"):
        rows.add_column(no_wrap=True, overflow="ellipsis", justify="right" if column in ("iters", "rate") else "left")
    for s in p.scenarios:
        iters = f"{s.iterations}/{s.planned_iterations} iters" if s.planned_iterations is not None else f"{s.iterations} iters"
        rows.add_row(
            Text(s.name, style="cyan"), Text(*_MARK[s.state]), _bar_text(s),
            vus_text(s), f"{clock(s.elapsed_s)}/{clock(s.length_s)}", iters, f"{s.reqs_per_s:.1f} req/s",
            f"p95 {format_ms(s.p95_ms) if s.p95_ms is not None else '-'}",
            Text(f"{s.failed} failed", style="red" if s.failed else ""),
        )
    parts: list[RenderableType] = [header, rows]
    if p.thresholds:
        marks = Table.grid(padding=(0, 1))
        for _ in range(4):
            marks.add_column(no_wrap=True, overflow="ellipsis")
        for t in p.thresholds:
            marks.add_row(Text("✓" if t.ok else "✗", style="green" if t.ok else "bold red"), t.key, t.source, t.observed)
        parts += [Text("thresholds (now):", style="bold"), marks]
    return Group(*parts)

"""What a session returns: how the run ended, who was lost and what of theirs was kept.

The session (:mod:`surge.coordinator.session`) plays the run; these are the facts it hands to
the caller, which judges the thresholds and reports (:mod:`surge.coordinator.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from surge.common.clock import ClockSample
from surge.common.errors import ExitCode
from surge.common.metrics import Sink
from surge.coordinator.aggregate import Aggregate
from surge.results.timeline import Timeline

# Called every tick with the elapsed time and a function that merges the fleet's sinks (a
# copy of every series of every worker: call it only when the answer is needed); returns a
# reason to stop the run, or None.
Watchdog = Callable[[float, Callable[[], dict[str, Sink]]], "StopReason | None"]


@dataclass(frozen=True)
class StopReason:
    exit_code: ExitCode
    message: str


@dataclass(frozen=True)
class LostWorker:
    """A worker that went silent (or never sent its final report) and what it left behind."""

    name: str
    at_s: float  # seconds into the run when it was declared lost
    why: str
    reports: int  # reports applied from it
    reported_s: float  # the run time its applied reports cover
    requests: int  # http_reqs in them
    handed_over: bool = False  # its share moved to the survivors (--on-worker-loss continue)

    def line(self) -> str:
        """What the CLI says of it last: an error, or (its share taken over) a warning."""
        kept = (
            f"worker {self.name} was lost {self.at_s:.1f}s into the run ({self.why}); kept: its {self.reports} "
            f"report(s) covering the first {self.reported_s:.1f}s ({self.requests} requests); "
            "what it measured after that is not in the summary"
        )
        if self.handed_over:
            return f"warning: {kept}; the survivors took over its share from {self.at_s:.1f}s on"
        return f"error: {kept}"


@dataclass
class SessionResult:
    aggregate: Aggregate
    duration_s: float
    stopped: StopReason | None = None
    workers: list[str] = field(default_factory=list)
    lost: list[LostWorker] = field(default_factory=list)
    rejected: dict[str, list[str]] = field(default_factory=dict)  # worker -> reasons its reports were refused
    clocks: list[ClockSample | None] = field(default_factory=list)  # per worker, in index order: its clock offset
    internal_series: frozenset[str] = frozenset()  # tracked for the session's own use, not for the summary
    capacities: list[int] = field(default_factory=list)  # per worker, in index order: its processes
    timeline: Timeline | None = None  # the run's interval points (surge/results/timeline.py)

"""What a run looks like while it plays: one snapshot a second, handed to every live view.

The coordinator (``surge/coordinator/testrun.py``) builds a :class:`LiveSnapshot` once per
session tick (about a second) when at least one view is on, and passes the same snapshot to
each :class:`LiveView`: the terminal progress, the web dashboard, the Prometheus endpoint. A
view only reads the snapshot; it never reaches into the session. A view that raises is
switched off with one line on stderr, and the run goes on: watching a run must never be
what breaks it.

Every number comes from the fleet's merged data: ``series`` are the fleet's cumulative sinks
(what the end-of-test summary would say if the run ended now), ``timeline`` the closed interval
points so far (:mod:`surge.results.timeline`), ``verdicts`` every threshold judged on ``series``
at ``elapsed_s``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from surge.common.metrics import Sink
from surge.common.options import Options
from surge.results.thresholds import Verdict
from surge.results.timeline import TimelineData


@dataclass(frozen=True)
class LiveSnapshot:
    elapsed_s: float  # seconds since the fleet's start instant
    max_duration_s: float  # the plan's longest possible run, graceful stops included
    series: Mapping[str, Sink]  # the fleet's cumulative sinks (copies: safe to keep)
    timeline: TimelineData  # closed interval points so far
    verdicts: Sequence[Verdict]  # every threshold, judged now
    options: Options  # the scenarios, their executors and their plans
    workers: Sequence[str]  # names of the workers (or machines) with a series of their own, in index order
    # the per-endpoint table now (surge/results/endpoints.py), built only by a view that shows it
    endpoints: Callable[[], Mapping[str, Any]] | None = None


class LiveView(Protocol):
    """A live output. ``update`` is called about once a second; ``close`` once, at the end."""

    def update(self, snapshot: LiveSnapshot) -> None: ...

    def close(self, summary: Mapping[str, Any] | None) -> None:
        """The run is over; ``summary`` is the end-of-test summary data (None if the run failed to produce one)."""
        ...

"""The arrival-rate plan: when each iteration of an open-model scenario starts (pure, no clock).

Plan, then act, for k6's ``constant-arrival-rate`` and ``ramping-arrival-rate``: the rate
over time is a list of :class:`RateSegment` (a linear move from one rate to another over a
duration; a constant rate is a segment whose two rates are equal), and the fleet's
iterations are numbered ``k = 0, 1, 2, ...`` in order of their planned start.
:meth:`ArrivalPlan.offset_s` says when iteration ``k`` starts, as a pure function of the plan
and ``k``: the same answer on the coordinator and on every worker.

When iteration ``k`` starts (k6's meaning)
------------------------------------------

Let ``A(t)`` be the integral of the rate from the scenario's start to ``t`` (iterations
"owed" by ``t``). Iteration ``k`` starts at the first ``t`` where ``A(t)`` reaches
``k + shift``:

* ``constant-arrival-rate``: ``shift = 0``, so iteration 0 starts at once and iteration
  ``k`` at ``k * timeUnit / rate`` (k6's ticker). Iterations planned strictly before
  ``duration`` run: ``rate: 10, duration: '10s'`` is 100 iterations at 0, 0.1, ... 9.9 s;
* ``ramping-arrival-rate``: ``shift = 1`` (k6's ``cal``: "the algorithm works with area so
  we need to start from 1"), so from a start rate of 0 the first iteration waits until one
  iteration is owed. Iterations planned at or before the end of the last stage run (k6
  races the one planned at the very end; surge starts it, so a plan owing exactly ``N``
  iterations runs ``N``): ``startRate: 10, stages: [{duration: '10s', target: 10}]`` is 100
  iterations at 0.1, 0.2, ... 10.0 s.

So :meth:`ArrivalPlan.total` is ``ceil(A(T))`` for the first and ``floor(A(T))`` for the
second: for whole numbers, exactly the integral.

Rates are whole numbers per ``timeUnit`` and durations are read from their decimal form,
as :mod:`surge.common.schedule` does, so ``A`` is computed with :class:`fractions.Fraction`
exactly; only the instant inside a ramp (a square root) is a float, and it is computed from
exact inputs with the numerically stable form of the quadratic's root, then clamped into
its segment, so instants never decrease. A zero-length segment is a jump of the rate (k6's
``{duration: '0s', target: N}``); a segment at rate 0 owes nothing and only lets time pass.

Splitting over the fleet
------------------------

Each worker owns the iteration indices that the weighted owner sequence of
:mod:`surge.common.schedule` gives it (``owned_pattern``: ``k % period in offsets``; the
planner weights it by the workers' shares of ``maxVUs``), and starts only those, at the
instants above. At every instant the workers' started iterations
therefore sum exactly to the plan's, and no worker is ever a whole iteration away from its
share. The coordinator ships the rate plan and the ownership rule, never the instants.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

from surge.common.schedule import _exact


@dataclass(frozen=True)
class RateSegment:
    """Move linearly from ``from_rate`` to ``to_rate`` (iterations per time unit) over ``duration_s``."""

    duration_s: float
    from_rate: int
    to_rate: int


@dataclass(frozen=True)
class _Exact:
    start: Fraction  # offset of the segment's start, seconds
    length: Fraction  # seconds
    r0: Fraction  # rate at the start, iterations per second
    r1: Fraction  # rate at the end
    owed_before: Fraction  # A(start)
    owed: Fraction  # A(start + length) - A(start)


@dataclass(frozen=True)
class ArrivalPlan:
    """The rate over time of one arrival-rate scenario (see the module docstring)."""

    time_unit_s: float
    segments: tuple[RateSegment, ...]
    first_at_zero: bool  # constant-arrival-rate (shift 0) rather than ramping-arrival-rate (shift 1)

    def __post_init__(self) -> None:
        unit = _exact(self.time_unit_s, "time_unit_s")
        if unit <= 0:
            raise ValueError(f"time_unit_s must be > 0, got {self.time_unit_s!r}")
        exact: list[_Exact] = []
        t = owed = Fraction(0)
        for n, seg in enumerate(self.segments):
            d = _exact(seg.duration_s, f"segments[{n}].duration_s")
            for rate in (seg.from_rate, seg.to_rate):
                if isinstance(rate, bool) or not isinstance(rate, int) or rate < 0:
                    raise ValueError(f"segments[{n}] rates must be whole numbers >= 0, got {rate!r}")
            r0, r1 = Fraction(seg.from_rate) / unit, Fraction(seg.to_rate) / unit
            part = d * (r0 + r1) / 2
            exact.append(_Exact(t, d, r0, r1, owed, part))
            t += d
            owed += part
        object.__setattr__(self, "_exact", tuple(exact))
        object.__setattr__(self, "_length", t)
        object.__setattr__(self, "_owed", owed)

    @property
    def shift(self) -> int:
        return 0 if self.first_at_zero else 1

    @property
    def duration_s(self) -> float:
        return float(self._length)  # type: ignore[attr-defined]

    def owed(self) -> Fraction:
        """``A(T)``: the iterations the whole plan owes, exactly."""
        return self._owed  # type: ignore[attr-defined, no-any-return]

    def total(self) -> int:
        """How many iterations the plan starts in all (the fleet's, not one worker's)."""
        owed = self.owed()
        return math.ceil(owed) if self.first_at_zero else math.floor(owed)

    def offset_s(self, k: int) -> float:
        """When iteration ``k`` (0-based, fleet-wide) starts, in seconds after the scenario's start."""
        return next(self.offsets([k]))

    def offsets(self, indices: Iterable[int]) -> Iterator[float]:
        """The start of each of ``indices`` (ascending, each below :meth:`total`)."""
        return (offset for _, offset in self.schedule(indices))

    def schedule(self, indices: Iterable[int]) -> Iterator[tuple[int, float]]:
        """``(k, offset_s)`` for each of ``indices`` (ascending, each below :meth:`total`), walking forward once."""
        segs: tuple[_Exact, ...] = self._exact  # type: ignore[attr-defined]
        total = self.total()
        i = 0
        last = -1
        for k in indices:
            if k <= last or k >= total or k < 0:
                raise ValueError(f"indices must ascend within 0..{total - 1}, got {k} after {last}")
            last = k
            target = Fraction(k + self.shift)
            while i < len(segs) - 1 and segs[i].owed_before + segs[i].owed < target:
                i += 1
            yield k, float(_within(segs[i], target))

    def count_by(self, offset_s: float) -> int:
        """How many iterations have started by ``offset_s`` (inclusive), for tests and summaries."""
        return _count_by(self, offset_s)


def _within(seg: _Exact, target: Fraction) -> Fraction | float:
    """Offset (seconds from the plan's start) where ``A`` reaches ``target`` inside ``seg``."""
    rem = target - seg.owed_before
    if rem <= 0:
        return seg.start
    if seg.r0 == seg.r1:
        return seg.start + rem / seg.r0
    # r0*x + (r1-r0)*x^2/(2L) = rem; the stable root 2*rem / (r0 + sqrt(r0^2 + 2*rem*(r1-r0)/L)).
    disc = seg.r0 * seg.r0 + 2 * rem * (seg.r1 - seg.r0) / seg.length
    root = math.sqrt(max(float(disc), 0.0))
    denom = float(seg.r0) + root
    x = float(seg.length) if denom <= 0 else min(float(2 * rem) / denom, float(seg.length))
    return min(float(seg.start) + x, float(seg.start + seg.length))


def _count_by(plan: ArrivalPlan, offset_s: float) -> int:
    total = plan.total()
    lo, hi = 0, total  # the answer is the number of k with offset_s(k) <= offset_s
    while lo < hi:
        mid = (lo + hi) // 2
        if plan.offset_s(mid) <= offset_s:
            lo = mid + 1
        else:
            hi = mid
    return lo


def owned_indices_from(period: int, offsets: Sequence[int], total: int) -> Iterator[int]:
    """The indices below ``total`` owned by the rule ``(period, offsets)``, ascending, lazily."""
    if not offsets:
        return
    base = 0
    while base < total:
        for k in offsets:
            if base + k >= total:
                return
            yield base + k
        base += period

"""The VU schedule of a scenario as a plan: a list of steps, computed once, with no clock.

Plan, then act (k6's ``ExecutionStep``). An executor's stages become a list of
:class:`Step` ``(offset_s, vus)``: *from ``offset_s`` seconds after the scenario's start on,
``vus`` VUs should be active*. A runner later only waits until each step's offset and resizes
its VU pool; nothing here reads a clock, so every plan can be checked exactly in a test.

The shape of a plan
-------------------

``ramping_vus_steps(start_vus, stages)`` follows k6's ramping-vus executor:

* the first step is ``Step(0, start_vus)``;
* a stage that moves from ``v0`` to ``target`` over ``d`` seconds, starting at ``t0``, changes
  the count by one at ``t0 + d*i/|target - v0|`` for ``i = 1..|target - v0|``: the count
  moves linearly and reaches ``target`` exactly at the stage's end, one VU at a time, both up
  and down;
* a zero-duration stage jumps to its target at once; a stage whose target equals the current
  count adds no step (time passes, nothing changes);
* the last step is the *end marker*, at ``T``, the end of the last stage: at its offset the
  scenario is over and every VU still running is stopped (with ``gracefulStop``, not
  ``gracefulRampDown``). Its ``vus`` is the count the stages reach at the end (the last
  target: ``Step(T, 0)`` after a ramp to 0), so that :func:`max_vus` sees the last target
  even when the VUs reach it only at ``T``, as k6's ``vus_max`` does. It is kept even when
  the count did not change (a plan ending on a plateau ends ``Step(30, 10), Step(90, 10)``),
  so ``plan[-1].offset_s`` is always the scenario's length. ``constant_vus_steps(v, d)`` is
  ``[Step(0, v), Step(d, 0)]``, whose end marker is ``Step(d, 0)``;
* offsets strictly increase (steps at the same offset are merged, the last value wins) and
  no two consecutive steps have the same ``vus``, except that the first step and the end
  marker are always kept.

What the plan asks for *after* ``T`` is nothing: :func:`vus_at` answers for offsets up to
``T`` and returns the end marker's ``vus`` beyond it; the runner stops at the end marker.

Offsets are computed with :class:`fractions.Fraction` from each duration's decimal form
(``0.1`` is one tenth, not the nearest binary double) and turned into floats only at the end,
so a plan is the same on every machine and ``30s`` over 100 VUs gives offsets 0.3, 0.6, ...
exactly as written. ``total_duration_s(stages)`` uses the same arithmetic, so it equals the
last step's offset bit for bit.

Execution segments: splitting a plan over the fleet
---------------------------------------------------

Each worker has a positive integer weight (``[1, 1, 1]``, or ``[2, 1, 1]`` when one machine
is twice as big). VUs are numbered globally: index ``k`` (0-based) is the ``k``-th VU to be
activated, and VUs are deactivated last-in-first-out, so when the global count is ``v`` the
active VUs are exactly the indices ``0..v-1``. Each index is *owned* by exactly one worker,
and a worker's count at global count ``v`` is the number of indices below ``v`` it owns. Hence,
by construction:

* at every offset the workers' counts sum to the global count exactly;
* when the global count goes up no worker's count goes down, and vice versa;
* a worker's VU ids (``owned_indices``) never change between steps.

Who owns which index is a periodic, deterministic, smooth weighted round-robin with period
``W = sum(weights)``: in each period worker ``i`` owns ``weights[i]`` indices, and at every
global count ``v`` every worker's count lies between ``floor(v*w/W)`` and ``ceil(v*w/W)``
(it is never a whole VU away from its exact share). For equal weights the owner of ``k`` is
simply ``k % n``.

That bound is stronger than what nginx's classic smooth weighted round-robin gives (it can
fall 1.06 VUs behind its share with weights ``[1, 1, 1, 5, 5, 5]``), so the order is
built instead as an earliest-deadline-first schedule of unit jobs: worker ``i``'s ``j``-th
index of a period may not come before position ``floor((j-1)*W/w)`` (else the worker would
exceed ``ceil(v*w/W)``) and must come before position ``ceil(j*W/w)`` (else it would fall
below ``floor(v*w/W)``). Balinski and Young showed that such a house-monotone quota
apportionment always exists, and EDF is optimal for unit jobs with integer release times and
deadlines, so the schedule never misses. Ties go to the lowest worker index.

Rotation: with the same order for every scenario, each scenario's first VU would land on
worker 0, so a test made of single-VU scenarios would run them all on one worker. So
``split_steps`` and ``owned_indices`` take a ``rotation``: the worker order fed to the
apportionment starts at worker ``rotation % n`` (the planner passes each scenario's VU-id
base). The quota bound above holds for the weights in any order, so it holds for every
rotation; a rotation only changes who gets which index.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache


@dataclass(frozen=True)
class Stage:
    """Move linearly to ``target`` VUs over ``duration_s`` seconds (k6's ``{duration, target}``)."""

    duration_s: float
    target: int


@dataclass(frozen=True)
class Step:
    """From ``offset_s`` (seconds after the scenario's start) on, ``vus`` VUs should be active."""

    offset_s: float
    vus: int


# --------------------------------------------------------------------------- global plans


def _exact(seconds: float, what: str) -> Fraction:
    """The decimal value of a duration as an exact fraction (``0.1`` -> 1/10)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"{what} must be a number of seconds, got {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {seconds!r}")
    # repr() is the shortest decimal that round-trips, e.g. '0.1' or '1e-06'.
    return Fraction(repr(seconds)) if isinstance(seconds, float) else Fraction(seconds)


def _check_vus(vus: int, what: str) -> None:
    if isinstance(vus, bool) or not isinstance(vus, int) or vus < 0:
        raise ValueError(f"{what} must be a whole number >= 0, got {vus!r}")


def _finish(raw: list[tuple[Fraction, int]]) -> list[Step]:
    """Make floats, merge same-offset steps (last wins), drop repeats (keep first and last).

    Offsets are merged after rounding to float, so that two exact offsets too close to
    tell apart as floats still give strictly increasing float offsets.
    """
    merged: list[tuple[float, int]] = []
    for exact, vus in raw:
        offset = float(exact)
        if merged and merged[-1][0] == offset:
            merged[-1] = (offset, vus)
        else:
            merged.append((offset, vus))
    steps: list[Step] = []
    last = len(merged) - 1
    for i, (offset, vus) in enumerate(merged):
        if i in (0, last) or vus != steps[-1].vus:
            steps.append(Step(offset, vus))
    return steps


def ramping_vus_steps(start_vus: int, stages: Sequence[Stage]) -> list[Step]:
    """k6's ramping-vus plan: see the module docstring for its exact shape.

    Raises ``ValueError`` on a negative or non-integer VU count or a negative or non-finite
    duration (the options validator reports those to the user before a plan is made).
    """
    _check_vus(start_vus, "start_vus")
    raw: list[tuple[Fraction, int]] = [(Fraction(0), start_vus)]
    t0 = Fraction(0)
    current = start_vus
    for n, stage in enumerate(stages):
        d = _exact(stage.duration_s, f"stages[{n}].duration_s")
        _check_vus(stage.target, f"stages[{n}].target")
        diff = stage.target - current
        if diff != 0:
            if d == 0:
                raw.append((t0, stage.target))
            else:
                sign = 1 if diff > 0 else -1
                span = abs(diff)
                raw.extend((t0 + d * i / span, current + sign * i) for i in range(1, span + 1))
            current = stage.target
        t0 += d
    raw.append((t0, current))  # the end marker
    return _finish(raw)


def constant_vus_steps(vus: int, duration_s: float) -> list[Step]:
    """k6's constant-vus plan: ``[Step(0, vus), Step(duration_s, 0)]``."""
    _check_vus(vus, "vus")
    return _finish([(Fraction(0), vus), (_exact(duration_s, "duration_s"), 0)])


def total_duration_s(stages: Sequence[Stage]) -> float:
    """The sum of the stages' durations: the offset of a ramping-vus plan's last step."""
    exact = (_exact(s.duration_s, f"stages[{n}].duration_s") for n, s in enumerate(stages))
    return float(sum(exact, Fraction(0)))


def max_vus(steps: Sequence[Step]) -> int:
    """The most VUs a plan ever asks for at once (0 for an empty plan)."""
    return max((s.vus for s in steps), default=0)


def vus_at(steps: Sequence[Step], offset_s: float) -> int:
    """How many VUs the plan wants at ``offset_s``: the last step at or before it, else 0.

    Past the end marker the scenario is over; this still answers with the marker's ``vus``.
    """
    i = bisect_right([s.offset_s for s in steps], offset_s)
    return steps[i - 1].vus if i > 0 else 0


# --------------------------------------------------------------------------- execution segments


def _check_weights(weights: Sequence[int]) -> tuple[int, ...]:
    ws = tuple(weights)
    if not ws:
        raise ValueError("weights must name at least one worker")
    for i, w in enumerate(ws):
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"weights[{i}] must be a whole number >= 1, got {w!r}")
    return ws


@lru_cache(maxsize=128)
def _owners(weights: tuple[int, ...]) -> tuple[int, ...]:
    """Owner of each index of one period (length ``sum(weights)``): EDF, see the module docstring."""
    period = sum(weights)
    next_unit = [1] * len(weights)  # 1-based number of each worker's next index in the period
    owners: list[int] = []
    for k in range(period):
        best: tuple[int, int] | None = None
        for i, w in enumerate(weights):
            j = next_unit[i]
            if j > w or (j - 1) * period // w > k:  # all given, or not released yet
                continue
            deadline = -(-j * period // w) - 1
            if best is None or deadline < best[0]:
                best = (deadline, i)
        if best is None or best[0] < k:  # impossible by Balinski-Young + EDF optimality
            raise AssertionError(f"no quota-respecting owner for index {k} with weights {weights}")
        owners.append(best[1])
        next_unit[best[1]] += 1
    return tuple(owners)


def _worker_counts(weights: tuple[int, ...], vus: int) -> tuple[int, ...]:
    # Whole periods by weight, then the first ``rest`` owners of a period one each. Counted
    # here rather than read from a cached table of every prefix: that table is the square of
    # the fleet (~8 MB at 1,000 workers, one per distinct weights).
    full, rest = divmod(vus, sum(weights))
    counts = [full * w for w in weights]
    for owner in _owners(weights)[:rest]:
        counts[owner] += 1
    return tuple(counts)


def _rotation_order(n: int, rotation: int) -> list[int]:
    """Worker indices in the order the apportionment sees them: ``rotation % n`` first."""
    if isinstance(rotation, bool) or not isinstance(rotation, int):
        raise ValueError(f"rotation must be a whole number, got {rotation!r}")
    return [(rotation + j) % n for j in range(n)]


def split_steps(steps: Sequence[Step], weights: Sequence[int], *, rotation: int = 0) -> list[list[Step]]:
    """Each worker's plan: its share of every global step, dropping steps where it is unchanged.

    Like a global plan, each worker's plan keeps its first step (at the first global
    step's offset, even with a count of 0) and its last, at the global plan's last offset
    (the end marker, even when its count did not change), so every plan ends where the
    scenario ends.
    """
    ws = _check_weights(weights)
    order = _rotation_order(len(ws), rotation)
    rotated = tuple(ws[i] for i in order)
    plans: list[list[Step]] = [[] for _ in ws]
    in_order = [plans[i] for i in order]
    last = len(steps) - 1
    for i, step in enumerate(steps):
        _check_vus(step.vus, "step vus")
        for plan, count in zip(in_order, _worker_counts(rotated, step.vus)):
            if i in (0, last) or plan[-1].vus != count:
                plan.append(Step(step.offset_s, count))
    return plans


def owned_indices(worker: int, weights: Sequence[int], count: int, *, rotation: int = 0) -> list[int]:
    """The global VU indices below ``count`` that ``worker`` owns, ascending (same ``rotation`` as the split).

    A VU's fleet-unique id (k6's ``__VU``) is the scenario's id offset + its index + 1.
    """
    ws = _check_weights(weights)
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < len(ws):
        raise ValueError(f"worker must be an index into weights (0..{len(ws) - 1}), got {worker!r}")
    _check_vus(count, "count")
    period, mine = owned_pattern(worker, ws, rotation=rotation)
    return [base + k for base in range(0, count, period) for k in mine if base + k < count]


def owned_pattern(worker: int, weights: Sequence[int], *, rotation: int = 0) -> tuple[int, tuple[int, ...]]:
    """``(period, offsets)``: ``worker`` owns index ``k`` iff ``k % period in offsets``.

    The ownership rule of :func:`owned_indices` in a form a worker can apply to indices
    without bound (arrival-rate and shared-iteration indices), with no list of them.
    """
    ws = _check_weights(weights)
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < len(ws):
        raise ValueError(f"worker must be an index into weights (0..{len(ws) - 1}), got {worker!r}")
    order = _rotation_order(len(ws), rotation)
    me = order.index(worker)  # this worker's place in the rotated order
    mine = tuple(k for k, owner in enumerate(_owners(tuple(ws[i] for i in order))) if owner == me)
    return sum(ws), mine


def owned_below(period: int, offsets: Sequence[int], count: int) -> int:
    """How many indices below ``count`` the rule ``(period, offsets)`` owns."""
    full, rest = divmod(count, period)
    return full * len(offsets) + sum(1 for k in offsets if k < rest)

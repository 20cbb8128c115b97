"""What a lost worker leaves behind, as shares for the survivors (``--on-worker-loss continue``).

Pure: no clock, no I/O. When a worker is declared lost ``at_s`` seconds into the run, its
slices (those it was planned, and any it had itself taken over) are cut at that instant and
what remains is split over the surviving worker processes by weight, with the same
apportionment the planner uses (:mod:`surge.common.schedule`). Survivors play the new slices
beside their own, on the run's clock, from the moment they receive them:

* **ramping-vus, constant-vus**: the lost worker's VU schedule from ``at_s`` on (its count
  at that instant, then its later steps) is split over the survivors; its VU ids go with the
  VUs. At every later instant the fleet again runs the scenario's planned count.
* **constant-arrival-rate, ramping-arrival-rate**: the lost worker's iteration numbers are
  handed over whole: the residues it owned (``index_offsets``) are dealt to the survivors that
  get some of its VUs, and ``skip_before_s = at_s`` says that arrivals planned before the loss
  were its own (it ran them, or they are gone with it). Later arrivals keep their planned
  instants, so the fleet's rate is the planned rate again.
* **shared-iterations, per-vu-iterations**: the iterations it owed and had not reported done
  (``done``: its ``iterations{scenario:…}`` count in the reports the coordinator applied) are
  run by its VUs' successors on the survivors as a ``shared-iterations`` share of that many, so
  the fleet's total is exactly what the scenario asked. An iteration the lost worker completed
  but never reported is run again: its result never reached the summary, and the count that
  the summary shows is the one the scenario planned. ``vu.iteration_in_test`` of a taken-over
  iteration numbers it within the takeover (from 0), not within the scenario.

Whatever ends before ``at_s`` (a scenario already over, ``maxDuration`` passed) is not handed
over; the lost worker's in-flight iterations and unreported samples are lost with it (the
summary says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from surge.common.protocol import ScenarioSlice
from surge.common.schedule import Step, owned_below, owned_indices, owned_pattern, split_steps, vus_at

LOOPING = frozenset({"ramping-vus", "constant-vus"})
ARRIVAL = frozenset({"constant-arrival-rate", "ramping-arrival-rate"})
COUNTED = frozenset({"shared-iterations", "per-vu-iterations"})


def iterations_key(scenario: str) -> str:
    """The series key whose count says how many iterations of ``scenario`` a worker completed."""
    return f"iterations{{scenario:{scenario}}}"


def take_over(
    lost: Sequence[ScenarioSlice], done: Mapping[str, int], at_s: float, weights: Sequence[int]
) -> list[list[ScenarioSlice]]:
    """The new slices for each survivor process (``weights``: one per survivor, positive)."""
    if not weights or any(w <= 0 for w in weights):
        raise ValueError(f"survivor weights must be positive, got {list(weights)!r}")
    out: list[list[ScenarioSlice]] = [[] for _ in weights]
    counted: dict[str, list[ScenarioSlice]] = {}
    for sl in lost:
        if at_s >= sl.start_time_s + sl.duration_s:
            continue  # over (only its graceful stop was left): nothing to hand over
        if sl.executor in LOOPING:
            parts = _looping(sl, at_s, weights)
        elif sl.executor in ARRIVAL:
            parts = _arrivals(sl, at_s, weights)
        elif sl.executor in COUNTED:
            counted.setdefault(sl.name, []).append(sl)
            continue
        else:  # pragma: no cover - the planner makes no other executor
            raise ValueError(f"cannot take over a {sl.executor!r} slice")
        for share, part in zip(out, parts):
            if part is not None:
                share.append(part)
    for name, slices in counted.items():
        for share, part in zip(out, _iterations(slices, done.get(name, 0), weights)):
            if part is not None:
                share.append(part)
    return out


def _steps(sl: ScenarioSlice) -> list[Step]:
    return [Step(o, v) for o, v in sl.steps]


def _split_ids(ids: Sequence[int], weights: Sequence[int]) -> list[list[int]]:
    return [[ids[k] for k in owned_indices(w, weights, len(ids))] for w in range(len(weights))]


def _looping(sl: ScenarioSlice, at_s: float, weights: Sequence[int]) -> list[ScenarioSlice | None]:
    rel = at_s - sl.start_time_s
    steps = _steps(sl)
    if rel > 0:
        # Nothing for the survivors before the loss; then the lost worker's count at that
        # instant, then its later steps (the end marker among them).
        later = [s for s in steps if s.offset_s > rel]
        steps = [Step(0.0, 0), Step(rel, vus_at(steps, rel)), *later]
    ids = _split_ids(sl.vu_ids, weights)
    out: list[ScenarioSlice | None] = []
    for mine, my_ids in zip(split_steps(steps, weights), ids):
        if not my_ids:
            out.append(None)
            continue
        out.append(replace(sl, steps=[(s.offset_s, s.vus) for s in mine], vu_ids=my_ids, member=0))
    return out


def _arrivals(sl: ScenarioSlice, at_s: float, weights: Sequence[int]) -> list[ScenarioSlice | None]:
    ids = _split_ids(sl.vu_ids, weights)
    able = [w for w, mine in enumerate(ids) if mine]
    out: list[ScenarioSlice | None] = [None] * len(weights)
    if not able or not sl.index_offsets:
        return out
    # Residues go to the survivors that get VUs, in proportion to how many they get.
    caps = [len(ids[w]) for w in able]
    offsets = sl.index_offsets
    for j, w in enumerate(able):
        mine = [offsets[q] for q in owned_indices(j, caps, len(offsets))]
        if not mine:
            continue
        period, pattern = owned_pattern(w, weights)
        out[w] = replace(
            sl,
            vu_ids=ids[w],
            index_offsets=mine,
            pre_allocated_vus=owned_below(period, pattern, sl.pre_allocated_vus),
            skip_before_s=max(sl.skip_before_s, at_s),
            member=0,
        )
    return out


def owed(sl: ScenarioSlice) -> int:
    """The iterations an iteration-counting slice was planned to run."""
    if sl.executor == "shared-iterations":
        return owned_below(sl.index_period, sl.index_offsets, sl.iterations)
    vus = min(sl.steps[0][1] if sl.steps else 0, len(sl.vu_ids))
    return vus * sl.iterations


def _iterations(slices: Sequence[ScenarioSlice], done: int, weights: Sequence[int]) -> list[ScenarioSlice | None]:
    out: list[ScenarioSlice | None] = [None] * len(weights)
    left = sum(owed(sl) for sl in slices) - done
    ids = [i for sl in slices for i in sl.vu_ids[: min(sl.steps[0][1] if sl.steps else 0, len(sl.vu_ids))]]
    if left <= 0 or not ids:
        return out
    shares = _split_ids(ids, weights)
    able = [w for w, mine in enumerate(shares) if mine]
    caps = [len(shares[w]) for w in able]
    first = slices[0]
    for j, w in enumerate(able):
        period, pattern = owned_pattern(j, caps)
        if owned_below(period, pattern, left) == 0:
            continue
        n = len(shares[w])
        out[w] = replace(
            first,
            executor="shared-iterations",
            iterations=left,
            index_period=period,
            index_offsets=list(pattern),
            steps=[(0.0, n), (first.duration_s, 0)],
            vu_ids=shares[w],
            member=0,
        )
    return out

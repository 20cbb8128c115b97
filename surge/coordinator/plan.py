"""From validated options to one set of slices per worker (pure: no clock, no I/O).

Each scenario's global steps are split over the workers by weight (see
:func:`surge.common.schedule.split_steps`): at every instant the workers' VU counts add up to
the scenario's planned count exactly. Each VU gets a fleet-unique id: scenarios take
consecutive id ranges of their maximum VU count, and within a scenario the VU activated k-th
(0-based) has id ``range start + k + 1`` on whichever worker owns index k.

Who owns index 0 rotates from scenario to scenario: the owner order of each scenario starts
at worker ``range start % n``, so several small scenarios (a 1-VU smoke check beside a 1-VU
background poller) spread over the workers instead of all landing on worker 0.

The iteration and arrival-rate executors number their iterations fleet-wide too (shared
iterations ``0..iterations-1``, arrivals in order of their planned start); each worker's
slice carries an ownership rule (``index_period``, ``index_offsets``:
:func:`surge.common.schedule.owned_pattern`), with the workers' weights for per-vu-iterations
(whose numbers follow the VUs) and the workers' VU counts (``vus``, or their share of
``maxVUs``) for shared and arrival-rate iterations, so a worker without a VU owns none; and, for arrival-rate scenarios, the rate plan
itself (``rate_segments``, ``time_unit_s``), from which the worker computes its own instants.

A member may be a machine of several processes (``surge worker --processes N`` declares
``Hello.capacity = N``): :func:`plan_members` plans for every process of the fleet as if each
were a worker of its own, then gives each member the slices of its processes, each marked with
the process that plays it (``ScenarioSlice.member``). So 2 machines of 2 processes run exactly
what 4 single workers would: the same VU ids, the same iteration numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from surge.common.options import Executor, Options, ScenarioConfig
from surge.common.protocol import ScenarioSlice
from surge.common.schedule import max_vus, owned_below, owned_indices, owned_pattern, split_steps


# The share of an interval over which the members' reports are spread (Run.report_delay_s),
# and how many members share one phase.
REPORT_SPREAD = 0.5
REPORTS_PER_PHASE = 32


def report_delays_s(members: int, interval_s: float) -> list[float]:
    """How long after each interval's end each member sends that interval's report.

    Every member cuts its report at the same instants (the fleet's shared timeline), so
    without a phase a thousand members' reports of ~50 kB land in the same millisecond and
    wait in the coordinator's socket buffers together: ~50 MB for one instant, and a peak
    that grows with the fleet. So members take turns: at most :data:`REPORTS_PER_PHASE` of
    them share a phase (member ``i`` has phase ``i % phases``), and the phases are spread
    evenly over the first :data:`REPORT_SPREAD` of the interval. What lands at once is then
    bounded whatever the fleet (~1.5 MB), and the coordinator still reads the reports of one
    phase in one turn of its thread, handed to its loop in one batch: a phase per member
    costs a wake-up per report, which at 16 members doubled the CPU per report. A fleet of
    up to 32 members has one phase, 0: no delay at all. Half an interval, not all of it: the
    last phase's reports still come well before the next instant, and a run's end waits at
    most that long for them.
    """
    if members < 1 or not interval_s > 0:
        raise ValueError(f"need at least one member and a positive interval, got {members} and {interval_s!r}")
    phases = -(-members // REPORTS_PER_PHASE)
    return [interval_s * REPORT_SPREAD * (i % phases) / phases for i in range(members)]


def scenario_duration_s(sc: ScenarioConfig) -> float:
    """Length of the scenario's stages (or ``duration``, or ``maxDuration``), without graceful stop."""
    return sc.length_s()


def plan_slices(options: Options, weights: Sequence[int]) -> list[list[ScenarioSlice]]:
    """One list of :class:`ScenarioSlice` (one per scenario) for each worker, in worker order."""
    if not weights or any(w <= 0 for w in weights):
        raise ValueError(f"worker weights must be positive, got {list(weights)!r}")
    per_worker: list[list[ScenarioSlice]] = [[] for _ in weights]
    id_base = 0
    for sc in options.scenarios:
        steps = sc.steps()
        top = max_vus(steps)
        rotation = id_base % len(weights)
        shares = split_steps(steps, weights, rotation=rotation)
        segments = [(g.duration_s, g.from_rate, g.to_rate) for g in sc.arrival_plan().segments] if sc.executor.arrival_rate else []
        vu_rules = [owned_pattern(w, weights, rotation=rotation) for w in range(len(weights))]
        index_rules = vu_rules
        if sc.executor is Executor.SHARED_ITERATIONS or sc.executor.arrival_rate:
            index_rules = _by_capacity([owned_below(p, o, top) for p, o in vu_rules])
        for w, share in enumerate(shares):
            period, offsets = vu_rules[w]
            per_worker[w].append(
                ScenarioSlice(
                    name=sc.name,
                    executor=sc.executor.value,
                    exec_name=sc.exec_name,
                    start_time_s=sc.start_time_s,
                    duration_s=scenario_duration_s(sc),
                    graceful_stop_s=sc.graceful_stop_s,
                    graceful_ramp_down_s=sc.graceful_ramp_down_s,
                    steps=[(s.offset_s, s.vus) for s in share],
                    vu_ids=[id_base + k + 1 for k in owned_indices(w, weights, top, rotation=rotation)],
                    env=dict(sc.env),
                    tags=dict(sc.tags),
                    iterations=sc.iterations if sc.executor.counts_iterations else 0,
                    index_period=index_rules[w][0],
                    index_offsets=list(index_rules[w][1]),
                    rate_segments=segments,
                    time_unit_s=sc.time_unit_s,
                    pre_allocated_vus=owned_below(period, offsets, sc.pre_allocated_vus),
                )
            )
        id_base += top
    return per_worker


def plan_members(options: Options, capacities: Sequence[int]) -> list[list[ScenarioSlice]]:
    """One list of slices per member, for members of ``capacities[m]`` processes each.

    The plan is :func:`plan_slices` over every process (weight 1 each), in member order; member
    m gets its processes' slices, with ``member`` set to the process (0..capacities[m]-1).
    """
    if not capacities or any(c <= 0 for c in capacities):
        raise ValueError(f"member capacities must be positive, got {list(capacities)!r}")
    per_process = plan_slices(options, [1] * sum(capacities))
    out: list[list[ScenarioSlice]] = []
    first = 0
    for capacity in capacities:
        out.append([
            replace(sl, member=local)
            for local in range(capacity)
            for sl in per_process[first + local]
        ])
        first += capacity
    return out


def _by_capacity(capacity: Sequence[int]) -> list[tuple[int, tuple[int, ...]]]:
    """Ownership rules for iteration indices, weighted by each worker's VUs (none without VUs).

    Shared and arrival-rate iterations go to the workers in proportion to the VUs that can run
    them, not to the workers' weights: with ``vus: 1`` over two workers, the worker without a
    VU must own no iteration, or its share would never run (or all be dropped).
    """
    able = [w for w, c in enumerate(capacity) if c > 0]
    if not able:
        return [(1, ()) for _ in capacity]
    caps = [capacity[w] for w in able]
    rules: list[tuple[int, tuple[int, ...]]] = [(sum(caps), ()) for _ in capacity]
    for j, w in enumerate(able):
        rules[w] = owned_pattern(j, caps)
    return rules

"""Clock offsets between the coordinator and its workers, and the start instant they share.

Workers on different machines start their plans at one instant that the coordinator picks.
Each machine's monotonic clock has its own origin (boot time), so the coordinator measures,
for each worker, the difference between the worker's clock and its own from a few Ping/Pong
round trips made while the workers load the scenario (both ends stamp on their link threads:
:mod:`surge.common.wire`). With a symmetric path the worker's clock read at the moment the
Ping arrived is the coordinator's clock halfway through the round trip, so::

    offset = worker_t - (sent + arrived) / 2        error <= rtt / 2

The round trip with the shortest time wins, being the one least delayed by queueing (NTP's
rule). The coordinator then sends each worker ``Start.at = start + offset``, the shared instant
on that worker's own clock, and each worker's plan begins there: stage boundaries across
machines agree to within the estimate's error, typically well under a millisecond on a LAN.
"""

from __future__ import annotations

from dataclasses import dataclass

START_LEAD_S = 0.25  # the start instant is this far ahead of sending Start, plus the slowest round trip
LATE_START_S = 1.0  # a Start that arrives later than this after its instant starts at once instead


@dataclass(frozen=True)
class ClockSample:
    """A worker's clock against the coordinator's, from one Ping/Pong round trip.

    ``offset_s`` is the worker's monotonic clock minus the coordinator's, assuming the two
    legs took equally long; the error is at most ``rtt_s / 2``, and is much less when the path
    is symmetric. ``rounds`` is how many round trips were measured (the best one is kept).
    """

    offset_s: float
    rtt_s: float
    rounds: int = 1


def clock_sample(sent: float, worker_t: float, arrived: float, best: ClockSample | None) -> ClockSample | None:
    """The better of ``best`` and the sample from one round trip (coordinator times ``sent``, ``arrived``).

    A round trip that ends before it began is not a measurement (a Pong for a Ping this link
    never sent, or one from before a clock step) and changes nothing.
    """
    rtt = arrived - sent
    if rtt < 0:
        return best
    rounds = 1 if best is None else best.rounds + 1
    if best is not None and best.rtt_s <= rtt:
        return ClockSample(best.offset_s, best.rtt_s, rounds)
    return ClockSample(worker_t - (sent + arrived) / 2, rtt, rounds)


def start_lead_s(samples: list[ClockSample | None]) -> float:
    """How far ahead of now to put the start instant so that every Start arrives before it."""
    rtts = [s.rtt_s for s in samples if s is not None]
    return START_LEAD_S + (max(rtts) if rtts else 0.0)

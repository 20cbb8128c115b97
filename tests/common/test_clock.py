"""The clock offset estimate: exact for symmetric trips, the shortest trip wins, bad trips change nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from surge.common.clock import START_LEAD_S, ClockSample, clock_sample, start_lead_s

_offsets = st.floats(-1e6, 1e6, allow_nan=False)
_times = st.floats(0, 1e6, allow_nan=False)
_legs = st.floats(0, 5, allow_nan=False)


@given(_offsets, _times, _legs)
def test_a_symmetric_round_trip_gives_the_offset_exactly(offset: float, sent: float, leg: float) -> None:
    worker_t = sent + leg + offset  # the worker reads its clock halfway through the trip
    got = clock_sample(sent, worker_t, sent + 2 * leg, None)
    assert got is not None
    assert abs(got.offset_s - offset) <= 1e-6 * max(1.0, abs(offset), sent)
    assert got.rtt_s == sent + 2 * leg - sent and got.rounds == 1


@given(_offsets, _times, _legs, _legs)
def test_the_error_is_at_most_half_the_round_trip(offset: float, sent: float, out: float, back: float) -> None:
    arrived = sent + out + back
    got = clock_sample(sent, sent + out + offset, arrived, None)
    assert got is not None
    assert abs(got.offset_s - offset) <= got.rtt_s / 2 + 1e-6 * max(1.0, abs(offset), sent)


@given(st.lists(st.tuples(_times, _legs, _legs), min_size=1, max_size=20), _offsets)
def test_the_shortest_round_trip_wins_and_every_round_is_counted(trips: list[tuple[float, float, float]], offset: float) -> None:
    best: ClockSample | None = None
    for sent, out, back in trips:
        best = clock_sample(sent, sent + out + offset, sent + out + back, best)
    assert best is not None
    assert best.rounds == len(trips)
    assert best.rtt_s == min((s + o + b) - s for s, o, b in trips)


def test_a_round_trip_that_ends_before_it_began_changes_nothing() -> None:
    prior = ClockSample(0.5, 0.01, 3)
    assert clock_sample(10.0, 3.0, 9.0, prior) is prior
    assert clock_sample(10.0, 3.0, 9.0, None) is None


def test_the_start_lead_covers_the_slowest_round_trip() -> None:
    assert start_lead_s([]) == START_LEAD_S
    assert start_lead_s([None, ClockSample(0, 0.1), ClockSample(5, 0.3)]) == START_LEAD_S + 0.3

"""The handover ledger: nothing of a lost worker's share is dropped unseen, and a stranger's answer changes nothing."""

from __future__ import annotations

from typing import Any

from surge.common.options import parse_options
from surge.common.protocol import ScenarioSlice
from surge.coordinator.handover import Handovers
from surge.coordinator.plan import plan_slices
from surge.coordinator.takeover import owed
from surge.worker.machine import route_takeover


def _plan(raw: dict[str, Any], n: int) -> list[list[ScenarioSlice]]:
    options, problems = parse_options({"scenarios": {"s": raw}})
    assert problems == [] and options is not None
    return plan_slices(options, [1] * n)


SHARED = {"executor": "shared-iterations", "vus": 6, "iterations": 60, "maxDuration": "1m"}


def test_a_handover_is_pending_until_answered_and_what_comes_back_leaves_its_worker() -> None:
    ledger = Handovers(_plan(SHARED, 3))
    left = ledger.lost(0)
    sends = ledger.hand_over("w0", left, {"s": 5}, 2.0, [(1, 1), (2, 1)])
    assert set(sends) == {1, 2} and len(ledger.pending) == 2
    seq1, to_w1 = sends[1]
    assert sum(owed(sl) for _, new in sends.values() for sl in new) == 20 - 5
    assert ledger.taken(1, seq1, []) is None and seq1 not in ledger.pending  # played: nothing comes back
    seq2, to_w2 = sends[2]
    back = ledger.taken(2, seq2, [to_w2[0]])
    assert back is not None and back.lost == "w0" and back.slices == to_w2[:1]
    assert to_w2[0] not in ledger.playing[2] and not ledger.pending


def test_a_worker_lost_with_a_takeover_pending_passes_it_on_with_the_rest() -> None:
    ledger = Handovers(_plan(SHARED, 3))
    sends = ledger.hand_over("w0", ledger.lost(0), {}, 2.0, [(1, 1), (2, 1)])
    left = ledger.lost(1)  # before it answered
    assert all(sl in left for sl in sends[1][1]) and all(p.worker != 1 for p in ledger.pending.values())
    assert ledger.playing[1] == []


def test_an_answer_that_is_not_pending_or_names_slices_never_sent_changes_nothing() -> None:
    ledger = Handovers(_plan(SHARED, 3))
    sends = ledger.hand_over("w0", ledger.lost(0), {}, 2.0, [(1, 1), (2, 1)])
    seq, _ = sends[1]
    stranger = _plan({"executor": "constant-vus", "vus": 1, "duration": "5s"}, 1)[0]
    assert ledger.taken(2, seq, stranger) is None and seq in ledger.pending  # not worker 2's
    assert ledger.taken(1, seq, stranger) is None  # answered, with nothing of its own handed back
    assert ledger.taken(1, 999, []) is None


def test_a_machine_routes_a_finished_processes_slices_to_those_still_playing() -> None:
    slices = [sl for w in _plan(SHARED, 4) for sl in w]
    marked = [s.__class__(**{**s.__dict__, "member": i}) for i, s in enumerate(slices)]
    routed = route_takeover(marked, [1, 3])
    assert [s.member for s in routed] == [1, 1, 3, 3]

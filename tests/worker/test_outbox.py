"""The outbox at its seam, the link: what goes on the wire, and when.

A report is offered (a small ``Offer`` with its size) and goes on the wire only once the
coordinator grants it; what is not acknowledged is offered again on the resend backoff, never
resent unasked; the numbers, the held delta of a full outbox and the final report behave as
before grants. The clock is a fake one that the test moves.
"""

from __future__ import annotations

from surge.common.metrics import CounterSink
from surge.common.protocol import Message, Offer, Report, decode, encode
from surge.worker.outbox import Outbox


class _Wire:
    """The link's side of the seam: every frame the outbox hands it, decoded."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def take(self) -> list[Message]:
        out = [decode(f) for f in self.frames]
        self.frames.clear()
        return out


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _report(n: float = 1.0, *, final: bool = False) -> Report:
    return Report("r", 0, 1.0, {"http_reqs": CounterSink(n)}, {}, final=final)


def test_a_report_is_offered_with_its_size_and_sent_only_once_granted() -> None:
    wire, clock = _Wire(), _Clock()
    box = Outbox(wire.send, clock, resend_after_s=3.0)
    box.put(_report(5.0))
    (offer,) = wire.take()
    assert isinstance(offer, Offer) and (offer.run_id, offer.seq) == ("r", 1)
    assert offer.size == len(encode(Report("r", 1, 1.0, {"http_reqs": CounterSink(5.0)}, {})))
    assert 1 in box and not box.drained
    assert box.grant(1) is True
    (sent,) = wire.take()
    assert isinstance(sent, Report) and sent.seq == 1 and sent.series["http_reqs"].to_wire() == [5.0]
    assert box.grant(99) is False and wire.take() == []  # a grant of nothing pending sends nothing


def test_what_is_not_acknowledged_is_offered_again_on_the_backoff_not_resent() -> None:
    wire, clock = _Wire(), _Clock()
    box = Outbox(wire.send, clock, resend_after_s=3.0)
    box.put(_report())
    wire.take()
    box.grant(1)
    wire.take()
    clock.t += 2.9
    box.resend_due()
    assert wire.take() == []
    clock.t += 0.2
    box.resend_due()
    assert [type(m) for m in wire.take()] == [Offer]  # the offer again, the report only when granted
    clock.t += 5.9  # the backoff doubled: 6 s
    box.resend_due()
    assert wire.take() == []
    clock.t += 0.2
    box.resend_due()
    assert [type(m) for m in wire.take()] == [Offer]
    assert box.settle(1) is True and len(box) == 0


def test_a_full_outbox_holds_and_the_final_report_is_always_offered() -> None:
    wire, clock = _Wire(), _Clock()
    box = Outbox(wire.send, clock, max_outbox=2)
    for n in (1.0, 2.0, 3.0, 4.0):
        box.put(_report(n))
    assert [m.seq for m in wire.take() if isinstance(m, Offer)] == [1, 2]  # 3 and 4 merged and held
    box.put(_report(10.0, final=True))  # merged with the held delta, and past the bound: it is final
    assert [m.seq for m in wire.take() if isinstance(m, Offer)] == [3]
    for seq in (1, 2, 3):
        assert box.grant(seq)
    sent = [m for m in wire.take() if isinstance(m, Report)]
    assert [(m.seq, m.series["http_reqs"].to_wire(), m.final) for m in sent] == [
        (1, [1.0], False), (2, [2.0], False), (3, [17.0], True)]
    for seq in (1, 2):
        box.settle(seq)
    assert not box.drained
    box.settle(3)
    assert box.drained

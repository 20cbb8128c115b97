"""Session.gather records each member's capacity, and refuses one outside 1..1024, saying why."""

from __future__ import annotations

import asyncio

import pytest

from surge.common.errors import WorkerLost
from surge.common.protocol import Hello, Message, Refuse, Welcome
from surge.common.dealer import DealerLink
from surge.common.router import RouterLink
from surge.coordinator.session import Session


async def _first_answer(link: DealerLink) -> Message:
    while True:
        msg = await asyncio.wait_for(link.recv(), 10)
        if isinstance(msg, (Welcome, Refuse)):
            return msg


async def _gather(hellos: list[Hello], expect: int) -> tuple[list[Message], Session, list[str] | Exception]:
    chan = RouterLink("tcp://127.0.0.1:*")
    session = Session(chan, expect_workers=expect, gather_timeout_s=3.0)
    links = [DealerLink(chan.endpoint, hello=h, silence_s=30, on_silence=lambda: None, heartbeat_s=0.2) for h in hellos]
    gathering = asyncio.ensure_future(session.gather())
    try:
        answers = [await _first_answer(link) for link in links]
        try:
            names: list[str] | Exception = await gathering
        except WorkerLost as exc:
            names = exc
        return answers, session, names
    finally:
        for link in links:
            link.close()
        chan.close()


def test_a_member_s_capacity_is_recorded_in_worker_order() -> None:
    answers, session, names = asyncio.run(_gather([Hello("m", "h", 1, capacity=3), Hello("w", "h", 2)], 2))
    assert all(isinstance(a, Welcome) for a in answers)
    assert names == ["m", "w"] or names == ["w", "m"]
    assert isinstance(names, list)
    assert dict(zip(names, session.capacities)) == {"m": 3, "w": 1}


@pytest.mark.parametrize("capacity", [0, -2, 1025])
def test_a_capacity_out_of_range_is_refused_for_good(capacity: int) -> None:
    answers, session, names = asyncio.run(_gather([Hello("m", "h", 1, capacity=capacity)], 1))
    (answer,) = answers
    assert isinstance(answer, Refuse) and answer.retry_s == 0
    assert f"capacity {capacity} is out of range" in answer.reason and "1 to 1024" in answer.reason
    assert isinstance(names, WorkerLost)  # it never joined
    assert session.capacities == []

"""Session's load phase: a worker that goes silent while the others load the scenario is lost,
named, and the run ends there with no load sent; the workers that answered are not blamed."""

from __future__ import annotations

import asyncio

import pytest

from surge.common.dealer import DealerLink
from surge.common.errors import WorkerLost
from surge.common.protocol import Hello, Ready, Stop, Welcome
from surge.common.router import RouterLink
from surge.coordinator.session import Session


def test_a_worker_silent_while_the_others_load_is_lost_and_named() -> None:
    async def main() -> None:
        chan = RouterLink("tcp://127.0.0.1:*")
        session = Session(chan, expect_workers=3, gather_timeout_s=10.0, load_timeout_s=30.0, worker_timeout_s=1.0)
        links = [DealerLink(chan.endpoint, hello=Hello(f"w{i}", "here", 1), silence_s=30, on_silence=lambda: None,
                            heartbeat_s=0.2) for i in range(3)]
        try:
            gathering = asyncio.ensure_future(session.gather())
            for link in links:
                while not isinstance(await asyncio.wait_for(link.recv(), 10), Welcome):
                    pass
                link.welcomed()
            await asyncio.wait_for(gathering, 10)
            peers = sorted(session._peers.values(), key=lambda p: p.index)
            links[1].close()  # w1: not a frame more from it
            for link in (links[0], links[2]):
                link.send(Ready("r"))
            with pytest.raises(WorkerLost, match=r"worker\(s\) w1 went silent while loading the scenario") as lost:
                await asyncio.wait_for(session._await_ready("r", peers), 20)
            assert "w0" not in str(lost.value) and "w2" not in str(lost.value)
            assert [p.ready for p in peers if p.name != "w1"] == [True, True]
            for link in (links[0], links[2]):  # the others are told to stop: no load goes out
                while not isinstance(msg := await asyncio.wait_for(link.recv(), 10), Stop):
                    pass
                assert msg.run_id == "r"
        finally:
            for link in links:
                link.close()
            chan.close()

    asyncio.run(main())

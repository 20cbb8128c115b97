"""The router's grant budget on real ZeroMQ sockets over 127.0.0.1.

Twenty peers each have six reports of ~20 kB ready, far more than the budget. While the
coordinator's loop takes nothing, the thread grants no more than the budget's worth; as the
loop takes, it grants the rest; every report arrives exactly once and in each peer's order. A
re-offer of an applied report is answered with an Ack by the thread. Waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import time

import zmq

from surge.common.metrics import CounterSink, Sink
from surge.common.protocol import Ack, Grant, Hello, Offer, Report, decode, encode
from surge.common.router import Arrival, RouterLink

PEERS, REPORTS = 20, 6


def _frame(seq: int) -> bytes:
    series: dict[str, Sink] = {f"c{i}": CounterSink(float(seq)) for i in range(1500)}  # ~20 kB
    return encode(Report("r", seq, 1.0, series, {}))


def _grants(socks: list[zmq.Socket[bytes]]) -> list[tuple[int, int]]:
    """(peer, seq) of every Grant waiting on the peers' sockets now."""
    out: list[tuple[int, int]] = []
    for i, sock in enumerate(socks):
        while sock.poll(0):
            msg = decode(sock.recv())
            if isinstance(msg, Grant):
                out.append((i, msg.seq))
    return out


def test_the_fleet_s_reports_are_granted_within_the_budget_and_all_arrive_once_in_order() -> None:
    frames = {seq: _frame(seq) for seq in range(1, REPORTS + 1)}
    size = len(frames[1])
    budget = 5 * size  # five reports in flight, of the fleet's 120

    async def main() -> None:
        router = RouterLink("tcp://127.0.0.1:*", grant_budget=budget)
        ctx = zmq.Context()
        socks: list[zmq.Socket[bytes]] = []
        try:
            idents: list[bytes] = []
            for i in range(PEERS):
                sock = ctx.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(router.endpoint)
                sock.send(encode(Hello(f"w{i}", "here", i)))
                got = await asyncio.wait_for(router.recv(), 10)
                assert isinstance(got, Arrival) and isinstance(got.msg, Hello)
                router.watch(got.identity)
                idents.append(got.identity)
                socks.append(sock)
            index = {ident: i for i, ident in enumerate(idents)}
            for sock in socks:
                for seq in frames:
                    sock.send(encode(Offer("r", seq, size)))
            # The loop takes nothing: what is granted is sent at once, and no more is granted.
            granted: list[tuple[int, int]] = []
            deadline = time.monotonic() + 10
            while len(granted) < 5 and time.monotonic() < deadline:
                for peer, seq in _grants(socks):
                    granted.append((peer, seq))
                    socks[peer].send(frames[seq])
                time.sleep(0.01)
            time.sleep(0.3)  # the thread has had its turns: nothing more may come
            for peer, seq in _grants(socks):
                granted.append((peer, seq))
                socks[peer].send(frames[seq])
            assert len(granted) == 5, f"{len(granted)} reports granted at once with room for 5"
            assert router.grants.waiting == PEERS * REPORTS - 5
            # The loop takes: the rest is granted as it goes, every report arrives once, in order.
            seen: dict[int, list[int]] = {i: [] for i in range(PEERS)}
            while sum(map(len, seen.values())) < PEERS * REPORTS:
                got = router.recv_nowait()
                if got is None:
                    for peer, seq in _grants(socks):
                        granted.append((peer, seq))
                        socks[peer].send(frames[seq])
                    await asyncio.sleep(0.005)
                    continue
                assert isinstance(got, Arrival) and isinstance(got.msg, Report) and got.size == size
                seen[index[got.identity]].append(got.msg.seq)
                assert router.grants.outstanding_bytes + router.unread * size <= budget
            assert all(seqs == list(frames) for seqs in seen.values())
            assert len(granted) == PEERS * REPORTS and router.ungranted == 0
            # A re-offer of what the session applied is acknowledged by the thread, not granted.
            router.applied(idents[0], "r", REPORTS + 1)
            socks[0].send(encode(Offer("r", 2, size)))
            assert socks[0].poll(10_000)
            assert decode(socks[0].recv()) == Ack("r", 2)
        finally:
            for sock in socks:
                sock.close()
            ctx.term()
            router.close()

    asyncio.run(main())

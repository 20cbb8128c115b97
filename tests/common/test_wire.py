"""The links' I/O threads, on real ZeroMQ sockets over 127.0.0.1.

What must hold whatever the event loop does: heartbeats go out and are stamped on arrival
while a loop is blocked; the coordinator-loss guard fires from the thread when the loop
cannot; a watched peer's bad frame comes back as :class:`Refused` with the report it claimed
to be. Waits are bounded polls, never asserted durations.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import msgpack
import pytest
import zmq

from surge.common.metrics import CounterSink, Sink
from surge.common.protocol import PROTOCOL_VERSION, Ack, Heartbeat, Hello, Report, Welcome, decode, encode
from surge.common.dealer import DealerLink
from surge.common.router import Arrival, Refused, RouterLink
from surge.common.wire import LinkError, check_endpoint


def _hello() -> Hello:
    return Hello("w", "here", 1)


async def _welcomed_pair(silence_s: float = 60.0, **kw: object) -> tuple[RouterLink, DealerLink, bytes]:
    router = RouterLink("tcp://127.0.0.1:*")
    dealer = DealerLink(router.endpoint, hello=_hello(), silence_s=silence_s, on_silence=lambda: None, **kw)  # type: ignore[arg-type]
    got = await asyncio.wait_for(router.recv(), 10)
    assert isinstance(got, Arrival) and isinstance(got.msg, Hello)
    router.watch(got.identity)
    router.send(got.identity, Welcome(0))
    assert isinstance(await asyncio.wait_for(dealer.recv(), 10), Welcome)
    dealer.welcomed()
    return router, dealer, got.identity


def test_bad_endpoints_are_one_line_link_errors() -> None:
    with pytest.raises(LinkError, match="99999"):
        check_endpoint("tcp://127.0.0.1:99999")
    assert check_endpoint("tcp://127.0.0.1:*") == "tcp://127.0.0.1:*"


def test_heartbeats_flow_and_are_stamped_on_arrival_while_the_loop_is_blocked() -> None:
    async def main() -> tuple[float, float]:
        router, dealer, ident = await _welcomed_pair()
        try:
            before = router.last_arrival(ident)
            assert before is not None
            time.sleep(2.5)  # the loop that runs both ends is blocked, as by scenario code
            arrived = router.last_arrival(ident)
            assert arrived is not None
            hb = router.health(ident)
            assert hb is not None
            return router.now() - arrived, hb.stall_s
        finally:
            dealer.close()
            router.close()

    silence, stall = asyncio.run(main())
    assert silence < 1.5  # heartbeats came from the thread and were stamped when they arrived
    assert stall > 0.4  # and they said that the worker's loop was not running


def test_the_coordinator_loss_guard_fires_from_its_thread_when_the_loop_cannot() -> None:
    wedged = threading.Event()
    reasons: list[str] = []

    def on_wedged(reason: str) -> None:
        reasons.append(reason)
        wedged.set()

    async def main() -> bool:
        router, dealer, _ = await _welcomed_pair(silence_s=0.5, on_wedged=on_wedged, stall_site=lambda: "s.py:3 in default")
        try:
            router.close()  # the coordinator is gone
            deadline = time.monotonic() + 15
            while not wedged.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)  # the loop is held: only the link's thread can act
            return wedged.is_set()
        finally:
            dealer.close()

    assert asyncio.run(main())
    assert "s.py:3 in default" in reasons[0] and "no word from the coordinator" in reasons[0]


def test_a_watched_peers_bad_report_comes_back_with_the_number_it_claimed() -> None:
    async def main() -> Refused:
        router, dealer, ident = await _welcomed_pair()
        try:
            bad = {"v": PROTOCOL_VERSION, "k": "report", "run_id": "r1", "seq": 7, "elapsed_s": 1.0,
                   "series": {"x": ["counter", [float("inf")]]}, "checks": {}, "final": True, "aborted": ""}
            dealer._queue([msgpack.packb(bad)])  # real bytes through the real socket
            while True:
                got = await asyncio.wait_for(router.recv(), 10)
                if isinstance(got, Refused):
                    return got
        finally:
            dealer.close()
            router.close()

    refused = asyncio.run(main())
    assert refused.report == ("r1", 7, True)
    assert "finite" in refused.reason and refused.peer.startswith("127.0.0.1")


def test_the_links_thread_survives_a_fault_and_keeps_beating() -> None:
    async def main() -> tuple[float, int]:
        router, dealer, ident = await _welcomed_pair()
        real = dealer._beat_now
        calls = [0]

        def flaky(now: float) -> None:
            calls[0] += 1
            if calls[0] == 1:
                raise BrokenPipeError("stderr is gone")
            real(now)

        dealer._beat_now = flaky  # type: ignore[method-assign]
        try:
            deadline = time.monotonic() + 10
            while dealer.faults == 0 or calls[0] < 3:
                assert time.monotonic() < deadline, "the thread stopped beating"
                await asyncio.sleep(0.1)
            arrived = router.last_arrival(ident)
            assert arrived is not None
            return router.now() - arrived, dealer.faults
        finally:
            dealer.close()
            router.close()

    silence, faults = asyncio.run(main())
    assert faults == 1 and silence < 1.5


@pytest.mark.parametrize("endpoint", ["tcp://*:5557", "ipc:///tmp/" + "x" * 300])
def test_a_worker_that_cannot_connect_says_so_at_once_even_with_keys(endpoint: str, tmp_path: Path) -> None:
    from surge.common.curve import load_worker_keys, write_keys

    write_keys(tmp_path / "keys")
    keys = load_worker_keys(tmp_path / "keys")

    async def main() -> None:
        DealerLink(endpoint, hello=_hello(), silence_s=5, on_silence=lambda: None, keys=keys)

    with pytest.raises(LinkError, match="connect"):
        asyncio.run(asyncio.wait_for(main(), 10))  # it used to hang in zmq's term()


def test_clock_probes_are_answered_and_measured_on_the_threads_even_while_the_loop_is_blocked() -> None:
    # Both ends share this host's monotonic clock, so the true offset is 0 and the estimate
    # must lie within half its round trip (the worker's reading falls inside the trip).
    async def main() -> tuple[float, float, int]:
        router, dealer, ident = await _welcomed_pair()
        try:
            assert router.clock(ident) is None
            for _ in range(3):
                router.probe(ident)
                time.sleep(0.2)  # the loop is blocked: only the two threads can answer and stamp
            sample = router.clock(ident)
            assert sample is not None
            return sample.offset_s, sample.rtt_s, sample.rounds
        finally:
            dealer.close()
            router.close()

    offset, rtt, rounds = asyncio.run(main())
    assert rounds == 3
    assert rtt >= 0 and abs(offset) <= rtt / 2


def test_a_blocked_coordinator_loop_bounds_its_inbox_without_losing_frames_or_judging_anyone_silent() -> None:
    # Backpressure: a loop that does not read leaves at most max_unread decoded messages
    # queued; the rest wait undecoded in ZeroMQ. The time the thread did not read is not
    # silence, and once the loop reads again every frame comes, in order (the bad one as
    # Refused with its seq), and a peer that then says nothing does become silent.
    async def main() -> None:
        router = RouterLink("tcp://127.0.0.1:*", max_unread=8)
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(router.endpoint)
        try:
            dealer.send(encode(_hello()))
            got = await asyncio.wait_for(router.recv(), 10)
            assert isinstance(got, Arrival)
            ident = got.identity
            router.watch(ident)
            n, bad_seq = 400, 200
            for seq in range(1, n + 1):
                if seq == bad_seq:
                    bad = {"v": PROTOCOL_VERSION, "k": "report", "run_id": "r", "seq": seq, "elapsed_s": 1.0,
                           "series": {"x": ["counter", [float("nan")]]}, "checks": {}}
                    dealer.send(msgpack.packb(bad))
                else:
                    dealer.send(encode(Report("r", seq, 1.0, {}, {})))
            # The loop is blocked (as by a long merge) while the worker goes on beating.
            blocked_from = time.monotonic()
            deadline = blocked_from + 10
            while router.pauses == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert router.pauses >= 1
            for _ in range(15):
                dealer.send(encode(Heartbeat()))
                time.sleep(0.1)
                assert router.unread <= 8
            blocked = time.monotonic() - blocked_from
            last = router.last_arrival(ident)
            assert last is not None
            assert router.now() - last < blocked  # the link was deaf, not the worker silent
            seqs: list[int] = []
            refused: list[Refused] = []
            while len(seqs) + len(refused) < n:
                item = await asyncio.wait_for(router.recv(), 10)
                assert router.unread <= 8
                if isinstance(item, Refused):
                    refused.append(item)
                elif isinstance(item.msg, Report):
                    seqs.append(item.msg.seq)
            assert seqs == [s for s in range(1, n + 1) if s != bad_seq]
            assert [r.report for r in refused] == [("r", bad_seq, False)]
            # Reading again: a peer that says nothing more is silent, in listening time.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                last = router.last_arrival(ident)
                assert last is not None
                if router.now() - last > 0.5:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("a peer that stopped sending never became silent")
        finally:
            dealer.close()
            ctx.term()
            router.close()

    asyncio.run(main())


def test_a_resend_of_an_applied_report_is_acknowledged_by_the_thread_without_reaching_the_loop() -> None:
    async def main() -> tuple[list[int], list[tuple[str, int]], int]:
        router = RouterLink("tcp://127.0.0.1:*")
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(router.endpoint)
        try:
            dealer.send(encode(_hello()))
            got = await asyncio.wait_for(router.recv(), 10)
            assert isinstance(got, Arrival)
            router.watch(got.identity)
            router.applied(got.identity, "r", 3)  # the session has applied seqs 1 and 2
            series: dict[str, Sink] = {f"c{i}": CounterSink(1.0) for i in range(400)}  # a report-sized frame
            for seq in (2, 1, 3):
                dealer.send(encode(Report("r", seq, 1.0, series, {})))
            dealer.send(encode(Report("other-run", 1, 1.0, series, {})))
            delivered: list[int] = []
            while len(delivered) < 2:
                item = await asyncio.wait_for(router.recv(), 10)
                assert isinstance(item, Arrival) and isinstance(item.msg, Report)
                delivered.append(item.msg.seq)
            acks: list[tuple[str, int]] = []
            while len(acks) < 2 and dealer.poll(10_000):
                msg = decode(dealer.recv())
                if isinstance(msg, Ack):
                    acks.append((msg.run_id, msg.seq))
            return delivered, acks, router.duplicates
        finally:
            dealer.close()
            ctx.term()
            router.close()

    delivered, acks, duplicates = asyncio.run(main())
    assert delivered == [3, 1]  # seq 3 of run r, and the other run's seq 1
    assert acks == [("r", 2), ("r", 1)] and duplicates == 2


def test_a_round_trip_longer_than_the_gap_between_probes_still_counts() -> None:
    # A far worker: every Ping is answered only after the next ones have left. Each answer is
    # matched by its own stamp, so every round counts (only the last one would, else none).
    import zmq

    from surge.common.protocol import Ping, Pong, decode, encode

    async def main() -> int:
        router = RouterLink("tcp://127.0.0.1:*")
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(router.endpoint)
        try:
            dealer.send(encode(_hello()))
            got = await asyncio.wait_for(router.recv(), 10)
            assert isinstance(got, Arrival)
            router.watch(got.identity)
            for _ in range(3):
                router.probe(got.identity)
                await asyncio.sleep(0.05)
            pings = []
            while len(pings) < 3:
                assert dealer.poll(5000), "no Ping arrived"
                msg = decode(dealer.recv())
                if isinstance(msg, Ping):
                    pings.append(msg)
            for ping in pings:  # all answered late, after the last Ping left
                dealer.send(encode(Pong(ping.t, time.monotonic())))
            for _ in range(100):
                sample = router.clock(got.identity)
                if sample is not None and sample.rounds == 3:
                    break
                await asyncio.sleep(0.02)
            sample = router.clock(got.identity)
            assert sample is not None
            return sample.rounds
        finally:
            dealer.close(linger=0)
            ctx.term()
            router.close()

    assert asyncio.run(main()) == 3


class _WakeWhileDraining:
    """The wake-up pipe's reading end, with the loop queueing a frame during every read."""

    def __init__(self, pipe: object, on_read: object) -> None:
        self._pipe, self._on_read = pipe, on_read

    def recv(self, n: int) -> bytes:
        self._on_read()  # type: ignore[operator]
        return self._pipe.recv(n)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._pipe, name)


def _pipe_bytes(link: RouterLink) -> int:
    got = 0
    try:
        while chunk := link._wake_r.recv(4096):
            got += len(chunk)
    except BlockingIOError:
        pass
    return got


def test_wake_ups_are_one_byte_per_turn_and_never_lost_to_a_drain() -> None:
    """Frames queued from the loop wake the thread once until it has drained the pipe; one
    queued while it drains still leaves a wake-up for later ones (the flag is cleared after
    the drain, so it is never left set with the pipe empty). The thread is stopped first,
    and the turns are played by hand, so the interleaving is exact."""

    async def main() -> None:
        link = RouterLink("tcp://127.0.0.1:*")
        try:
            link._closing.set()
            link._queue_wake()  # the thread's last turn
            assert link._thread is not None
            link._thread.join(10)
            assert not link._thread.is_alive()
            _pipe_bytes(link)
            link._wake_pending = False
            link._out.clear()

            for _ in range(100):
                link._queue([b"peer", b"frame"])
            assert _pipe_bytes(link) == 1  # one wake-up for the hundred
            link._wake_pending = True  # as if that byte were still in the pipe: now drained below
            link._wake_w.send(b"\0")

            real = link._wake_r
            link._wake_r = _WakeWhileDraining(real, lambda: link._queue([b"peer", b"late"]))  # type: ignore[assignment]
            link._drain_wake()
            link._wake_r = real
            # the "late" frames were queued while it drained: this turn writes them (they are in _out) ...
            assert list(link._out)[-1] == [b"peer", b"late"]
            # ... and the next frame still wakes the thread
            link._queue([b"peer", b"next"])
            assert _pipe_bytes(link) == 1
        finally:
            link.close()

    asyncio.run(main())


async def _hello_by_hand(link: RouterLink, dealer: zmq.Socket[bytes]) -> Arrival:
    """``dealer`` says hello to a link whose thread is stopped: one turn read by hand, the
    Arrival handed over through the loop, and its sender watched."""
    dealer.send(encode(_hello()))
    deadline = time.monotonic() + 10
    while not link._sock.poll(0) and time.monotonic() < deadline:
        time.sleep(0.02)
    link._read_all()
    got = await asyncio.wait_for(link.recv(), 10)
    assert isinstance(got, Arrival)
    link.watch(got.identity)
    return got


def test_turns_that_leave_frames_waiting_are_not_listening_time() -> None:
    """A link that reads without pause but ends a turn with frames still in the socket is
    behind: until a turn empties the socket, that time is left out of its peers' silence
    (their heartbeats wait in ZeroMQ behind their reports). Turns are played by hand, with
    the thread stopped, reading two frames a turn."""

    async def main() -> None:
        link = RouterLink("tcp://127.0.0.1:*")
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        try:
            link._closing.set()
            link._queue_wake()
            assert link._thread is not None
            link._thread.join(10)
            link._read_per_turn = 2  # type: ignore[misc]
            dealer.connect(link.endpoint)
            got = await _hello_by_hand(link, dealer)
            for _ in range(7):
                dealer.send(encode(Heartbeat()))
            time.sleep(0.3)  # let them all reach the ROUTER (loopback); the turns below do not depend on it
            behind_turns = 0
            for _ in range(20):
                before = link._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN
                link._read_all()
                behind = link._behind
                assert (link._deaf[1] is not None) == behind  # a stretch open exactly while behind
                if behind:
                    behind_turns += 1
                    assert link.last_arrival(got.identity) == pytest.approx(link.now(), abs=0.05)  # never silent while behind
                if not before and not behind:
                    break
            assert behind_turns >= 1
            assert not link._behind and link._deaf[1] is None and link.deaf_s() > 0.0
        finally:
            dealer.close()
            ctx.term()
            link.close()

    asyncio.run(main())


def _kinds(sock: zmq.Socket[bytes]) -> list[str]:
    """The kinds of the frames waiting in ``sock`` (its last part of each message), in order."""
    out = []
    while sock.poll(200):
        out.append(type(decode(sock.recv_multipart()[-1])).__name__)
    return out


def test_the_coordinator_beats_only_to_peers_it_sent_nothing_else_since_the_last_beat() -> None:
    """A worker takes any frame as word from the coordinator: a peer sent an Ack since the last
    beat gets no Heartbeat at the next one, a peer sent nothing gets it, and so does the first
    at the beat after, when nothing else went to it. Turns are played by hand, the thread stopped."""

    async def main() -> None:
        link = RouterLink("tcp://127.0.0.1:*")
        ctx = zmq.Context()
        dealers = [ctx.socket(zmq.DEALER) for _ in range(2)]
        try:
            link._closing.set()
            link._queue_wake()
            assert link._thread is not None
            link._thread.join(10)
            identities = []
            for d in dealers:
                d.setsockopt(zmq.LINGER, 0)
                d.connect(link.endpoint)
                identities.append((await _hello_by_hand(link, d)).identity)
            chatty, quiet = dealers

            link.send(identities[0], Ack("run", 1))
            link._write_all()
            link._beat_now(link.now())
            link._write_all()
            assert _kinds(chatty) == ["Ack"]
            assert _kinds(quiet) == ["Heartbeat"]

            link._beat_now(link.now())  # nothing else went to either since the last beat
            link._write_all()
            assert _kinds(chatty) == ["Heartbeat"]
            assert _kinds(quiet) == ["Heartbeat"]
        finally:
            for d in dealers:
                d.close()
            ctx.term()
            link.close()

    asyncio.run(main())


def test_a_worker_beats_unless_what_it_sent_since_the_last_beat_said_it_all() -> None:
    """The coordinator takes any frame as word from a worker: after a frame went out, the next
    beat is skipped while the loop is well and was at the last beat; a stall is told even right
    after a frame, and so is its end. The beats are asked for by hand (the thread's own come
    once an hour here), after the frame they follow was seen to arrive."""

    async def main() -> None:
        ctx = zmq.Context()
        coordinator = ctx.socket(zmq.ROUTER)
        coordinator.setsockopt(zmq.LINGER, 0)
        port = coordinator.bind_to_random_port("tcp://127.0.0.1")
        dealer = DealerLink(f"tcp://127.0.0.1:{port}", hello=_hello(), silence_s=3600.0, on_silence=lambda: None,
                            heartbeat_s=3600.0)
        try:
            assert coordinator.poll(10_000)  # its first beacon, a Hello
            assert _kinds(coordinator) == ["Hello"]
            dealer.welcomed()

            def beat() -> str | None:  # a beat of a loop that is well (this test holds the loop itself)
                dealer.loop_alive = time.monotonic()
                frame = dealer._next_beat(time.monotonic())
                return None if frame is None else type(decode(frame)).__name__

            def say() -> None:  # a frame, sent by the thread, seen to arrive
                dealer.send(Ack("run", 1))
                assert coordinator.poll(10_000)
                assert _kinds(coordinator) == ["Ack"]

            assert beat() == "Heartbeat"  # nothing sent yet
            say()
            assert beat() is None  # the frame said the loop is well, as the last beat did
            assert beat() == "Heartbeat"  # nothing since
            say()
            dealer.loop_alive = time.monotonic() - 5.0  # the loop has not run for 5 s
            frame = dealer._next_beat(time.monotonic())
            assert frame is not None
            stalled = decode(frame)
            assert isinstance(stalled, Heartbeat) and stalled.stall_s >= 5.0
            say()
            assert beat() == "Heartbeat"  # the stall's end is told, though a frame went out
            say()
            assert beat() is None
        finally:
            dealer.close()
            coordinator.close()
            ctx.term()

    asyncio.run(main())

"""The agent against a scripted coordinator on a real ZeroMQ socket: delivery until acked."""

from __future__ import annotations

import asyncio
import dataclasses

from surge.common.metrics import CounterSink
from surge.common.protocol import Ack, Bye, Hello, Ready, Reject, Report, Run, ScenarioSlice, Start, Welcome
from surge.common.router import Arrival, RouterLink
from surge.coordinator.aggregate import Accepted, Aggregate
from surge.worker.agent import Agent

SCENARIO = b'''
from surge import Counter
done = Counter("done")

async def default(vu):
    await vu.sleep(0.05)
    done.add(1)
'''


def _run_msg() -> Run:
    sl = ScenarioSlice(
        name="s", executor="constant-vus", exec_name="default", start_time_s=0.0, duration_s=1.0,
        graceful_stop_s=5.0, graceful_ramp_down_s=5.0, steps=[(0.0, 2), (1.0, 0)], vu_ids=[1, 2],
    )
    return Run("run1", {"resend_case.py": SCENARIO}, "resend_case", {}, [sl], [], 0.2)


async def _scripted_coordinator() -> tuple[list[Report], Aggregate, int]:
    chan = RouterLink("tcp://127.0.0.1:*")
    agent = Agent(chan.endpoint, name="w", once=True, resend_after_s=0.3)
    serving = asyncio.ensure_future(agent.serve())
    received: list[Report] = []
    agg = Aggregate(1)
    withheld: int | None = None
    try:
        async def recv() -> object:
            while True:
                got = await asyncio.wait_for(chan.recv(), 10)
                if isinstance(got, Arrival):
                    return got.identity, got.msg

        ident, msg = await recv()  # type: ignore[misc]
        assert isinstance(msg, Hello)
        chan.watch(ident)
        chan.send(ident, Welcome(0))
        chan.send(ident, _run_msg())
        while True:
            ident, msg = await recv()  # type: ignore[misc]
            if isinstance(msg, Ready):
                break
        chan.send(ident, Start("run1"))
        while not agg.all_finished:
            ident, msg = await recv()  # type: ignore[misc]
            if not isinstance(msg, Report):
                continue
            received.append(msg)
            if withheld is None:
                withheld = msg.seq  # lose the first ack: the agent must send this report again
                continue
            agg.accept(0, msg)
            chan.send(ident, Ack("run1", msg.seq))
        # the withheld report may still be outstanding; ack whatever comes until the agent leaves
        chan.send(ident, Bye("done"))
        code = await asyncio.wait_for(serving, 10)
    finally:
        if not serving.done():
            serving.cancel()
        chan.close()
    return received, agg, code


def test_an_unacknowledged_report_is_sent_again_and_counted_once() -> None:
    received, agg, code = asyncio.run(_scripted_coordinator())
    assert code == 0
    first = received[0]
    copies = [r for r in received if r.seq == first.seq]
    assert len(copies) >= 2, "the report whose ack was lost was sent again"
    assert all(c.series.keys() == first.series.keys() for c in copies)
    # every sequence number from 1 to the final one arrived, and applied once each
    seqs = sorted({r.seq for r in received})
    assert seqs == list(range(1, max(seqs) + 1))
    assert agg.accept(0, first) is Accepted.DUPLICATE
    done = agg.series()["done"]
    iterations = agg.series()["iterations"]
    assert isinstance(done, CounterSink) and isinstance(iterations, CounterSink)
    assert done.total == iterations.total > 0


def test_resends_back_off_to_a_cap() -> None:
    from surge.worker.agent import RESEND_MAX_S, resend_delay_s

    assert [resend_delay_s(n, 3.0) for n in range(6)] == [3.0, 6.0, 12.0, 24.0, RESEND_MAX_S, RESEND_MAX_S]
    assert resend_delay_s(10**6, 3.0) == RESEND_MAX_S  # no overflow however long it waited


def test_held_deltas_merge_without_losing_anything() -> None:
    from surge.common.metrics import CounterSink
    from surge.worker.agent import merged

    held = Report("r", 0, 1.0, {"http_reqs": CounterSink(3.0)}, {"ok": (2, 1)}, vus_samples=[(0, 1)])
    new = Report("r", 0, 2.0, {"http_reqs": CounterSink(4.0), "iterations": CounterSink(1.0)}, {"ok": (1, 0)},
                 aborted="", vus_samples=[(1, 2)])
    out = merged(held, new)
    assert out.elapsed_s == 2.0 and out.checks == {"ok": (3, 1)} and out.vus_samples == [(0, 1), (1, 2)]
    assert {k: s.to_wire() for k, s in out.series.items()} == {"http_reqs": [7.0], "iterations": [1.0]}


async def _rejecting_slow_coordinator(max_outbox: int) -> tuple[Agent, Aggregate, int, int, list[int]]:
    """Rejects report 1, holds back every ack for a while, then acks all: the agent must hold, not drop."""
    chan = RouterLink("tcp://127.0.0.1:*")
    agent = Agent(chan.endpoint, name="w", once=True, resend_after_s=5.0, max_outbox=max_outbox)
    serving = asyncio.ensure_future(agent.serve())
    agg = Aggregate(1)
    outstanding: set[int] = set()
    most = 0
    seen: list[int] = []
    run = dataclasses.replace(_run_msg(), report_interval_s=0.05)
    try:
        async def recv() -> tuple[bytes, object]:
            while True:
                got = await asyncio.wait_for(chan.recv(), 10)
                if isinstance(got, Arrival):
                    return got.identity, got.msg

        ident, msg = await recv()
        chan.watch(ident)
        chan.send(ident, Welcome(0))
        chan.send(ident, run)
        while not isinstance(msg, Ready):
            ident, msg = await recv()
        chan.send(ident, Start("run1"))
        loop = asyncio.get_running_loop()
        hold_until = loop.time() + 0.6
        while not agg.all_finished:
            ident, msg = await recv()
            if not isinstance(msg, Report):
                continue
            seen.append(msg.seq)
            outstanding.add(msg.seq)
            most = max(most, len(outstanding))
            if msg.seq == 1:
                agg.skip(0, 1, msg.final)
                chan.send(ident, Reject("run1", 1, "a test says no"))
                outstanding.discard(1)
                continue
            agg.accept(0, msg)
            if loop.time() >= hold_until or msg.final:
                for seq in sorted(outstanding):
                    chan.send(ident, Ack("run1", seq))
                outstanding.clear()
        chan.send(ident, Bye("done"))
        code = await asyncio.wait_for(serving, 10)
    finally:
        if not serving.done():
            serving.cancel()
        chan.close()
    return agent, agg, code, most, seen


def test_a_rejected_report_is_dropped_alone_and_a_full_outbox_holds_instead_of_dropping() -> None:
    agent, agg, code, most, seen = asyncio.run(_rejecting_slow_coordinator(max_outbox=3))
    assert code == 0 and agent.rejected == 1
    assert most <= 3 + 1  # the bound, plus the final report, which is always sent
    assert sorted(set(seen)) == list(range(1, max(seen) + 1))  # held flushes took the next numbers
    done, iterations = agg.series()["done"], agg.series()["iterations"]
    assert isinstance(done, CounterSink) and isinstance(iterations, CounterSink)
    # what report 1 carried is gone (both counters alike); everything after it arrived exactly once
    assert done.total == iterations.total > 0


def test_a_delta_wider_than_a_frame_goes_as_several_reports_and_adds_up_to_the_same() -> None:
    from surge.common.metrics import CounterSink
    from surge.common.protocol import encode
    from surge.common.sketch import Sketch
    from surge.common.metrics import TrendSink
    from surge.worker.agent import split_report

    series = {f"t{i}": TrendSink(Sketch.from_samples([float(j) for j in range(i, i + 300)])) for i in range(40)}
    series["http_reqs"] = CounterSink(40.0)
    whole = Report("run1", 0, 1.0, series, {"ok": (3, 1)}, final=True, vus_samples=[(0, 2)])
    limit = len(encode(whole)) // 5
    parts = split_report(whole, limit)
    assert len(parts) > 4 and all(len(encode(p)) <= limit for p in parts)
    assert [p.final for p in parts] == [False] * (len(parts) - 1) + [True]  # the run ends with the last part
    assert parts[-1].checks == {"ok": (3, 1)} and parts[-1].vus_samples == [(0, 2)]
    agg, one = Aggregate(1), Aggregate(1)
    for seq, part in enumerate(parts, 1):
        agg.accept(0, dataclasses.replace(part, seq=seq))
    one.accept(0, dataclasses.replace(whole, seq=1))
    assert agg.all_finished and one.all_finished
    assert {k: s.to_wire() for k, s in agg.series().items()} == {k: s.to_wire() for k, s in one.series().items()}
    assert agg.checks() == one.checks()


async def _reports_with_a_phase(delay_s: float) -> tuple[list[tuple[float, Report]], float, Aggregate, float]:
    """A real agent told to send each report ``delay_s`` after its instant: (arrival after
    Start, report) for every report, the planned interval, what they merged to, and how many
    ``done`` the agent's recorder handed over in all (what was cut, sent or not)."""
    chan = RouterLink("tcp://127.0.0.1:*")
    agent = Agent(chan.endpoint, name="w", once=True)
    cut_done = [0.0]
    cut = agent._cut_report

    def counting_cut(*, final: bool) -> Report | None:  # the seam: every cut, before it is held or sent
        report = cut(final=final)
        sink = report.series.get("done") if report is not None else None
        if isinstance(sink, CounterSink):
            cut_done[0] += sink.total
        return report

    agent._cut_report = counting_cut  # type: ignore[method-assign]
    serving = asyncio.ensure_future(agent.serve())
    run = dataclasses.replace(_run_msg(), report_delay_s=delay_s)
    agg = Aggregate(1)
    got: list[tuple[float, Report]] = []
    loop = asyncio.get_running_loop()
    try:
        async def recv() -> tuple[bytes, object]:
            while True:
                item = await asyncio.wait_for(chan.recv(), 10)
                if isinstance(item, Arrival):
                    return item.identity, item.msg

        ident, msg = await recv()
        assert isinstance(msg, Hello)
        chan.watch(ident)
        chan.send(ident, Welcome(0))
        chan.send(ident, run)
        while not isinstance(msg, Ready):
            ident, msg = await recv()
        started = loop.time()
        chan.send(ident, Start("run1"))
        while not agg.all_finished:
            ident, msg = await recv()
            if isinstance(msg, Report):
                got.append((loop.time() - started, msg))
                agg.accept(0, msg)
                chan.send(ident, Ack("run1", msg.seq))
        chan.send(ident, Bye("done"))
        assert await asyncio.wait_for(serving, 10) == 0
    finally:
        if not serving.done():
            serving.cancel()
        chan.close()
    return got, run.report_interval_s, agg, cut_done[0]


def test_a_report_is_cut_at_its_instant_and_sent_at_the_member_s_phase() -> None:
    """Run.report_delay_s: each report still covers its interval of the shared timeline (its
    elapsed_s is the instant it was cut at), but leaves that long after it, so a fleet's
    reports arrive spread out; the one waiting for its phase when the load ends is not lost."""
    delay_s = 0.15
    got, interval_s, agg, cut_done = asyncio.run(_reports_with_a_phase(delay_s))
    periodic = [r for _, r in got if not r.final]
    assert periodic, "no interval report came before the final one"
    for arrived_s, report in got:
        # Cut first, sent at least the phase later: arrival after Start >= elapsed_s + delay for
        # an interval report; the final one (cut when it leaves) no sooner than the load's end
        # (the slice's 1 s) + delay. Lower bounds only: lateness makes the gaps larger, never smaller.
        cut_s = 1.0 if report.final else report.elapsed_s
        assert arrived_s >= cut_s + delay_s - 0.01, (arrived_s, report.elapsed_s, report.final)
    assert [r.seq for _, r in got] == list(range(1, len(got) + 1))
    done, iterations = agg.series().get("done"), agg.series().get("iterations")
    assert isinstance(done, CounterSink) and isinstance(iterations, CounterSink)
    assert done.total == iterations.total > 0
    assert done.total == cut_done  # everything cut arrived: the report still waiting for its phase at the end too

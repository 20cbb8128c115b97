"""Simulated surge workers for the coordinator-scaling run: real protocol, synthetic load.

``python bench/fake_workers.py --connect tcp://127.0.0.1:PORT --count N --out FILE``

Run by path, not as ``-m bench.fake_workers``, so that it imports surge the way the measured
processes do (see :func:`bench.machine.snapshot_surge`); it imports nothing from the bench.

Each simulated worker is an asyncio task with its own ZeroMQ DEALER socket (its own identity,
exactly as a worker process has; an asyncio socket here rather than surge's threaded
:class:`surge.common.dealer.DealerLink`, so that a thousand of them do not need a thousand
threads) and plays the worker's side of :mod:`surge.common.protocol` as
:mod:`surge.worker.agent` does::

    Hello (every second until Welcome) -> Welcome
    Run -> Ready          (the bundle is ignored: nothing is imported, no VU runs)
    Ping(t) -> Pong(t, worker_t) at once (the coordinator's clock probes before Start)
    Start -> every report_interval_s: Offer(seq, size) -> Grant -> Report(seq, delta) -> Ack (or Reject)
             Heartbeat every second unless another frame went out since the last one
             (each report cut at the instant and offered Run.report_delay_s after it, the
             member's phase; sent when granted)
    an unacknowledged report is offered again with the agent's backoff (3 s doubling up to 30 s)
    at the slice's end: the final Report -> its Ack -> done (Bye, if it comes, is fine too)

What makes the reports realistic is that they carry what a worker running
``scenarios/ticket_purchase.py`` sends, built the worker's way: a real
:class:`surge.worker.recorder.Recorder`, with the VU tags of scenario ``purchase`` and the
sub-metrics the coordinator asked for in ``Run``, is fed ``--samples`` synthetic HTTP
outcomes per interval (real :class:`surge.worker.http.Response` objects with lognormal
timings), and per request what the scenario records: ``checkout_duration``, its four checks,
``purchase_errors`` and one iteration; plus the saturation monitor's series (``surge_loop_lag``
ten times a second, ``surge_cpu`` and ``surge_saturated`` once), the ``vus`` gauge and, in the
first report, ``vus_max``; and ``vus_samples``, one (second, VUs) tick per report. So the
coordinator decodes, validates and merges exactly what it would from real workers.

A thousand workers in one process cannot each run a Recorder every second, so the deltas are
made once: :data:`POOL_DELTAS` intervals are recorded and their ``series`` and ``checks`` packed
into msgpack bytes at start-up (shared by all workers), and each report is assembled from those
bytes plus its own small fields (run id, seq, elapsed time, the ``vus`` gauge, the tick). The
frames are exactly what :func:`surge.common.protocol.encode` would produce, field order aside.

The simulation never runs in the coordinator's process and is pinned, by the caller, to
the other core. It writes the wall-clock window of the run it saw (``CLOCK_MONOTONIC``,
shared by every process) so the harness can take the coordinator's CPU over that window only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import time
from dataclasses import dataclass, field

import msgpack
import zmq
import zmq.asyncio

from surge.common.errors import ProtocolError
from surge.common.metrics import CounterSink, MetricDef, MetricType, ValueType
from surge.common.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Grant,
    Heartbeat,
    Hello,
    Message,
    Offer,
    Ping,
    Pong,
    Ready,
    Reject,
    Report,
    Run,
    Start,
    Welcome,
    decode,
    encode,
)
from surge.worker.http import Response, Timings
from surge.worker.recorder import Recorder, vu_tags

POOL_DELTAS = 16  # distinct recorded intervals the reports are drawn from
RESEND_AFTER_S = 3.0  # as surge.worker.agent: first resend after this, then doubling ...
RESEND_MAX_S = 30.0  # ... up to this (a flat 3 s turns a coordinator that is late into a resend storm)
SCENARIO = "purchase"
CHECKS = ("status is 200", "has checkout URL", "response under 500ms", "response under 1s")
# the ticket-purchase scenario's own metrics (Rate("purchase_errors"), Trend("checkout_duration", is_time=True))
SCENARIO_METRICS = {
    "purchase_errors": MetricDef("purchase_errors", MetricType.RATE),
    "checkout_duration": MetricDef("checkout_duration", MetricType.TREND, ValueType.TIME),
}


def raise_fd_limit() -> int:
    """As many open files as the hard limit allows: each simulated worker holds a few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class DealerChannel:
    """One simulated worker's socket: the real frames, on asyncio."""

    def __init__(self, connect: str) -> None:
        self._ctx = zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 2000)
        self._sock.connect(connect)
        self.spoke = False  # a frame went out since the last heartbeat (see FakeWorker.heartbeat)

    async def recv(self) -> Message | ProtocolError:
        frames = await self._sock.recv_multipart()
        try:
            return decode(frames[-1])
        except ProtocolError as exc:
            return exc

    async def send(self, msg: Message) -> None:
        await self._sock.send_multipart([encode(msg)])
        self.spoke = True

    async def send_raw(self, frame: bytes) -> None:
        await self._sock.send_multipart([frame])
        self.spoke = True

    def close(self) -> None:
        self._sock.close()


def _response(rng: random.Random, url: str) -> Response:
    """A plausible finished request: ~40 ms median, a heavy tail, a few 500s."""
    waiting = rng.lognormvariate(3.7, 0.5)
    sending, receiving = rng.uniform(0.005, 0.05), rng.uniform(0.01, 0.2)
    t = Timings(
        blocked=rng.uniform(0.001, 0.01), sending=sending, waiting=waiting, receiving=receiving,
        duration=sending + waiting + receiving,
    )
    status = 500 if rng.random() < 0.001 else 200
    return Response("POST", url, status, timings=t, bytes_sent=412, bytes_received=290)


@dataclass(frozen=True)
class Delta:
    """One recorded interval, packed: the msgpack map items of its series (no gauges) and its checks."""

    series_items: bytes  # packed key, value pairs: the map's body without its header
    n_series: int
    checks: bytes  # a whole packed map
    requests: int  # its http_reqs


def _pack_items(mapping: dict[str, object]) -> bytes:
    return b"".join(msgpack.packb(k) + msgpack.packb(v, use_bin_type=True) for k, v in mapping.items())


def record_pool(submetrics: list[str], samples: int, seed: int = 1) -> list[Delta]:
    """:data:`POOL_DELTAS` intervals recorded by a real Recorder as the ticket-purchase scenario would."""
    rng = random.Random(seed)
    url = "http://127.0.0.1/functions/v1/create-checkout-session"
    rec = Recorder(submetrics=submetrics, clock=lambda: 0.0, metric_defs=SCENARIO_METRICS)
    token = vu_tags.set({"scenario": SCENARIO})
    pool = []
    try:
        for _ in range(POOL_DELTAS):
            for _ in range(samples):
                resp = _response(rng, url)
                rec.record_http(resp, None)
                d = resp.timings.duration
                rec.add("checkout_duration", d)
                oks = (resp.status == 200, resp.status == 200, d < 500, d < 1000)
                for name, ok in zip(CHECKS, oks):
                    rec.add_check(name, ok)
                rec.add("purchase_errors", 0.0 if all(oks) else 1.0)
                rec.add_iteration(d + rng.uniform(500, 2500))  # the think time is inside the iteration
            for _ in range(10):
                rec.add("surge_loop_lag", rng.uniform(0.0, 0.8))
            cpu = 0.35 + rng.uniform(-0.05, 0.05)  # a share of one core
            rec.add("surge_cpu", cpu)
            rec.add("surge_saturated", 0.0)
            series, checks = rec.flush()
            # the plain form of the sinks, exactly as encode() puts them on the wire
            body = msgpack.unpackb(encode(Report("x", 1, 0.0, series, checks)), raw=False)
            plain = {k: v for k, v in body["series"].items() if v[0] != "gauge"}  # gauges are per report
            reqs = series.get("http_reqs")
            pool.append(Delta(_pack_items(plain), len(plain), msgpack.packb(body["checks"]),
                              int(reqs.total) if isinstance(reqs, CounterSink) else 0))
    finally:
        vu_tags.reset(token)
    return pool


def report_frame(delta: Delta, run_id: str, seq: int, elapsed_s: float, final: bool, vus: int,
                 vus_samples: list[list[int]], vus_max: int | None) -> bytes:
    """A Report frame from a packed delta and this report's own fields (what encode() would send)."""
    gauges: dict[str, object] = {"vus": ["gauge", [float(vus), float(vus), float(vus), elapsed_s]]}
    if vus_max is not None:
        gauges["vus_max"] = ["gauge", [float(vus_max), float(vus_max), float(vus_max), 0.0]]
    small = {"v": PROTOCOL_VERSION, "k": "report", "run_id": run_id, "seq": seq, "elapsed_s": elapsed_s,
             "final": final, "aborted": "", "vus_samples": vus_samples}
    packer = msgpack.Packer(use_bin_type=True)
    return b"".join((
        packer.pack_map_header(len(small) + 2),
        _pack_items(small),
        msgpack.packb("series"), packer.pack_map_header(delta.n_series + len(gauges)), delta.series_items,
        _pack_items(gauges),
        msgpack.packb("checks"), delta.checks,
    ))


class Pool:
    """The packed deltas, recorded once (at the first Run: the sub-metrics come with it)."""

    def __init__(self, samples: int) -> None:
        self.samples = samples
        self.deltas: list[Delta] | None = None

    def get(self, submetrics: list[str]) -> list[Delta]:
        if self.deltas is None:
            self.deltas = record_pool(submetrics, self.samples)
        return self.deltas


@dataclass
class Window:
    """What one simulated worker saw, for the harness."""

    start: float | None = None  # monotonic time Start arrived
    end: float | None = None  # monotonic time the final report was acknowledged
    reports: int = 0
    samples: int = 0  # http_reqs sent (the reports the coordinator acknowledged or rejected)
    acked: list[float] = field(default_factory=list)  # monotonic time each report was first acknowledged
    resends: int = 0
    errors: list[str] = field(default_factory=list)


class FakeWorker:
    def __init__(self, index: int, connect: str, pool: Pool) -> None:
        self.index = index
        self.chan = DealerChannel(connect)
        self.pool = pool
        self.window = Window()
        self.rng = random.Random(index)
        self.welcomed = asyncio.Event()
        self.run_msg: Run | None = None
        self.started = asyncio.Event()
        self.outbox: dict[int, tuple[float, int, bytes]] = {}  # seq -> (sent at, resends, frame)
        self.final_seq: int | None = None
        self.done = asyncio.Event()

    async def receive(self) -> None:
        while not self.done.is_set():
            msg = await self.chan.recv()
            if isinstance(msg, Ping):
                # First, as a worker's link thread answers: the coordinator probes every clock
                # before Start and waits up to a second for the answers.
                await self.chan.send(Pong(msg.t, time.monotonic()))
            elif isinstance(msg, ProtocolError):
                self.window.errors.append(str(msg))
            elif isinstance(msg, Welcome):
                self.welcomed.set()
            elif isinstance(msg, Run):
                self.run_msg = msg
                self.pool.get(msg.submetrics)
                await self.chan.send(Ready(msg.run_id))
            elif isinstance(msg, Start):
                self.window.start = time.monotonic()
                self.started.set()
            elif isinstance(msg, Grant):
                pending = self.outbox.get(msg.seq)
                if pending is not None and self.run_msg is not None and msg.run_id == self.run_msg.run_id:
                    self.outbox[msg.seq] = (time.monotonic(), pending[1], pending[2])  # its backoff from the send
                    await self.chan.send_raw(pending[2])
            elif isinstance(msg, (Ack, Reject)):
                if isinstance(msg, Reject) and msg.seq in self.outbox:  # dropped alone, as the agent does
                    self.window.errors.append(f"report {msg.seq} rejected: {msg.reason}")
                if self.outbox.pop(msg.seq, None) is not None:
                    self.window.acked.append(time.monotonic())
                if self.final_seq is not None and not self.outbox:
                    self.window.end = time.monotonic()
                    self.done.set()
            elif isinstance(msg, Bye) and self.final_seq is not None:
                self.done.set()
            # Heartbeat and Stop: nothing to do (a Stop would end the slice early; none is sent)

    async def heartbeat(self) -> None:
        await asyncio.sleep(self.rng.random())  # a thousand workers do not all beat at once
        while not self.done.is_set():
            now = time.monotonic()
            if not self.welcomed.is_set():
                await self.chan.send(Hello(f"fake-{self.index}", socket.gethostname(), os.getpid()))
            else:
                # as a worker's link does: no beat when a frame went out since the last one
                if not self.chan.spoke:
                    await self.chan.send(Heartbeat())
                self.chan.spoke = False
                for seq, (sent_at, attempts, frame) in list(self.outbox.items()):
                    if now - sent_at >= min(RESEND_AFTER_S * 2**attempts, RESEND_MAX_S):
                        self.outbox[seq] = (now, attempts + 1, frame)
                        self.window.resends += 1  # offered again, as the agent does; sent when granted
                        assert self.run_msg is not None  # reports exist only once a Run came
                        await self.chan.send(Offer(self.run_msg.run_id, seq, len(frame)))
            await asyncio.sleep(1.0)

    async def play(self) -> None:
        await self.started.wait()
        msg = self.run_msg
        assert msg is not None
        deltas = self.pool.get(msg.submetrics)
        t0 = time.monotonic()
        run_s = max((s.start_time_s + s.duration_s for s in msg.slices), default=20.0)
        vus = sum(len(s.vu_ids) for s in msg.slices) or 1
        n_intervals = max(1, round(run_s / msg.report_interval_s))
        for i in range(1, n_intervals + 1):
            await asyncio.sleep(max(0.0, t0 + i * msg.report_interval_s - time.monotonic()))
            delta = deltas[self.rng.randrange(len(deltas))]
            final = i == n_intervals
            elapsed = time.monotonic() - t0
            # one tick a second, as the agent samples running VUs; the final report has none
            ticks = [] if final else [[i - 1, vus]]
            frame = report_frame(delta, msg.run_id, i, elapsed, final, 0 if final else vus, ticks,
                                 vus if i == 1 else None)
            # cut at the instant, sent at this member's phase, as the agent does (Run.report_delay_s)
            await asyncio.sleep(msg.report_delay_s)
            # one report per interval, numbered from 1 as the protocol requires: seq is i
            self.outbox[i] = (time.monotonic(), 0, frame)
            if final:
                self.final_seq = i
            self.window.reports += 1
            self.window.samples += delta.requests
            await self.chan.send(Offer(msg.run_id, i, len(frame)))  # sent when granted, as the agent does

    async def serve(self, timeout_s: float) -> None:
        tasks = [asyncio.create_task(c) for c in (self.receive(), self.heartbeat(), self.play())]
        try:
            await asyncio.wait_for(self.done.wait(), timeout_s)
        except TimeoutError:
            self.window.errors.append(f"not done within {timeout_s:g}s")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.chan.close()


async def main_async(connect: str, count: int, samples: int, timeout_s: float) -> list[Window]:
    ctx = zmq.asyncio.Context.instance()
    ctx.set(zmq.MAX_SOCKETS, max(1024, count + 64))  # libzmq's default is 1023 sockets a context
    pool = Pool(samples)
    workers = [FakeWorker(i, connect, pool) for i in range(count)]
    await asyncio.gather(*(w.serve(timeout_s) for w in workers))
    return [w.window for w in workers]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--samples", type=int, default=1000, help="synthetic requests per worker per interval")
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    raise_fd_limit()
    import uvloop

    windows = uvloop.run(main_async(args.connect, args.count, args.samples, args.timeout))
    with open(args.out, "w") as f:
        json.dump([w.__dict__ for w in windows], f)


if __name__ == "__main__":
    main()

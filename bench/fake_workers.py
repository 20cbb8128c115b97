"""Simulated surge workers for the coordinator-scaling run: real protocol, synthetic load.

``python bench/fake_workers.py --connect tcp://127.0.0.1:PORT --count N --out FILE``

Run by path, not as ``-m bench.fake_workers``, so that it imports surge the way the measured
processes do (see :func:`bench.machine.snapshot_surge`); it imports nothing from the bench.

Each simulated worker is an asyncio task with its own ZeroMQ DEALER socket (its own identity,
exactly as a worker process has; an asyncio socket here rather than surge's threaded
:class:`surge.common.wire.DealerLink`, so that a thousand of them do not need a thousand
threads) and plays the worker's side of :mod:`surge.common.protocol` as
:mod:`surge.worker.agent` does::

    Hello (every second until Welcome) -> Welcome
    Run -> Ready          (the bundle is ignored: nothing is imported, no VU runs)
    Start -> every report_interval_s: Report(seq, delta) -> Ack (or Reject) ; Heartbeat every second
    an unacknowledged report is sent again with the agent's backoff (3 s doubling up to 30 s)
    at the slice's end: the final Report -> its Ack -> done (Bye, if it comes, is fine too)

What makes the reports realistic is that they are built the worker's way: a real
:class:`surge.worker.recorder.Recorder` is fed ``--samples`` synthetic HTTP outcomes per
interval (real :class:`surge.worker.http.Response` objects with lognormal timings, drawn
once into a pool so that the simulation itself stays cheap), one iteration and one check per
request, the ``vus`` gauge and the saturation monitor's series, and flushed into sinks. So
the coordinator decodes, validates and merges exactly what it would from real workers.

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
import socket
import time
from dataclasses import dataclass, field

import zmq
import zmq.asyncio

from surge.common.errors import ProtocolError
from surge.common.metrics import BUILTIN_METRICS
from surge.common.protocol import (
    Ack,
    Bye,
    Heartbeat,
    Hello,
    Message,
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
from surge.worker.recorder import Recorder

POOL_SIZE = 4096
RESEND_AFTER_S = 3.0  # as surge.worker.agent: first resend after this, then doubling ...
RESEND_MAX_S = 30.0  # ... up to this (a flat 3 s turns a coordinator that is late into a resend storm)


class DealerChannel:
    """One simulated worker's socket: the real frames, on asyncio."""

    def __init__(self, connect: str) -> None:
        self._ctx = zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 2000)
        self._sock.connect(connect)

    async def recv(self) -> Message | ProtocolError:
        frames = await self._sock.recv_multipart()
        try:
            return decode(frames[-1])
        except ProtocolError as exc:
            return exc

    async def send(self, msg: Message) -> None:
        await self._sock.send_multipart([encode(msg)])

    def close(self) -> None:
        self._sock.close()


def response_pool(seed: int, url: str) -> list[Response]:
    """Plausible finished requests: ~40 ms median, a heavy tail, a few 500s."""
    rng = random.Random(seed)
    pool = []
    for _ in range(POOL_SIZE):
        waiting = rng.lognormvariate(3.7, 0.5)
        sending, receiving = rng.uniform(0.005, 0.05), rng.uniform(0.01, 0.2)
        t = Timings(
            blocked=rng.uniform(0.001, 0.01), sending=sending, waiting=waiting, receiving=receiving,
            duration=sending + waiting + receiving,
        )
        status = 500 if rng.random() < 0.001 else 200
        pool.append(Response("POST", url, status, timings=t, bytes_sent=412, bytes_received=290))
    return pool


@dataclass
class Window:
    """What one simulated worker saw, for the harness."""

    start: float | None = None  # monotonic time Start arrived
    end: float | None = None  # monotonic time the final report was acknowledged
    reports: int = 0
    samples: int = 0
    resends: int = 0
    errors: list[str] = field(default_factory=list)


class FakeWorker:
    def __init__(self, index: int, connect: str, samples: int) -> None:
        self.index = index
        self.chan = DealerChannel(connect)
        self.samples = samples
        self.window = Window()
        self.rng = random.Random(index)
        self.pool = response_pool(index, "http://127.0.0.1/checkout")
        self.welcomed = asyncio.Event()
        self.run_msg: Run | None = None
        self.started = asyncio.Event()
        self.outbox: dict[int, tuple[float, int, Report]] = {}  # seq -> (sent at, resends, report)
        self.final_seq: int | None = None
        self.done = asyncio.Event()

    async def receive(self) -> None:
        while not self.done.is_set():
            msg = await self.chan.recv()
            if isinstance(msg, ProtocolError):
                self.window.errors.append(str(msg))
            elif isinstance(msg, Welcome):
                self.welcomed.set()
            elif isinstance(msg, Run):
                self.run_msg = msg
                await self.chan.send(Ready(msg.run_id))
            elif isinstance(msg, Start):
                self.window.start = time.monotonic()
                self.started.set()
            elif isinstance(msg, (Ack, Reject)):
                if isinstance(msg, Reject) and msg.seq in self.outbox:  # dropped alone, as the agent does
                    self.window.errors.append(f"report {msg.seq} rejected: {msg.reason}")
                self.outbox.pop(msg.seq, None)
                if self.final_seq is not None and not self.outbox:
                    self.window.end = time.monotonic()
                    self.done.set()
            elif isinstance(msg, Bye) and self.final_seq is not None:
                self.done.set()
            # Heartbeat and Stop: nothing to do (a Stop would end the slice early; none is sent)

    async def heartbeat(self) -> None:
        while not self.done.is_set():
            now = time.monotonic()
            if not self.welcomed.is_set():
                await self.chan.send(Hello(f"fake-{self.index}", socket.gethostname(), os.getpid()))
            else:
                await self.chan.send(Heartbeat())
                for seq, (sent_at, attempts, report) in list(self.outbox.items()):
                    if now - sent_at >= min(RESEND_AFTER_S * 2**attempts, RESEND_MAX_S):
                        self.outbox[seq] = (now, attempts + 1, report)
                        self.window.resends += 1
                        await self.chan.send(report)
            await asyncio.sleep(1.0)

    def _feed(self, rec: Recorder) -> None:
        pool, rng = self.pool, self.rng
        for _ in range(self.samples):
            resp = pool[rng.randrange(POOL_SIZE)]
            rec.record_http(resp, None)
            rec.add_iteration(resp.timings.duration + 0.05)
            rec.add_check("status is 200", resp.status == 200)
        rec.set_gauge("vus", 1.0)
        # the saturation monitor's series, when this surge has them
        if "surge_loop_lag" in BUILTIN_METRICS:
            for _ in range(10):
                rec.add("surge_loop_lag", rng.uniform(0.0, 0.8))
        if "surge_cpu" in BUILTIN_METRICS:
            rec.set_gauge("surge_cpu", 0.35 + rng.uniform(-0.05, 0.05))  # a share of one core (a trend now)
        if "surge_saturated" in BUILTIN_METRICS:
            rec.add("surge_saturated", 0.0)
        self.window.samples += self.samples

    async def play(self) -> None:
        await self.started.wait()
        msg = self.run_msg
        assert msg is not None
        t0 = time.monotonic()
        run_s = max((s.start_time_s + s.duration_s for s in msg.slices), default=20.0)
        rec = Recorder(submetrics=msg.submetrics, clock=lambda: time.monotonic() - t0)
        rec.set_gauge("vus_max", 1.0)
        n_intervals = max(1, round(run_s / msg.report_interval_s))
        for i in range(1, n_intervals + 1):
            await asyncio.sleep(max(0.0, t0 + i * msg.report_interval_s - time.monotonic()))
            self._feed(rec)
            series, checks = rec.flush()
            final = i == n_intervals
            # one report per interval, numbered from 1 as the protocol requires: seq is i
            report = Report(msg.run_id, i, time.monotonic() - t0, series, checks, final, "")
            self.outbox[i] = (time.monotonic(), 0, report)
            if final:
                self.final_seq = i
            self.window.reports += 1
            await self.chan.send(report)

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
    workers = [FakeWorker(i, connect, samples) for i in range(count)]
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
    import uvloop

    windows = uvloop.run(main_async(args.connect, args.count, args.samples, args.timeout))
    with open(args.out, "w") as f:
        json.dump([w.__dict__ for w in windows], f)


if __name__ == "__main__":
    main()

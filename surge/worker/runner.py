"""One run on one worker: the scenario's slices played by executors, recorded by one recorder.

The runner knows nothing of the network: the agent gives it a loaded module and the slices
from the coordinator's ``Run`` message, starts it, flushes its recorder on its own schedule and
may stop it at any time. Everything measured stays in the recorder until flushed.

``vus`` is also sampled on the fleet's shared timeline, as k6 samples it: at each whole
second ``k`` after Start (loop time ``t0 + k``) the runner counts its running VUs, and the
agent takes the samples since its last report with :meth:`WorkerRun.take_vus_samples` and
sends them in ``Report.vus_samples``; the coordinator sums each tick across workers (see
:mod:`surge.coordinator.aggregate`).
"""

from __future__ import annotations

import asyncio
import os
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Union

from surge.common import api
from surge.common.clock import LATE_START_S
from surge.common.endpoint_stats import DEFAULT_MAX_ENDPOINTS, bounded_max_endpoints
from surge.common.errors import ConfigError
from surge.common.http_options import HttpOptions, parse_http_options
from surge.common.protocol import ScenarioSlice
from surge.common.scenario import exec_function
from surge.worker import saturation
from surge.worker.http import HttpClient
from surge.worker.http.dns import Resolver
from surge.worker.http.transports import make_transport
from surge.worker.recorder import Recorder
from surge.common.api import AbortTest
from surge.worker.arrivals import ArrivalRateVUs
from surge.worker.iterations import IterationVUs
from surge.worker.vu import VU, ErrorLog, LoopingVUs

AnyExecutor = Union[LoopingVUs, IterationVUs, ArrivalRateVUs]
SUPPORTED_EXECUTORS = frozenset({
    "ramping-vus", "constant-vus", "per-vu-iterations", "shared-iterations",
    "constant-arrival-rate", "ramping-arrival-rate",
})  # fmt: skip


class WorkerRun:
    """Builds the executors for the slices, then :meth:`play` runs them to the end."""

    def __init__(
        self,
        module: ModuleType,
        source: str,
        slices: Sequence[ScenarioSlice],
        *,
        env: Mapping[str, str],
        submetrics: Sequence[str],
        http_transport: str = "fast",
        discard_response_bodies: bool = False,
        http_options: Mapping[str, Any] | None = None,
        halted: Callable[[], bool] | None = None,
        max_endpoints: int = DEFAULT_MAX_ENDPOINTS,
    ) -> None:
        make_transport(http_transport)  # an unknown name fails here, at load, not per VU
        http, problems = parse_http_options(http_options or {})
        if problems:  # the coordinator checked them already: only a mismatched peer gets here
            raise ConfigError(problems, source=source)
        self._http: HttpOptions = http
        # One resolver for the process, as k6 has one for its VUs: one DNS lookup per host per ttl.
        self._resolver = Resolver(http.dns, http.hosts)
        self._loop = asyncio.get_running_loop()
        self._t0: float | None = None
        self.recorder = Recorder(submetrics=submetrics, clock=self._elapsed,
                                 max_endpoints=bounded_max_endpoints(max_endpoints))
        scenario_file = getattr(module, "__file__", None)
        self.errors = ErrorLog(root=os.path.dirname(scenario_file) if scenario_file else None)
        self.aborted: AbortTest | None = None
        self._clients: list[HttpClient] = []
        self._env = env
        self._http_transport = http_transport
        self._discard = discard_response_bodies or http.discard_response_bodies
        self._halted = halted  # asked before every request: True stops this run's load (see LoadHalted)
        self.executors: list[AnyExecutor] = []
        self._vus_samples: list[tuple[int, int]] = []
        self._stopped = False
        self.fenced = False  # a request was refused because the coordinator had gone quiet
        self._start_wait: asyncio.Future[None] | None = None
        self.data: Any = None  # what setup() returned: every VU's vu.data
        self._module = module
        self._source = source
        self._runs: list[asyncio.Task[None]] = []  # the executors' tasks while playing
        for sl in slices:
            self.executors.append(self._executor(sl))

    def _executor(self, sl: ScenarioSlice) -> AnyExecutor:
        if sl.executor not in SUPPORTED_EXECUTORS:
            raise ValueError(f"executor {sl.executor!r} is not supported by this worker")
        fn = exec_function(self._module, sl.exec_name, self._source)
        if self._http.no_vu_connection_reuse:
            fn = _closing_idle_first(fn)
        common: dict[str, Any] = dict(errors=self.errors, on_abort=self._abort, on_vus=self._vus_changed)
        if sl.executor in ("constant-arrival-rate", "ramping-arrival-rate"):
            common["on_allocated"] = self._allocated_changed
            return ArrivalRateVUs(sl, fn, self._vu_factory(sl), self.recorder, **common)
        if sl.executor in ("per-vu-iterations", "shared-iterations"):
            return IterationVUs(sl, fn, self._vu_factory(sl), self.recorder, **common)
        return LoopingVUs(sl, fn, self._vu_factory(sl), self.recorder, **common)

    def take_over(self, slices: Sequence[ScenarioSlice]) -> bool:
        """Play ``slices`` too, from now on, on this run's clock (a lost worker's share).

        False if this run is no longer playing (its own slices are done or it was stopped):
        then nothing is added, and the caller says so.
        """
        if self._stopped or (self._t0 is not None and all(t.done() for t in self._runs)):
            return False
        added = [self._executor(sl) for sl in slices]  # every one built before any starts
        self.executors.extend(added)
        if self._t0 is None:
            return True  # still waiting for the start instant: play() starts them with the rest
        self._runs.extend(self._loop.create_task(ex.run(self._t0)) for ex in added)
        self.recorder.set_gauge("vus_max", float(self._allocated()))
        return True

    def _elapsed(self) -> float:
        return self._loop.time() - self._t0 if self._t0 is not None else 0.0

    def _vu_factory(self, sl: ScenarioSlice) -> Any:
        env = ChainMap(dict(sl.env), dict(self._env)) if sl.env else self._env
        tags = {"scenario": sl.name, **sl.tags}

        def make(vu_id: int) -> VU:
            client = self._client(may_send=self._may_send if self._halted else None)
            self._clients.append(client)
            return VU(vu_id, sl.name, env, client, tags, self.data)

        return make

    def _may_send(self) -> bool:
        if self._stopped:
            return False  # stopped: the VUs still unwinding send nothing more
        if self._halted is not None and self._halted():
            self.fenced = True  # its final report must not go out as if the run had ended normally
            self.stop_now()  # every VU ends now, before the link's thread gets to say so
            return False
        return True

    def lifecycle_vu(self, name: str) -> VU:
        """The VU that runs ``setup()`` or ``teardown()``: id 0 as in k6, the run's recorder."""
        client = self._client()
        self._clients.append(client)
        return VU(0, name, self._env, client, {}, self.data)

    def _client(self, *, may_send: Callable[[], bool] | None = None) -> HttpClient:
        """A VU's client, with k6's HTTP options, on a new transport over the shared resolver."""
        http = self._http
        return HttpClient(
            on_response=self.recorder.record_http,
            transport=make_transport(self._http_transport, http, self._resolver),
            max_redirects=http.max_redirects,
            discard_response_bodies=self._discard,
            may_send=may_send,
            user_agent=http.user_agent,
            no_connection_reuse=http.no_connection_reuse,
            batch=http.batch,
            batch_per_host=http.batch_per_host,
        )

    def _allocated_changed(self) -> None:
        if self._t0 is not None:
            self.recorder.set_gauge("vus_max", float(self._allocated()))

    def _allocated(self) -> int:
        """``vus_max``: VUs this worker may use (looping and iteration executors) or has allocated (arrival-rate)."""
        return sum(ex.allocated for ex in self.executors)

    def _vus_changed(self, _n: int) -> None:
        self.recorder.set_gauge("vus", float(self._running_vus()))

    def _running_vus(self, at: float | None = None) -> int:
        """Live VUs now, or at the planned instant ``at`` (a ``vus`` tick: see LoopingVUs.live_at)."""
        if at is None:
            return sum(ex.live for ex in self.executors)
        return sum(ex.live_at(at) for ex in self.executors)

    async def _sample_vus(self, t0: float) -> None:
        """Tick k at loop time ``t0 + k``: append (k, running VUs) until cancelled."""
        tick = 0
        while True:
            self._vus_samples.append((tick, self._running_vus(t0 + tick)))
            tick += 1
            wake: asyncio.Future[None] = self._loop.create_future()
            handle = self._loop.call_at(t0 + tick, _wake, wake)  # the planned instant, no drift
            try:
                await wake
            finally:
                handle.cancel()

    def take_vus_samples(self) -> list[tuple[int, int]]:
        """The (tick, running VUs) samples since the last call, for the next report."""
        out, self._vus_samples = self._vus_samples, []
        return out

    def _abort(self, exc: AbortTest) -> None:
        # This worker stops at once; its next report carries the reason, and the coordinator
        # then stops every other worker.
        if self.aborted is None:
            self.aborted = exc
        self.stop_now()

    @property
    def elapsed_s(self) -> float:
        return self._elapsed()

    @property
    def started_at(self) -> float | None:
        """The plan's time 0 on the loop clock, once play() has reached it; None before."""
        return self._t0

    async def play(self, at: float = 0.0) -> None:
        """Run every slice from ``at`` (loop clock; 0: now); return when all are done (or stopped).

        ``at`` is the fleet's shared start instant on this machine's clock (see
        :mod:`surge.common.clock`): the plan's time 0 is ``at`` itself, not the moment the loop
        woke for it, so every worker's stage boundaries fall on the same instants. A start
        instant already more than ``LATE_START_S`` past (a Start that arrived very late) is
        not kept: the plan starts now, as it would have without one.
        """
        now = self._loop.time()
        if at > now:
            wake = self._start_wait = self._loop.create_future()
            handle = self._loop.call_at(at, _wake, wake)
            try:
                await wake  # stop_now() wakes it too
            finally:
                handle.cancel()
                self._start_wait = None
        elif now - at > LATE_START_S:
            at = now
        if self._stopped:
            return  # stopped before its start instant: nothing ran, nothing to record
        self._t0 = at
        api.install_recorder(self.recorder)
        self.recorder.set_gauge("vus_max", float(self._allocated()))
        self.recorder.set_gauge("vus", 0.0)
        watch = self._loop.create_task(saturation.monitor(self.recorder))
        self._runs = [self._loop.create_task(ex.run(self._t0)) for ex in self.executors]
        # created after the executors, so tick 0 sees the VUs that start at Start
        sampler = self._loop.create_task(self._sample_vus(self._t0))
        try:
            # take_over() may add executors while these run: wait until every one is done.
            while not all(t.done() for t in self._runs):
                await asyncio.gather(*self._runs)
        finally:
            for task in self._runs:
                task.cancel()
            watch.cancel()
            sampler.cancel()
            self.stop_now()
            await asyncio.gather(*(c.close() for c in self._clients), return_exceptions=True)
            if api.installed_recorder() is self.recorder:  # a next run may have installed its own
                api.install_recorder(None)
            self.errors.print_summary()  # the run has ended on this worker: one line per kind of error

    def stop_now(self) -> None:
        self._stopped = True
        if self._start_wait is not None:
            _wake(self._start_wait)
        for ex in self.executors:
            ex.stop_now()

    @property
    def interrupted_iterations(self) -> int:
        return sum(ex.interrupted for ex in self.executors)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _closing_idle_first(fn: Callable[[VU], Any]) -> Callable[[VU], Any]:
    """``fn`` with k6's ``noVUConnectionReuse``: each iteration starts by closing the VU's idle connections."""

    async def iteration(vu: VU) -> Any:
        await vu.http.close_idle()
        return await fn(vu)

    return iteration

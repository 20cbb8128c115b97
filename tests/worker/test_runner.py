"""The worker's run on virtual time: ``vus`` sampled at each whole second after Start."""

from __future__ import annotations

import asyncio
import types

import pytest

from surge.common.errors import ConfigError
from surge.common.protocol import ScenarioSlice
from surge.worker.runner import WorkerRun
from tests.virtual_time import run_virtual


def _module() -> types.ModuleType:
    mod = types.ModuleType("scenario_for_runner_tests")

    async def default(vu: object) -> None:
        await asyncio.sleep(0.3)

    mod.default = default  # type: ignore[attr-defined]
    return mod


def _slice(name: str, vus: int, start_s: float, duration_s: float, first_id: int) -> ScenarioSlice:
    return ScenarioSlice(
        name=name, executor="constant-vus", exec_name="default", start_time_s=start_s, duration_s=duration_s,
        graceful_stop_s=0.0, graceful_ramp_down_s=0.0, steps=[(0.0, vus), (duration_s, 0)],
        vu_ids=list(range(first_id, first_id + vus)),
    )


def test_running_vus_are_sampled_at_each_whole_second_after_start() -> None:
    async def main() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        run = WorkerRun(
            _module(), "scenario.py",
            [_slice("a", 2, 0.0, 2.5, 1), _slice("b", 1, 3.5, 1.0, 3)],
            env={}, submetrics=[],
        )
        play = asyncio.get_running_loop().create_task(run.play())
        await asyncio.sleep(1.5)
        first = run.take_vus_samples()
        await play
        return first, run.take_vus_samples()

    first, rest = run_virtual(main())
    assert first == [(0, 2), (1, 2)]
    assert rest == [(2, 2), (3, 0), (4, 1)]  # a ended at 2.5 (gracefulStop 0), b ran 3.5-4.5


def test_the_plan_starts_at_the_shared_instant_not_when_start_arrived() -> None:
    # Start.at is the fleet's start on this machine's clock: the plan's time 0 is that instant.
    async def main() -> tuple[float, list[tuple[int, int]]]:
        loop = asyncio.get_running_loop()
        run = WorkerRun(_module(), "scenario.py", [_slice("a", 1, 0.0, 1.5, 1)], env={}, submetrics=[])
        at = loop.time() + 0.75
        play = loop.create_task(run.play(at))
        await asyncio.sleep(0.5)
        before = run.take_vus_samples()
        assert run.elapsed_s == 0.0 and before == []  # nothing runs, nothing is sampled before the instant
        await play
        return loop.time() - at, run.take_vus_samples()

    ended_after, samples = run_virtual(main())
    assert ended_after == 1.5  # the plan's 1.5 s counted from the instant itself
    assert samples == [(0, 1), (1, 1)]


def test_a_start_instant_long_past_is_not_kept_and_a_stop_before_it_runs_nothing() -> None:
    async def late() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(10)
        run = WorkerRun(_module(), "scenario.py", [_slice("a", 1, 0.0, 1.0, 1)], env={}, submetrics=[])
        started = loop.time()
        await run.play(started - 5.0)  # far more than LATE_START_S ago: the plan starts now
        return loop.time() - started

    assert run_virtual(late()) == 1.0

    async def stopped() -> list[tuple[int, int]]:
        loop = asyncio.get_running_loop()
        run = WorkerRun(_module(), "scenario.py", [_slice("a", 1, 0.0, 1.0, 1)], env={}, submetrics=[])
        play = loop.create_task(run.play(loop.time() + 3.0))
        await asyncio.sleep(1.0)
        run.stop_now()
        await play
        return run.take_vus_samples()

    assert run_virtual(stopped()) == []


def test_k6s_http_options_shape_every_vus_client_and_a_bad_one_refuses_the_run() -> None:
    async def main() -> None:
        raw = {"userAgent": "ua/1", "maxRedirects": 2, "noConnectionReuse": True, "batch": 4, "batchPerHost": 1,
               "discardResponseBodies": True, "dns": {"ttl": "0"}, "hosts": {"a.test": "127.0.0.1"}}  # fmt: skip
        run = WorkerRun(_module(), "scenario.py", [_slice("a", 1, 0.0, 1.0, 1)], env={}, submetrics=[],
                        http_options=raw)  # fmt: skip
        client = run.lifecycle_vu("setup").http
        assert client._base_headers["User-Agent"] == "ua/1" and client._base_headers["Connection"] == "close"
        assert (client._max_redirects, client._discard) == (2, True)
        assert client._batch_limits == (4, 1)
        assert run._resolver.override("a.test", 80) == ("127.0.0.1", 80)  # one resolver for every VU
        assert client._transport._resolver is run._resolver
        with pytest.raises(ConfigError, match=r"scenario.py: invalid options: options.userAgent: expected a string"):
            WorkerRun(_module(), "scenario.py", [], env={}, submetrics=[], http_options={"userAgent": 1})

    asyncio.run(main())

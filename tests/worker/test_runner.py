"""The worker's run on virtual time: ``vus`` sampled at each whole second after Start."""

from __future__ import annotations

import asyncio
import types

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

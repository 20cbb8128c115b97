"""The shared sleeper on real loops (asyncio's and uvloop's): order, no early wake-up beyond the
loop's rounding, cancellation, and the edge values asyncio.sleep accepts."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.worker import sleeper
from surge.worker.sleeper import _EARLY_S, _SLEEPERS
from tests.virtual_time import run_virtual


def _run(loop_kind: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return uvloop.run(main()) if loop_kind == "uvloop" else asyncio.run(main())


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_sleepers_wake_in_order_and_not_early(loop_kind: str) -> None:
    async def main() -> list[tuple[float, float, float]]:
        loop = asyncio.get_running_loop()
        woke: list[tuple[float, float, float]] = []

        async def one(seconds: float) -> None:
            start = loop.time()
            await sleeper.sleep(seconds)
            woke.append((seconds, start + seconds, loop.time()))

        # a longer sleep first, then shorter ones: each shorter one must re-arm the timer earlier
        await asyncio.gather(*(one(s) for s in (0.3, 0.03, 0.01, 0.03, 0.045)))
        assert len(_SLEEPERS[loop]) == 0
        return woke

    woke = _run(loop_kind, main)
    assert [s for s, _, _ in woke] == [0.01, 0.03, 0.03, 0.045, 0.3]
    for _, due, at in woke:
        assert at >= due - _EARLY_S
    assert woke[-2][2] < woke[-1][1]  # the short ones did not wait for the long one's timer


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_cancelled_sleeper_is_skipped_and_the_others_still_wake(loop_kind: str) -> None:
    async def main() -> tuple[bool, list[str]]:
        order: list[str] = []

        async def one(name: str, seconds: float) -> None:
            await sleeper.sleep(seconds)
            order.append(name)

        doomed = asyncio.create_task(one("doomed", 0.02))
        kept = asyncio.create_task(one("kept", 0.04))
        await asyncio.sleep(0)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await kept
        return doomed.cancelled(), order

    assert _run(loop_kind, main) == (True, ["kept"])


def test_zero_yields_once_inf_never_wakes_and_nan_is_refused() -> None:
    async def main() -> None:
        ran: list[int] = []
        asyncio.get_running_loop().call_soon(ran.append, 1)
        await sleeper.sleep(0)
        assert ran == [1]  # the loop had its turn
        await sleeper.sleep(-1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sleeper.sleep(math.inf), 0.01)
        with pytest.raises(ValueError, match="nan"):
            sleeper.sleep(math.nan)

    uvloop.run(main())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0001, max_value=0.05), min_size=1, max_size=40))
def test_every_sleeper_wakes_once_not_early_and_within_a_millisecond_on_an_exact_clock(seconds: list[float]) -> None:
    """On a virtual clock (no lateness of its own), each sleep ends once, no earlier than its
    instant less half a millisecond, and no later than its instant rounded up to the millisecond;
    those due in the same millisecond in the order they began; the sleeper is left empty."""
    woke: list[tuple[int, float, float]] = []  # (order asked, due, woke at)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def one(i: int, s: float) -> None:
            due = loop.time() + s
            await sleeper.sleep(s)
            woke.append((i, due, loop.time()))

        await asyncio.gather(*(one(i, s) for i, s in enumerate(seconds)))
        assert len(_SLEEPERS[loop]) == 0

    run_virtual(main())
    assert sorted(i for i, _, _ in woke) == list(range(len(seconds)))
    for _, due, at in woke:
        assert due - _EARLY_S <= at <= math.ceil(due * 1000.0) / 1000.0 + 1e-9
    by_ms = [(math.ceil(due * 1000.0), i) for i, due, _ in woke]
    assert by_ms == sorted(by_ms)  # by millisecond, then in the order they began

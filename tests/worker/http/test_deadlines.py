"""The loop's deadlines for the fast transport's connections, on virtual time: each armed
deadline fires once, not early, within its millisecond; re-arming moves it, disarming forgets
it and keeps nothing of the connection."""

from __future__ import annotations

import asyncio
import gc
import math
import weakref

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.worker.http.transports.fast.deadlines import Deadlines, deadlines
from tests.virtual_time import run_virtual


class _Conn:
    def __init__(self, name: int, fired: list[tuple[int, float]]) -> None:
        self.name = name
        self.timer_ms = 0
        self._fired = fired

    def on_deadline(self, loop: asyncio.AbstractEventLoop) -> None:
        self._fired.append((self.name, loop.time()))


# per connection: when it is armed (s), and what happens next: nothing, a re-arm to another
# instant at some point before, or a disarm at some point before
_plans = st.lists(
    st.tuples(st.floats(min_value=0.001, max_value=0.2),
              st.sampled_from(["keep", "rearm", "disarm"]),
              st.floats(min_value=0.0, max_value=0.2)),
    min_size=1, max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(_plans)
def test_each_deadline_fires_once_within_its_millisecond_unless_moved_or_forgotten(
    plans: list[tuple[float, str, float]]
) -> None:
    fired: list[tuple[int, float]] = []
    expected: dict[int, float] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        wheel = deadlines(loop)
        conns = [_Conn(i, fired) for i in range(len(plans))]
        for conn, (when, _, _) in zip(conns, plans):
            wheel.arm(loop, conn, when)
        for conn, (when, change, other) in zip(conns, plans):
            if change == "keep":
                expected[conn.name] = when
            elif change == "rearm":
                loop.call_at(min(other, when) * 0.5, wheel.arm, loop, conn, when + other)
                expected[conn.name] = when + other
            else:
                loop.call_at(min(other, when) * 0.5, wheel.disarm, conn)
        await asyncio.sleep(0.5)
        assert len(wheel) == 0

    run_virtual(main())
    assert sorted(name for name, _ in fired) == sorted(expected)
    for name, at in fired:
        due = expected[name]
        assert due - 0.0005 <= at <= math.ceil(due * 1000.0) / 1000.0 + 1e-9


def test_a_disarmed_connection_is_not_kept_alive_by_the_deadlines() -> None:
    async def main() -> weakref.ref[_Conn]:
        loop = asyncio.get_running_loop()
        wheel = Deadlines()
        conn = _Conn(1, [])
        wheel.arm(loop, conn, loop.time() + 60.0)
        wheel.disarm(conn)
        gone = weakref.ref(conn)
        del conn
        gc.collect()
        return gone

    assert run_virtual(main())() is None


def test_a_deadline_armed_again_inside_its_own_callback_still_leaves_the_earliest_one_on_time() -> None:
    """A connection moved on to a later deadline from its callback must not push back the
    loop timer of another, earlier one."""
    fired: list[tuple[int, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        wheel = deadlines(loop)
        early, late = _Conn(1, fired), _Conn(2, fired)

        def again(loop: asyncio.AbstractEventLoop) -> None:
            fired.append((1, loop.time()))
            early.on_deadline = lambda loop: fired.append((3, loop.time()))  # type: ignore[method-assign]
            wheel.arm(loop, early, 0.5)

        early.on_deadline = again  # type: ignore[method-assign]
        wheel.arm(loop, early, 0.1)
        wheel.arm(loop, late, 0.2)
        await asyncio.sleep(1.0)

    run_virtual(main())
    assert fired == [(1, 0.1), (2, 0.2), (3, 0.5)]

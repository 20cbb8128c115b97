"""The worker's cyclic garbage collector: what has survived a full collection is frozen.

Why: a worker holding 10,000 VUs holds ~550,000 objects that live as long as the run (each
VU's coroutine, client, transport, connection, parser, socket transport, ...). CPython 3.11
traverses every one of them in each full (generation 2) collection, and the requests' own
short-lived objects set off such a collection about once a second: ~0.2 s of CPU each, about
a third of the worker's core at 10,000 VUs (py-spy and perf, bench/RESULTS.md), and a 0.2 s
stall of the loop that every request in flight waits through.

What: after each full collection, its survivors (by then, old by any measure) are moved to
CPython's permanent generation with ``gc.freeze()``, which no collection traverses. The
young generations are collected as before, so the requests' cyclic garbage is still found
at once. Frozen objects are still freed by reference counting; only a *cycle* among them
that becomes garbage (a stopped VU's connection and its parser refer to each other) waits
for a thaw: every ``thaw_every_s`` (60 s) the next full collection first unfreezes
everything (``gc.unfreeze()``), so it sees all of it, and the one after freezes again. At
10,000 VUs that is one 0.2 s collection a minute instead of one a second.

And the young generation is collected every ``YOUNG_THRESHOLD`` (20,000) net allocations
instead of CPython's 700. A young collection walks what was allocated since the last one and
is still alive; at 10,000 VUs that is mostly state that dies within a second (a sleeping VU's
future, a request in flight), which a collection every 700 allocations walks, promotes and
walks again in the middle generation before it dies anyway. Every 20,000 allocations most of
it is gone by then. Measured at 10,000 VUs with 1 s think time (bench/RESULTS.md, 2026-12-04):
the worker's median CPU 32-33 % of a core against 36 %, and 19 iterations for every VU in a
20 s run (190,000 requests, against 185,072: some VUs managed only 18). A young collection then walks at
most ~20,000 objects: a pause of ~20 ms at that scale, under the saturation monitor's 50 ms.

The policy is process-wide (the collector is): :func:`freezing_survivors` installs it for
the life of one worker and restores the collector's state afterwards.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["THAW_EVERY_S", "YOUNG_THRESHOLD", "FreezeSurvivors", "freezing_survivors"]

THAW_EVERY_S = 60.0
YOUNG_THRESHOLD = 20_000


class FreezeSurvivors:
    """The ``gc.callbacks`` hook of the policy (see the module docstring)."""

    def __init__(self, thaw_every_s: float = THAW_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.thaw_every_s = thaw_every_s
        self._clock = clock
        self._thawed_at = clock()
        self._thawing = False  # unfrozen, waiting for the full collection that will see it all
        self.freezes = self.thaws = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        # The collection is over (its "stop" phase): moving the generations' lists to the
        # permanent one is all gc.freeze() does, here as anywhere else.
        if self._thawing:  # this collection has seen every object: start a new period
            self._thawing = False
            self._thawed_at = self._clock()
        elif self._clock() - self._thawed_at >= self.thaw_every_s:
            gc.unfreeze()  # so that the next full collection looks at the frozen objects too
            self._thawing = True
            self.thaws += 1
            return
        gc.freeze()
        self.freezes += 1


@contextmanager
def freezing_survivors(
    thaw_every_s: float = THAW_EVERY_S, clock: Callable[[], float] = time.monotonic
) -> Iterator[FreezeSurvivors]:
    """Install the policy for the duration of the block (one worker's life)."""
    hook = FreezeSurvivors(thaw_every_s, clock)
    thresholds = gc.get_threshold()
    gc.collect()  # what imports and set-up left: collected once, the rest frozen
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    gc.callbacks.append(hook)
    try:
        yield hook
    finally:
        if hook in gc.callbacks:
            gc.callbacks.remove(hook)
        gc.set_threshold(*thresholds)
        gc.unfreeze()

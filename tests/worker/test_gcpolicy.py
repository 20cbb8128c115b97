"""The worker's collector policy on CPython's real collector: survivors of a full collection
are frozen, a thaw lets the next full collection find garbage among them, and leaving the
block restores the collector."""

from __future__ import annotations

import gc
import weakref

from surge.worker.gcpolicy import YOUNG_THRESHOLD, freezing_survivors


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_survivors_of_a_full_collection_are_frozen_and_thawed_on_schedule() -> None:
    now = [0.0]
    with freezing_survivors(thaw_every_s=60.0, clock=lambda: now[0]) as hook:
        node = _Node()
        alive = weakref.ref(node)
        gc.collect()  # node survives it: frozen
        assert gc.get_freeze_count() > 0 and hook.freezes >= 1
        del node
        gc.collect()
        assert alive() is not None  # frozen garbage waits for a thaw

        now[0] = 60.0
        gc.collect()  # this one unfreezes, for the next one to see everything
        assert hook.thaws == 1 and gc.get_freeze_count() == 0
        gc.collect()
        assert alive() is None  # found once thawed
        assert gc.get_freeze_count() > 0  # and what survived is frozen again
        gc.collect()
        assert hook.thaws == 1  # the next thaw is a whole period away
    assert gc.get_freeze_count() == 0 and hook not in gc.callbacks


def test_young_garbage_is_still_collected_at_once() -> None:
    with freezing_survivors():
        node = _Node()
        alive = weakref.ref(node)
        del node
        gc.collect(0)
        assert alive() is None


def test_young_collections_run_every_twenty_thousand_allocations_in_the_block_and_as_before_after() -> None:
    """The young generation's threshold is raised for the worker's life (gcpolicy's docstring
    says why), the older generations' are kept, and the collector's own are back once the
    block is left."""
    before = gc.get_threshold()
    with freezing_survivors():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert YOUNG_THRESHOLD == 20_000
    assert gc.get_threshold() == before

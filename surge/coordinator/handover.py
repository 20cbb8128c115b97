"""The ledger of a run's handovers: what each worker plays, and the Takeovers not yet answered.

Pure bookkeeping (no clock, no I/O): the session asks it what to send and tells it what came
back. Each worker plays its planned slices and whatever it took over; when it is lost, all of
that is what :func:`surge.coordinator.takeover.take_over` cuts up for the others. A Takeover is
*pending* until its worker answers ``Taken``: slices it hands back (its own run was over when
they came) go to another survivor, and a worker lost with a Takeover pending passes those
slices on with the rest of its share, so no part of a lost worker's share is dropped unseen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from surge.common.protocol import ScenarioSlice
from surge.coordinator.takeover import take_over


@dataclass(frozen=True)
class Pending:
    worker: int  # who was sent it
    lost: str  # whose share it was (for the summary if nobody can take it)
    slices: list[ScenarioSlice]


def _same(a: ScenarioSlice, b: ScenarioSlice) -> bool:
    """The same slice, wherever it was played (a machine's process numbers it member 0)."""
    return replace(a, member=0) == replace(b, member=0)


class Handovers:
    def __init__(self, planned: Sequence[Sequence[ScenarioSlice]]) -> None:
        self.playing: dict[int, list[ScenarioSlice]] = {i: list(s) for i, s in enumerate(planned)}
        self.pending: dict[int, Pending] = {}
        self._seq = 0

    def lost(self, worker: int) -> list[ScenarioSlice]:
        """Everything ``worker`` was to play (pending takeovers included); it plays nothing now."""
        for seq in [s for s, p in self.pending.items() if p.worker == worker]:
            del self.pending[seq]
        left, self.playing[worker] = self.playing.get(worker, []), []
        return left

    def hand_over(
        self,
        lost: str,
        slices: Sequence[ScenarioSlice],
        done: Mapping[str, int],
        at_s: float,
        survivors: Sequence[tuple[int, int]],
    ) -> dict[int, tuple[int, list[ScenarioSlice]]]:
        """``slices`` cut at ``at_s`` over ``survivors`` ``(worker, processes)``: worker -> (seq, its Takeover's slices)."""
        procs = [(w, member) for w, capacity in survivors for member in range(capacity)]
        shares = take_over(slices, done, at_s, [1] * len(procs))
        given: dict[int, list[ScenarioSlice]] = {}
        for (w, member), share in zip(procs, shares):
            if share:
                given.setdefault(w, []).extend(replace(sl, member=member) for sl in share)
        out: dict[int, tuple[int, list[ScenarioSlice]]] = {}
        for w, new in given.items():
            self._seq += 1
            self.playing.setdefault(w, []).extend(new)
            self.pending[self._seq] = Pending(w, lost, new)
            out[w] = (self._seq, new)
        return out

    def taken(self, worker: int, seq: int, refused: Sequence[ScenarioSlice]) -> Pending | None:
        """``worker`` answered Takeover ``seq``; what it handed back (as a Pending), or None if nothing.

        An answer that is not for a pending Takeover of that worker changes nothing.
        """
        pending = self.pending.get(seq)
        if pending is None or pending.worker != worker:
            return None
        del self.pending[seq]
        back = [sl for sl in pending.slices if any(_same(sl, r) for r in refused)]
        if not back:
            return None
        mine = self.playing.get(worker, [])
        for sl in back:
            for j, have in enumerate(mine):
                if _same(have, sl):
                    del mine[j]
                    break
        return Pending(worker, pending.lost, back)

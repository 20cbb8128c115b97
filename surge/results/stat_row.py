"""One series' numbers in one timeline point, packed: a shared tuple of names, one array of doubles.

A soak test keeps up to :data:`~surge.results.timeline.MAX_POINTS` points of every series for
its reports, so the shape of one point's numbers is the coordinator's memory slope over a long
run. A ``dict`` of eight stats with a ``float`` object each costs about 550 bytes; a
:class:`StatRow` costs about 180 (the names tuple is shared by every row of its type). It reads
as the ``Mapping[str, float]`` the dict was, so nothing downstream changes.

Not on the compiled hot path (:mod:`surge.hotpath`): mypyc's native classes cannot be a
``collections.abc.Mapping``, and a row is built once per series per closed point.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping


class StatRow(Mapping[str, float]):
    """``names[i]`` -> ``values[i]``, read-only; ``names`` holds each stat at most once."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: tuple[str, ...], values: Iterable[float]) -> None:
        packed = array("d", values)
        if len(packed) != len(names):
            raise ValueError(f"StatRow: {len(names)} names but {len(packed)} values")
        self._names = names
        self._values = packed

    @classmethod
    def of(cls, stats: Mapping[str, float]) -> StatRow:
        """A row holding what ``stats`` holds, in its order."""
        return cls(tuple(stats), stats.values())

    def __getitem__(self, stat: str) -> float:
        try:
            return self._values[self._names.index(stat)]
        except ValueError:
            raise KeyError(stat) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, stat: object) -> bool:
        return stat in self._names

    def __repr__(self) -> str:
        return f"StatRow({dict(self)!r})"

"""A timeline point's numbers, packed: one array of doubles per point, its layout shared.

A soak test keeps up to :data:`~surge.results.timeline.MAX_POINTS` points of every series for
its reports, so the shape of one point's numbers is the coordinator's memory slope over a long
run. As a ``dict`` per series of a ``float`` object per stat, a trend series cost about 430
bytes of Python objects per point (about 5 KB a point in the soak of bench/RESULTS.md).
:class:`PointValues` keeps the whole point in one ``array('d')`` (8 bytes a number) and points
to a :class:`Layout`, the series keys and each one's stat names and offset, which every point
of the same shape shares. Both read as the ``Mapping`` the dicts were (series key -> stat ->
value), so nothing downstream changes; a series read out is a :class:`StatRow`, built on access.

Not on the compiled hot path (:mod:`surge.hotpath`): mypyc's native classes cannot be a
``collections.abc.Mapping``, and a point is packed once, when its bucket closes.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping

# How many distinct layouts one cache keeps before it starts over (a scenario whose series
# change every interval must not grow it; a layout dropped from the cache stays with its points).
MAX_LAYOUTS = 64


class StatRow(Mapping[str, float]):
    """``names[i]`` -> ``values[i]``, read-only; ``names`` holds each stat at most once."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: tuple[str, ...], values: Iterable[float]) -> None:
        packed = array("d", values)
        if len(packed) != len(names):
            raise ValueError(f"StatRow: {len(names)} names but {len(packed)} values")
        self._names = names
        self._values = packed

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


class Layout:
    """Where each series' stats sit in a packed point: ``slots[key] = (offset, stat names)``."""

    __slots__ = ("keys", "slots", "size")

    def __init__(self, shape: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        self.keys = tuple(key for key, _ in shape)
        self.slots: dict[str, tuple[int, tuple[str, ...]]] = {}
        offset = 0
        for key, names in shape:
            self.slots[key] = (offset, names)
            offset += len(names)
        self.size = offset


class PointValues(Mapping[str, Mapping[str, float]]):
    """Series key -> :class:`StatRow`, read-only, the numbers of every series in one array."""

    __slots__ = ("_layout", "_values")

    def __init__(self, layout: Layout, values: array[float]) -> None:
        if len(values) != layout.size:
            raise ValueError(f"PointValues: the layout holds {layout.size} numbers, got {len(values)}")
        self._layout = layout
        self._values = values

    @classmethod
    def pack(cls, series: Mapping[str, Mapping[str, float]],
             layouts: dict[tuple[tuple[str, tuple[str, ...]], ...], Layout] | None = None) -> PointValues:
        """``series`` packed; ``layouts`` is the cache its layout is shared through (one per timeline)."""
        shape = tuple((key, tuple(stats)) for key, stats in series.items())
        layout = layouts.get(shape) if layouts is not None else None
        if layout is None:
            layout = Layout(shape)
            if layouts is not None:
                if len(layouts) >= MAX_LAYOUTS:
                    layouts.clear()
                layouts[shape] = layout
        # From a list, so the array is allocated at its size (extend over-allocates as it grows).
        return cls(layout, array("d", [x for stats in series.values() for x in stats.values()]))

    def __getitem__(self, key: str) -> StatRow:
        offset, names = self._layout.slots[key]
        return StatRow(names, self._values[offset:offset + len(names)])

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout.keys)

    def __len__(self) -> int:
        return len(self._layout.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._layout.slots

    def __repr__(self) -> str:
        return f"PointValues({ {key: dict(row) for key, row in self.items()}!r})"

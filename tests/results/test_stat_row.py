"""A packed row of stats reads exactly as the dict it was built from."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.results.stat_row import MAX_LAYOUTS, PointValues, StatRow

stats = st.dictionaries(st.sampled_from(["count", "avg", "min", "med", "max", "p(95)", "rate", "value"]),
                        st.floats(allow_nan=False), max_size=8)


@given(stats, st.text(max_size=6))
def test_a_row_reads_as_its_dict(d: dict[str, float], other: str) -> None:
    row = StatRow(tuple(d), d.values())
    assert dict(row) == d and list(row) == list(d) and len(row) == len(d)
    assert (other in row) == (other in d)
    assert row.get(other, -1.0) == d.get(other, -1.0)
    assert row == d  # Mapping's equality: the same items


def test_a_row_keeps_what_is_not_a_number_and_refuses_a_short_one() -> None:
    row = StatRow(("avg", "max"), (math.nan, math.inf))
    assert math.isnan(row["avg"]) and row["max"] == math.inf
    with pytest.raises(KeyError):
        row["p(99)"]
    with pytest.raises(ValueError, match="2 names but 1 values"):
        StatRow(("avg", "max"), (1.0,))


points = st.dictionaries(st.text(max_size=12), stats, max_size=6)


@given(st.lists(points, min_size=1, max_size=4), st.text(max_size=6))
def test_packed_points_read_as_their_dicts_and_share_a_layout(ds: list[dict[str, dict[str, float]]],
                                                              other: str) -> None:
    layouts: dict = {}  # type: ignore[type-arg]
    packed = [PointValues.pack(d, layouts) for d in ds]
    for d, p in zip(ds, packed):
        assert {key: dict(row) for key, row in p.items()} == d and list(p) == list(d)
        assert (other in p) == (other in d) and len(p) == len(d)
        assert p.get(other) is None if other not in d else dict(p[other]) == d[other]
    assert len(layouts) == len({tuple((k, tuple(v)) for k, v in d.items()) for d in ds})


def test_the_layout_cache_starts_over_rather_than_grow() -> None:
    layouts: dict = {}  # type: ignore[type-arg]
    for i in range(MAX_LAYOUTS * 3):
        p = PointValues.pack({f"s{i}": {"count": float(i)}}, layouts)
        assert p[f"s{i}"]["count"] == i
        assert len(layouts) <= MAX_LAYOUTS

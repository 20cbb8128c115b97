"""A latency sketch: a t-digest for quantiles, with count, sum, min and max kept exactly.

Why a t-digest: a run of hours at thousands of requests a second cannot keep every sample
(k6's ``TrendSink`` does, and its memory grows without bound). The digest keeps at most
``MAX_CENTROIDS`` weighted means, concentrated at the tails where p95/p99 live; merged over
several workers and many flushes its p50..p99 stay within 0.1 % of the exact values on
lognormal and Pareto latencies (within 0.3 % over 300 seeded runs: tests/common/test_sketch.py
keeps the raw samples and checks).

The digest itself is fastdigest's (Rust); surge never ships its private bytes. On the wire a
sketch is plain numbers, ``[count, sum, min, max, means, weights]``, and :meth:`Sketch.from_wire`
validates every field before it is merged, so a bad or hostile report cannot poison a run.

Workers build one sketch per series per flush from the raw values recorded since the last
flush (:meth:`Sketch.from_samples`, ~50 ns a value); the coordinator merges them. Merging is
associative but, like every t-digest, not bit-for-bit commutative, so the coordinator merges
in a fixed order (per worker in sequence order, then workers in index order).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Sequence
from typing import Any

from fastdigest import TDigest, merge_all

from surge.common.errors import ProtocolError

MAX_CENTROIDS = 1000
# Digests merged into a sketch wait here and are folded in together by fastdigest.merge_all.
# Folding them one at a time re-compresses the big digest on every merge, and over a run's
# hundreds of reports that drifted p99 by up to 1 % on heavy-tailed data; batches keep it
# under 0.15 % (tests/common/test_sketch.py) and cost less.
MERGE_BATCH = 64


def _short(v: object) -> str:
    return reprlib.repr(v)


def _finite(v: object, what: str) -> float:
    """``v`` as a finite float, or a ProtocolError (ints beyond float range included)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(f"sketch: {what} must be a number, got {_short(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise ProtocolError(f"sketch: {what} is out of range") from None
    if not math.isfinite(f):
        raise ProtocolError(f"sketch: {what} must be finite, got {f!r}")
    return f


class Sketch:
    """Mergeable summary of a stream of numbers. Empty sketches are valid and merge as identity."""

    __slots__ = ("count", "total", "min", "max", "_digest", "_pending", "_folded_cache")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        # Digests are never changed in place once built, so a sketch may share them.
        self._digest: TDigest | None = None
        self._pending: list[TDigest] = []
        # What a read sees: digest and pending folded together. Reads never change the fold
        # state itself (only every MERGE_BATCH-th merge does), so when a sketch is read, or
        # how often, cannot change what it finally holds.
        self._folded_cache: TDigest | None = None

    @classmethod
    def from_samples(cls, values: Sequence[float]) -> Sketch:
        sk = cls()
        if values:
            sk.count = len(values)
            sk.total = math.fsum(values)
            sk.min = min(values)
            sk.max = max(values)
            sk._digest = TDigest.from_values(values, max_centroids=MAX_CENTROIDS)
        return sk

    def merge(self, other: Sketch) -> None:
        """Fold ``other`` into this sketch (``other`` is left as it was)."""
        if other.count == 0:
            return
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        folded = other._folded()
        assert folded is not None
        self._pending.append(folded)
        self._folded_cache = None
        if len(self._pending) >= MERGE_BATCH:
            self._digest = self._folded()
            self._pending = []

    def _folded(self) -> TDigest | None:
        """Digest and pending digests folded in merge order (cached; the state is unchanged)."""
        if not self._pending:
            return self._digest
        if self._folded_cache is None:
            parts = self._pending if self._digest is None else [self._digest, *self._pending]
            self._folded_cache = parts[0] if len(parts) == 1 else merge_all(parts)
        return self._folded_cache

    def copy(self) -> Sketch:
        """An independent sketch in the same fold state (digests are shared: none is ever changed)."""
        sk = Sketch()
        sk.count, sk.total, sk.min, sk.max = self.count, self.total, self.min, self.max
        sk._digest, sk._pending, sk._folded_cache = self._digest, list(self._pending), self._folded_cache
        return sk

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1) with linear interpolation, as k6 and numpy compute it.

        Clamped to the exact min and max, so p(0) and p(100) are exact.
        """
        digest = self._folded()
        if digest is None:
            return math.nan
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        return min(max(float(digest.quantile(q)), self.min), self.max)

    def to_wire(self) -> list[Any]:
        digest = self._folded()
        if digest is None:
            return [0, 0.0, 0.0, 0.0, [], []]
        cents = digest.centroids
        return [
            self.count,
            self.total,
            self.min,
            self.max,
            [c[0] for c in cents],
            [c[1] for c in cents],
        ]

    @classmethod
    def from_wire(cls, obj: object) -> Sketch:
        """Rebuild a sketch from :meth:`to_wire`'s form, or raise ``ProtocolError`` naming the fault."""
        if not isinstance(obj, (list, tuple)) or len(obj) != 6:
            raise ProtocolError("sketch: expected [count, sum, min, max, means, weights]")
        count, total, lo, hi, means, weights = obj
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2**63:
            raise ProtocolError(f"sketch: count must be a non-negative 64-bit integer, got {_short(count)}")
        if not isinstance(means, (list, tuple)) or not isinstance(weights, (list, tuple)):
            raise ProtocolError("sketch: means and weights must be lists")
        if len(means) != len(weights):
            raise ProtocolError("sketch: means and weights differ in length")
        sk = cls()
        if count == 0:
            if means:
                raise ProtocolError("sketch: centroids given for an empty sketch")
            return sk
        total, lo, hi = _finite(total, "sum"), _finite(lo, "min"), _finite(hi, "max")
        if not means or len(means) > max(MAX_CENTROIDS * 2, 1) or len(means) > count:
            raise ProtocolError(f"sketch: {len(means)} centroids do not fit a count of {count}")
        if lo > hi:
            raise ProtocolError(f"sketch: min {lo!r} is above max {hi!r}")
        mass = 0.0
        previous = -math.inf
        for m, w in zip(means, weights):
            m, w = _finite(m, "centroid mean"), _finite(w, "centroid weight")
            if not w > 0:
                raise ProtocolError(f"sketch: centroid weight must be positive, got {w!r}")
            if m < previous:
                raise ProtocolError("sketch: centroid means must be in ascending order")
            previous = m
            # a centroid's mean is an average of values inside [min, max]; allow float rounding.
            slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
            if not (lo - slack <= m <= hi + slack):
                raise ProtocolError(f"sketch: centroid mean {m!r} outside [{lo!r}, {hi!r}]")
            mass += w
        if abs(mass - count) > 1e-6 * count:
            raise ProtocolError(f"sketch: centroid weights add to {mass!r}, count is {count}")
        if not (lo * count - abs(lo) * 1e-9 * count - 1e-9 <= total <= hi * count + abs(hi) * 1e-9 * count + 1e-9):
            raise ProtocolError(f"sketch: sum {total!r} impossible for {count} values in [{lo!r}, {hi!r}]")
        sk.count = count
        sk.total = float(total)
        sk.min = float(lo)
        sk.max = float(hi)
        sk._digest = TDigest.from_dict(
            {
                "max_centroids": MAX_CENTROIDS,
                "min": float(lo),
                "max": float(hi),
                "sum": float(total),
                "centroids": [{"m": float(m), "c": float(w)} for m, w in zip(means, weights)],
            }
        )
        return sk

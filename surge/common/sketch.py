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
flush (:meth:`Sketch.from_samples`, ~50 ns a value, at most :data:`WIRE_CENTROIDS` centroids);
the coordinator merges them into digests of ``MAX_CENTROIDS``. Merging is associative but,
like every t-digest, not bit-for-bit commutative: the coordinator merges each worker's reports
in sequence order, and the workers' in the order they were applied (see
:mod:`surge.coordinator.aggregate` for what that guarantees).

:meth:`Sketch.from_wire` is the coordinator's hot path (every trend of every report), so it
checks whole centroid lists with C-level passes and rebuilds digests through fastdigest's own
byte layout (proven at import); a sketch met again in the same report is validated once.
"""

from __future__ import annotations

import collections
import math
import operator
import reprlib
import struct
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from fastdigest import TDigest, merge_all

from surge.common.errors import ProtocolError

MAX_CENTROIDS = 1000
# A worker's sketch of one flush (one second of samples) is compressed harder before it is
# sent: at 1,000 samples a flush, MAX_CENTROIDS kept ~875 centroids, barely fewer than the
# samples, and the coordinator's CPU per report is proportional to the centroids it
# validates and merges. Merged at MAX_CENTROIDS, flushes of this size keep the fleet's
# p50..p99 within the same bounds (tests/common/test_sketch.py); sets of up to ~250 values
# still travel exactly (one centroid each).
WIRE_CENTROIDS = 300
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
            sk._digest = TDigest.from_values(values, max_centroids=WIRE_CENTROIDS)
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
            self._folded_cache = parts[0] if len(parts) == 1 else _merge_all(parts)
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
        """Rebuild a sketch from :meth:`to_wire`'s form, or raise ``ProtocolError`` naming the fault.

        The coordinator runs this for every trend of every report (a report of 1,000 requests
        carries ~9,000 centroids), so the centroid lists are checked with C-level passes over
        whole lists (types, one sum for finiteness, one sort for order, min for the weights);
        only a list that fails one of them is walked value by value, to name the fault.
        """
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
        shape = (count, total, lo, hi, len(means))
        for seen_shape, seen_means, seen_weights, seen in tuple(_RECENT):
            # One report often carries the same sketch under several keys (a scenario's
            # sub-metric of a one-scenario run, a custom trend of the request durations):
            # lists of numbers equal to ones validated already need no second validation.
            # Types first: True == 1.0, and a bool is not a number here. A copy shares the
            # digest, which is never changed in place. (-0.0 and 0.0 compare equal; both read as 0.)
            if (seen_shape == shape and _numbers_only(means) and _numbers_only(weights)
                    and seen_means == means and seen_weights == weights):
                return seen.copy()
        if not means or len(means) > max(MAX_CENTROIDS * 2, 1) or len(means) > count:
            raise ProtocolError(f"sketch: {len(means)} centroids do not fit a count of {count}")
        if lo > hi:
            raise ProtocolError(f"sketch: min {lo!r} is above max {hi!r}")
        checked = _fast_centroids(means, weights, lo, hi)
        if checked is None:
            _explain_centroids(means, weights, lo, hi)  # raises, naming the first bad centroid
            checked = [float(m) for m in means], [float(w) for w in weights]  # pragma: no cover - fast check was too strict
        fmeans, fweights = checked
        mass = sum(fweights)
        if abs(mass - count) > 1e-6 * count:
            raise ProtocolError(f"sketch: centroid weights add to {mass!r}, count is {count}")
        if not (lo * count - abs(lo) * 1e-9 * count - 1e-9 <= total <= hi * count + abs(hi) * 1e-9 * count + 1e-9):
            raise ProtocolError(f"sketch: sum {total!r} impossible for {count} values in [{lo!r}, {hi!r}]")
        sk.count = count
        sk.total = float(total)
        sk.min = float(lo)
        sk.max = float(hi)
        sk._digest = _digest_of(fmeans, fweights, float(total), float(lo), float(hi))
        _RECENT.append((shape, means, weights, sk.copy()))
        return sk


# The last sketches from_wire rebuilt, to recognise the same one again (see from_wire).
_RECENT: collections.deque[tuple[tuple[int, float, float, float, int], Sequence[Any], Sequence[Any], Sketch]] = (
    collections.deque(maxlen=8)
)


# The last folds, by the identity of their parts. Sketches fed the very same digests in the
# same order (a sub-metric that holds every sample of its metric: from_wire hands both the
# same digest) fold to the same result, so it is computed once and shared (never changed).
_FOLDS: collections.deque[tuple[list[TDigest], TDigest]] = collections.deque(maxlen=16)  # a report's trends fold together


def _merge_all(parts: list[TDigest]) -> TDigest:
    for seen, result in tuple(_FOLDS):
        if len(seen) == len(parts) and all(map(operator.is_, seen, parts)):
            return result
    result = merge_all(parts, max_centroids=MAX_CENTROIDS)
    _FOLDS.append((list(parts), result))  # the list keeps the parts alive: identities stay unique
    return result


_NUMBER_TYPES = frozenset({float, int})


def _numbers_only(values: Sequence[Any]) -> bool:
    return set(map(type, values)) <= _NUMBER_TYPES


def _floats(values: Sequence[Any]) -> list[float] | None:
    """``values`` as a list of finite floats, checked in C-level passes; None if any is not one."""
    kinds = set(map(type, values))
    if not kinds <= _NUMBER_TYPES:  # bool, str, None...: type(True) is bool, not int
        return None
    try:
        out = values if kinds == {float} and isinstance(values, list) else list(map(float, values))
    except OverflowError:  # an int beyond float range
        return None
    # One sum finds a NaN or an infinity anywhere; a sum of finite values that overflows is
    # only a false alarm, settled by the slow path.
    if not math.isfinite(sum(out)):
        return None
    return out


def _fast_centroids(means: Sequence[Any], weights: Sequence[Any], lo: float, hi: float) -> tuple[list[float], list[float]] | None:
    """The centroids as float lists if every rule holds (the rules of :func:`_explain_centroids`)."""
    fm, fw = _floats(means), _floats(weights)
    if fm is None or fw is None or not min(fw) > 0:
        return None
    if fm != sorted(fm):  # timsort of an ascending list is one linear pass
        return None
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
    if not (lo - slack <= fm[0] and fm[-1] <= hi + slack):  # ascending: the ends bound the rest
        return None
    return fm, fw


def _explain_centroids(means: Sequence[Any], weights: Sequence[Any], lo: float, hi: float) -> None:
    """Walk the centroids one by one and raise ProtocolError at the first that breaks a rule."""
    previous = -math.inf
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
    for m, w in zip(means, weights):
        m, w = _finite(m, "centroid mean"), _finite(w, "centroid weight")
        if not w > 0:
            raise ProtocolError(f"sketch: centroid weight must be positive, got {w!r}")
        if m < previous:
            raise ProtocolError("sketch: centroid means must be in ascending order")
        previous = m
        # a centroid's mean is an average of values inside [min, max]; allow float rounding.
        if not (lo - slack <= m <= hi + slack):
            raise ProtocolError(f"sketch: centroid mean {m!r} outside [{lo!r}, {hi!r}]")


def _digest_from_dict(means: list[float], weights: list[float], total: float, lo: float, hi: float) -> TDigest:
    return TDigest.from_dict(
        {
            "max_centroids": MAX_CENTROIDS,
            "min": lo,
            "max": hi,
            "sum": total,
            "centroids": [{"m": m, "c": w} for m, w in zip(means, weights)],
        }
    )


# fastdigest's own serialisation (from_bytes) rebuilds a digest ~50x faster than from_dict,
# which needs one Python dict per centroid. The layout is fastdigest 0.12's: magic, version,
# centroid count, max_centroids, mass, sum, min, max, n_values (the mass rounded), 12 reserved
# bytes, then (mean, weight) pairs. It is not trusted blindly: at import, digests packed this
# way are compared byte for byte with from_dict's on probes; on any difference (another
# fastdigest) every digest is built by from_dict, as before.
_HEAD = struct.Struct("<8sIQQddddQ12s")
_MAGIC, _VERSION, _RESERVED = b"FASTDIG~", 1, bytes(12)


def _rounded(mass: float) -> int:
    """Rust's ``mass.round() as u64`` for a positive mass: half away from zero, saturating."""
    r = math.floor(mass)
    if mass - r >= 0.5:
        r += 1
    return min(max(int(r), 0), 2**64 - 1)


def _digest_from_bytes(means: list[float], weights: list[float], total: float, lo: float, hi: float) -> TDigest:
    n = len(means)
    mass = sum(weights)
    head = _HEAD.pack(_MAGIC, _VERSION, n, MAX_CENTROIDS, mass, total, lo, hi, _rounded(mass), _RESERVED)
    body = array("d", bytes(16 * n))
    body[0::2] = array("d", means)
    body[1::2] = array("d", weights)
    if sys.byteorder != "little":  # pragma: no cover - the layout is little-endian
        body.byteswap()
    return TDigest.from_bytes(head + body.tobytes())


def _bytes_layout_holds() -> bool:
    probes = [
        ([1.0], [1.0], 1.0, 0.5, 2.0),
        ([1.0, 2.5, 4.0], [1.5, 2.0, 1.25], 11.5, 0.5, 5.0),
        ([1.0, 2.5, 4.0], [1.0, 2.0, 0.5], 7.0, 1.0, 4.0),
        ([-3.0 + 0.37 * i for i in range(200)], [0.1 + (i % 7) for i in range(200)], 1234.5, -3.0, 71.0),
    ]
    try:
        return all(
            _digest_from_bytes(*p).to_bytes() == _digest_from_dict(*p).to_bytes()
            and _digest_from_bytes(*p).to_dict() == _digest_from_dict(*p).to_dict()
            for p in probes
        )
    except Exception:  # noqa: BLE001 - any surprise means: do not use the fast path
        return False


FAST_DIGESTS = _bytes_layout_holds()
_digest_of = _digest_from_bytes if FAST_DIGESTS else _digest_from_dict

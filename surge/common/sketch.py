"""A latency sketch: a t-digest for quantiles, with count, sum, min and max kept exactly.

Why a t-digest: a run of hours at thousands of requests a second cannot keep every sample
(k6's ``TrendSink`` does, and its memory grows without bound). The digest keeps at most
``MAX_CENTROIDS`` weighted means, concentrated at the tails where p95/p99 live; merged over
several workers and many flushes its p50..p99 stay within 0.1 % of the exact values on
lognormal and Pareto latencies (within 0.3 % over 300 seeded runs: tests/common/test_sketch.py
keeps the raw samples and checks).

The digest itself is fastdigest's (Rust). On the wire a sketch is ``[count, sum, min, max,
centroids]``: four numbers and one msgpack ``bin`` of the centroids as (mean, weight) pairs of
little-endian IEEE-754 float64, 16 bytes a centroid (:func:`pack_centroids`), and
:meth:`Sketch.from_wire` validates every field before it is merged, so a bad or hostile report
cannot poison a run. Why bytes: a report carries ~10 trends of ~290 centroids, and as msgpack
floats they were ~5,800 Python objects to build and check per report, most of the
coordinator's decoding; as bytes they are one object per trend, read into an ``array('d')``
and checked in C-level passes, and the bytes that passed are handed to fastdigest as they
came (its own serialised layout puts the same pairs after a header).

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
        # Digests merged in and not yet folded, as fastdigest's serialised bytes: a live TDigest
        # object costs ~4.2 KB whatever it holds (one sample or a thousand centroids), and a
        # per-endpoint row fed a few requests a report kept up to MERGE_BATCH of them, so 100
        # rows held ~27 MB in a soak's coordinator; as bytes a one-sample digest is ~100 B.
        self._pending: list[bytes] = []
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
            if sk.min == sk.max:
                # One value repeated (a keep-alive run's http_req_connecting: 0 for every
                # request). fastdigest keeps a centroid per sample up to its limit (289 of
                # (0.0, 1.0) for 1,000 zeros), which the coordinator would validate and merge
                # one by one; one centroid of the whole weight says the same, exactly.
                sk._digest = TDigest.from_dict({"max_centroids": WIRE_CENTROIDS, "min": sk.min, "max": sk.max,
                                                "sum": sk.total, "centroids": [{"m": sk.min, "c": float(sk.count)}]})
            else:
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
        if other._digest is None and len(other._pending) == 1:
            # a sketch from the wire holds its validated bytes, fastdigest's layout (from_wire):
            # they are merged as they came, never built into a digest to be serialised again
            self._pending.append(other._pending[0])
        else:
            folded = other._folded()
            assert folded is not None
            self._pending.append(_packed(folded))
        self._folded_cache = None
        if len(self._pending) >= MERGE_BATCH:
            self._digest = self._folded()
            self._pending = []

    def _folded(self) -> TDigest | None:
        """Digest and pending digests folded in merge order (cached; the state is unchanged)."""
        if not self._pending:
            return self._digest
        if self._folded_cache is None:
            parts: list[TDigest | bytes] = [*self._pending] if self._digest is None else [self._digest, *self._pending]
            self._folded_cache = _merge_all(parts)
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
            return [0, 0.0, 0.0, 0.0, b""]
        return [self.count, self.total, self.min, self.max, _centroid_bytes(digest)]

    def centroids(self) -> list[tuple[float, float]]:
        """The digest's (mean, weight) pairs, ascending (empty for an empty sketch)."""
        digest = self._folded()
        return [] if digest is None else [(float(m), float(w)) for m, w in digest.centroids]

    @classmethod
    def from_wire(cls, obj: object) -> Sketch:
        """Rebuild a sketch from :meth:`to_wire`'s form, or raise ``ProtocolError`` naming the fault.

        The coordinator runs this for every trend of every report (a report of 1,000 requests
        carries ~2,900 centroids), so the centroids are read from their bytes into one
        ``array('d')`` and checked with C-level passes over it (one sum for finiteness, one
        sort comparison for order, min for the weights, the two ends against min/max); only
        centroids that fail one of them are walked one by one, to name the fault.
        """
        if not isinstance(obj, (list, tuple)) or len(obj) != 5:
            raise ProtocolError("sketch: expected [count, sum, min, max, centroids]")
        count, total, lo, hi, packed = obj
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2**63:
            raise ProtocolError(f"sketch: count must be a non-negative 64-bit integer, got {_short(count)}")
        if type(packed) is not bytes:
            raise ProtocolError(f"sketch: centroids must be bytes (msgpack bin), got {type(packed).__name__}")
        if len(packed) % _PAIR:
            raise ProtocolError(f"sketch: {len(packed)} bytes of centroids are not whole (mean, weight) pairs of float64")
        n = len(packed) // _PAIR
        sk = cls()
        if count == 0:
            if n:
                raise ProtocolError("sketch: centroids given for an empty sketch")
            return sk
        total, lo, hi = _finite(total, "sum"), _finite(lo, "min"), _finite(hi, "max")
        shape = (count, total, lo, hi)
        for seen_shape, seen_packed, seen in tuple(_RECENT):
            # One report often carries the same sketch under several keys (a scenario's
            # sub-metric of a one-scenario run, a custom trend of the request durations):
            # bytes equal to ones validated already need no second validation. A copy shares
            # the digest, which is never changed in place.
            if seen_shape == shape and seen_packed == packed:
                return seen.copy()
        if not n or n > max(MAX_CENTROIDS * 2, 1) or n > count:
            raise ProtocolError(f"sketch: {n} centroids do not fit a count of {count}")
        if lo > hi:
            raise ProtocolError(f"sketch: min {lo!r} is above max {hi!r}")
        pairs = array("d")
        pairs.frombytes(packed)
        if sys.byteorder != "little":  # pragma: no cover - the wire is little-endian
            pairs.byteswap()
        means, weights = pairs[0::2], pairs[1::2]
        if not _centroids_hold(packed, means, lo, hi):
            _explain_centroids(means, weights, lo, hi)  # raises, naming the first bad centroid
        mass = sum(weights)  # finite: every value is, and the sum of all was (_centroids_hold)
        if abs(mass - count) > 1e-6 * count:
            raise ProtocolError(f"sketch: centroid weights add to {mass!r}, count is {count}")
        if not (lo * count - abs(lo) * 1e-9 * count - 1e-9 <= total <= hi * count + abs(hi) * 1e-9 * count + 1e-9):
            raise ProtocolError(f"sketch: sum {total!r} impossible for {count} values in [{lo!r}, {hi!r}]")
        sk.count = count
        sk.total = total
        sk.min = lo
        sk.max = hi
        if FAST_DIGESTS:
            # Held as fastdigest's bytes, as a digest merged in and not yet folded: most such
            # sketches are only merged into others (the timeline's buckets, the endpoint rows),
            # which take the bytes as they are; a read builds the digest once (_folded).
            sk._pending = [_digest_blob(packed, mass, total, lo, hi)]
        else:
            sk._digest = _digest_from_dict(packed, means, weights, mass, total, lo, hi)
        _RECENT.append((shape, packed, sk.copy()))
        return sk


# The last sketches from_wire rebuilt, to recognise the same one again (see from_wire).
_RECENT: collections.deque[tuple[tuple[int, float, float, float], bytes, Sketch]] = collections.deque(maxlen=8)


# The last folds, by the identity of their parts. Sketches fed the very same digests in the
# same order (a sub-metric that holds every sample of its metric: from_wire hands both the
# same digest) fold to the same result, so it is computed once and shared (never changed).
_FOLDS: collections.deque[tuple[list[TDigest | bytes], TDigest]] = collections.deque(maxlen=16)  # a report's trends
# The last digests serialised for a pending list, by identity: two sketches merging the same
# digest then hold the same bytes object, so their folds still meet in _FOLDS.
_PACKED: collections.deque[tuple[TDigest, bytes]] = collections.deque(maxlen=16)


def _packed(digest: TDigest) -> bytes:
    for seen, packed in tuple(_PACKED):
        if seen is digest:
            return packed
    packed = digest.to_bytes()
    _PACKED.append((digest, packed))  # keeps the digest alive: its identity stays unique
    return packed


def _merge_all(parts: list[TDigest | bytes]) -> TDigest:
    """The fold of a digest and pending bytes (fastdigest's layout, exact round trip), in order."""
    for seen, result in tuple(_FOLDS):
        if len(seen) == len(parts) and all(map(operator.is_, seen, parts)):
            return result
    digests = [TDigest.from_bytes(p) if isinstance(p, bytes) else p for p in parts]
    result = digests[0] if len(digests) == 1 else merge_all(digests, max_centroids=MAX_CENTROIDS)
    _FOLDS.append((list(parts), result))  # the list keeps the parts alive: identities stay unique
    return result


_PAIR = 16  # bytes of one centroid on the wire: mean, weight as little-endian float64


def pack_centroids(means: Sequence[float], weights: Sequence[float]) -> bytes:
    """The wire's centroid bytes: (mean, weight) pairs, little-endian float64."""
    pairs = array("d", bytes(8 * 2 * len(means)))
    pairs[0::2] = array("d", means)
    pairs[1::2] = array("d", weights)
    if sys.byteorder != "little":  # pragma: no cover - the wire is little-endian
        pairs.byteswap()
    return pairs.tobytes()


def _centroid_bytes(digest: TDigest) -> bytes:
    """A digest's centroids in the wire's form: its own serialised pairs when the layout is
    proven (a slice of ``to_bytes``, no Python object per centroid), else packed anew."""
    if FAST_DIGESTS:
        return digest.to_bytes()[_HEAD.size:]
    cents = digest.centroids
    return pack_centroids([c[0] for c in cents], [c[1] for c in cents])


# Byte i of this table is i & 0x7F: applied to the top byte of each float64 (sign and the
# exponent's high 7 bits), it makes 0x7F wherever the exponent may be all ones (inf, NaN).
_HIGH_EXPONENT = bytes(i & 0x7F for i in range(256))


def _centroids_hold(packed: bytes, means: array[float], lo: float, hi: float) -> bool:
    """Whether every rule of :func:`_explain_centroids` holds, in C-level passes.

    Most of it is read off the raw bytes, without a Python object per value: a float64 is
    NaN or infinite only if its exponent is all ones, so no top byte with its low 7 bits
    all set means all are finite (such a byte is also any |value| >= 2**1009: those go
    the slow way, correctly); a weight with its sign bit clear and a non-zero top byte is
    at least 2**-1007, so positive. Order needs the values: a sort of the means' list
    (timsort on an ascending list is one pass) and one comparison with it.
    """
    if b"\x7f" in packed[7::_PAIR // 2].translate(_HIGH_EXPONENT):
        if not math.isfinite(sum(array("d", packed))):  # byte order aside: inf and NaN stay so
            return False
    tops = packed[_PAIR - 1::_PAIR]  # the weights' top bytes
    if not tops.isascii() or b"\x00" in tops:
        weights = array("d", packed)[1::2]
        if sys.byteorder != "little":  # pragma: no cover - the wire is little-endian
            weights.byteswap()
        if not min(weights) > 0:
            return False
    ordered = means.tolist()
    if ordered != sorted(ordered):
        return False
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
    return lo - slack <= ordered[0] and ordered[-1] <= hi + slack  # ascending: the ends bound the rest


def _explain_centroids(means: Sequence[float], weights: Sequence[float], lo: float, hi: float) -> None:
    """Walk the centroids one by one and raise ProtocolError at the first that breaks a rule.

    Returns only if every centroid is fine (the fast check's sum overflowed on finite values).
    """
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


def _digest_from_dict(packed: bytes, means: Sequence[float], weights: Sequence[float], mass: float, total: float,
                      lo: float, hi: float) -> TDigest:
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
# bytes, then (mean, weight) pairs as little-endian float64: the wire's centroid bytes
# exactly, so a digest is its header and the bytes that arrived. It is not trusted blindly:
# at import, digests built this way are compared byte for byte with from_dict's on probes,
# and the pairs a digest serialises with the wire's packing; on any difference (another
# fastdigest) every digest is built by from_dict and packed from its centroids, as before.
_HEAD = struct.Struct("<8sIQQddddQ12s")
_MAGIC, _VERSION, _RESERVED = b"FASTDIG~", 1, bytes(12)


def _rounded(mass: float) -> int:
    """Rust's ``mass.round() as u64`` for a positive mass: half away from zero, saturating."""
    r = math.floor(mass)
    if mass - r >= 0.5:
        r += 1
    return min(max(int(r), 0), 2**64 - 1)


def _digest_blob(packed: bytes, mass: float, total: float, lo: float, hi: float) -> bytes:
    """fastdigest's serialised digest of validated centroid bytes (``mass``: the weights' sum, in order)."""
    return _HEAD.pack(_MAGIC, _VERSION, len(packed) // _PAIR, MAX_CENTROIDS, mass, total, lo, hi, _rounded(mass),
                      _RESERVED) + packed


def _digest_from_bytes(packed: bytes, means: Sequence[float], weights: Sequence[float], mass: float, total: float,
                       lo: float, hi: float) -> TDigest:
    """The digest of validated centroid bytes (``mass``: the weights' sum, in order)."""
    return TDigest.from_bytes(_digest_blob(packed, mass, total, lo, hi))


def _bytes_layout_holds() -> bool:
    probes = [
        ([1.0], [1.0], 1.0, 0.5, 2.0),
        ([1.0, 2.5, 4.0], [1.5, 2.0, 1.25], 11.5, 0.5, 5.0),
        ([1.0, 2.5, 4.0], [1.0, 2.0, 0.5], 7.0, 1.0, 4.0),
        ([-3.0 + 0.37 * i for i in range(200)], [0.1 + (i % 7) for i in range(200)], 1234.5, -3.0, 71.0),
    ]
    try:
        for means, weights, total, lo, hi in probes:
            packed, mass = pack_centroids(means, weights), sum(weights)
            fast = _digest_from_bytes(packed, means, weights, mass, total, lo, hi)
            slow = _digest_from_dict(packed, means, weights, mass, total, lo, hi)
            if fast.to_bytes() != slow.to_bytes() or fast.to_dict() != slow.to_dict():
                return False
            if fast.to_bytes()[_HEAD.size:] != packed:  # what _centroid_bytes sends
                return False
        sent = TDigest.from_values([0.5 * i * i for i in range(400)], max_centroids=50)
        cents = sent.centroids
        return sent.to_bytes()[_HEAD.size:] == pack_centroids([c[0] for c in cents], [c[1] for c in cents])
    except Exception:  # noqa: BLE001 - any surprise means: do not use the fast path
        return False


FAST_DIGESTS = _bytes_layout_holds()

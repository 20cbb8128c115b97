"""The latency sketch: accuracy against exact percentiles, merge laws, and wire validation.

Accuracy is a requirement of the project: p50..p99 of the fleet-wide merged sketch must be
within 0.5 % of the exact percentiles of the same samples. The fleet is simulated the way a
run builds it: one sketch per worker per flush (:meth:`Sketch.from_samples`), sent as its wire
form, rebuilt by :meth:`Sketch.from_wire`, merged per worker in sequence order, then across
workers in worker order.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.errors import ProtocolError
from surge.common.sketch import MAX_CENTROIDS, MERGE_BATCH, Sketch, _centroids_hold, _explain_centroids, pack_centroids

QUANTILES = (0.5, 0.9, 0.95, 0.99)
WORKERS, FLUSHES = 4, 30
ACCURACY = 0.005  # relative, the project's requirement

Latencies = Callable[[np.random.Generator, int], np.ndarray]


def _lognormal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.lognormal(4.0, 0.8, n)  # median ~55 ms


def _pareto(rng: np.random.Generator, n: int) -> np.ndarray:
    return 10.0 * (1.0 + rng.pareto(1.5, n))  # Pareto alpha 1.5, scale 10 ms: infinite variance


def _mixture(rng: np.random.Generator, n: int) -> np.ndarray:
    fast = rng.lognormal(4.0, 0.5, n)
    slow = rng.lognormal(7.0, 0.5, n)  # a 2 % slow mode ~20x slower: p99 lies inside it
    return np.where(rng.random(n) < 0.02, slow, fast)


DISTRIBUTIONS: dict[str, Latencies] = {"lognormal": _lognormal, "pareto": _pareto, "mixture": _mixture}


def _over_the_wire(sk: Sketch) -> Sketch:
    return Sketch.from_wire(msgpack.unpackb(msgpack.packb(sk.to_wire())))


def _fleet(
    latencies: Latencies, seed: int, workers: int = WORKERS, flushes: int = FLUSHES
) -> tuple[Sketch, np.ndarray]:
    """The coordinator's merged sketch for a simulated run, and every raw sample of it."""
    rng = np.random.default_rng(seed)
    samples: list[np.ndarray] = []
    per_worker: list[Sketch] = []
    for _ in range(workers):
        worker = Sketch()
        for _ in range(flushes):
            flush = latencies(rng, int(rng.integers(1000, 5001)))
            samples.append(flush)
            worker.merge(_over_the_wire(Sketch.from_samples(flush.tolist())))
        per_worker.append(worker)
    fleet = Sketch()
    for worker in per_worker:
        fleet.merge(worker)
    return fleet, np.concatenate(samples)


def _relative_errors(fleet: Sketch, samples: np.ndarray) -> dict[float, float]:
    exact = np.quantile(samples, QUANTILES)  # numpy's default: linear interpolation
    return {q: abs(fleet.quantile(q) / float(e) - 1.0) for q, e in zip(QUANTILES, exact)}


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
def test_fleet_percentiles_are_within_half_a_percent(dist: str, seed: int) -> None:
    fleet, samples = _fleet(DISTRIBUTIONS[dist], seed)

    errors = _relative_errors(fleet, samples)
    assert max(errors.values()) <= ACCURACY, errors
    assert fleet.count == samples.size
    assert fleet.min == float(samples.min())
    assert fleet.max == float(samples.max())
    assert fleet.quantile(0.0) == fleet.min
    assert fleet.quantile(1.0) == fleet.max
    assert math.isclose(fleet.mean, float(np.mean(samples)), rel_tol=1e-12, abs_tol=0.0)


# Seeds 0..99 of each distribution, swept once: 5 of 300 runs miss (lognormal: none).
# Runs on which folding digests in one at a time drifted p99 past 0.5 % (1.03 %, 0.69 %);
# batched merge_all keeps them inside it.
HEAVY_TAILED_MISSES = [("pareto", 69), ("mixture", 12)]


@pytest.mark.parametrize(("dist", "seed"), HEAVY_TAILED_MISSES)
def test_fleet_p99_stays_within_half_a_percent_on_every_heavy_tailed_run(dist: str, seed: int) -> None:
    fleet, samples = _fleet(DISTRIBUTIONS[dist], seed)

    errors = _relative_errors(fleet, samples)
    assert max(errors.values()) <= ACCURACY, errors


@pytest.mark.parametrize("dist", ["pareto", "mixture"])
def test_a_long_run_stays_within_half_a_percent(dist: str) -> None:
    # 2 workers x 250 flushes: each worker's sketch folds several full batches into its digest.
    fleet, samples = _fleet(DISTRIBUTIONS[dist], 0, workers=2, flushes=250)

    errors = _relative_errors(fleet, samples)
    assert max(errors.values()) <= ACCURACY, errors
    assert fleet.count == samples.size


@pytest.mark.parametrize(("dist", "seed"), HEAVY_TAILED_MISSES)
def test_one_digest_of_the_same_samples_is_accurate(dist: str, seed: int) -> None:
    # The samples themselves are easy: whatever the fleet loses, it loses in merging.
    _, samples = _fleet(DISTRIBUTIONS[dist], seed)
    one = Sketch.from_samples(samples.tolist())

    errors = _relative_errors(one, samples)
    assert max(errors.values()) <= ACCURACY / 2, errors


# --------------------------------------------------------------------------- small sets: exact

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=50), q=st.floats(min_value=0.0, max_value=1.0))
def test_small_sets_give_numpys_linear_interpolation(values: list[float], q: float) -> None:
    sk = _over_the_wire(Sketch.from_samples(values))

    expected = float(np.quantile(values, q))
    spread = max(values) - min(values)
    assert math.isclose(sk.quantile(q), expected, rel_tol=1e-9, abs_tol=1e-9 * spread)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 50])
def test_small_sets_at_every_percent(n: int) -> None:
    values = np.random.default_rng(n).lognormal(4.0, 0.8, n).tolist()
    sk = Sketch.from_samples(values)

    for q in np.linspace(0.0, 1.0, 101):
        assert sk.quantile(float(q)) == pytest.approx(float(np.quantile(values, q)), rel=1e-12)
    assert sk.quantile(0.0) == min(values)
    assert sk.quantile(1.0) == max(values)


@settings(max_examples=100, deadline=None)
@given(value=finite, n=st.integers(1, 5000), others=st.lists(finite, max_size=20))
def test_one_value_repeated_travels_as_one_centroid(value: float, n: int, others: list[float]) -> None:
    """A flush of one repeated value (a keep-alive run's connection times: all 0) is one centroid
    of the whole weight on the wire, not one per sample: exact, and what the coordinator
    validates and merges shrinks with it. Merged with other samples it counts in full."""
    sk = Sketch.from_samples([value] * n)
    wire = sk.to_wire()

    assert wire[:4] == [n, math.fsum([value] * n), value, value]
    assert array("d", wire[4]).tolist() == [value, float(n)]
    back = _over_the_wire(sk)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert back.quantile(q) == value
    merged = _merged([value] * n, others)
    assert merged.count == n + len(others)
    assert merged.min == min([value, *others]) and merged.max == max([value, *others])


def test_an_empty_sketch() -> None:
    sk = Sketch()

    assert sk.count == 0
    assert math.isnan(sk.mean)
    assert math.isnan(sk.quantile(0.5))
    assert sk.to_wire() == [0, 0.0, 0.0, 0.0, b""]
    assert Sketch.from_wire(sk.to_wire()).to_wire() == sk.to_wire()


# --------------------------------------------------------------------------- merge laws

latency = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
small_batch = st.lists(latency, max_size=60)


@dataclass(frozen=True)
class Generated:
    """A batch large enough for the digest to compress, shown by its recipe, not its values."""

    dist: str
    seed: int
    n: int

    def values(self) -> list[float]:
        rng = np.random.default_rng(self.seed)
        return [float(v) for v in DISTRIBUTIONS[self.dist](rng, self.n)]


generated = st.builds(
    Generated, st.sampled_from(sorted(DISTRIBUTIONS)), st.integers(0, 2**32 - 1), st.integers(0, 4000)
)
Batch = list[float] | Generated


def _values(batch: Batch) -> list[float]:
    return batch.values() if isinstance(batch, Generated) else batch


def _merged(*batches: list[float]) -> Sketch:
    out = Sketch()
    for b in batches:
        out.merge(_over_the_wire(Sketch.from_samples(b)))
    return out


def _wire_bytes(sk: Sketch) -> bytes:
    """Bit-exact form: msgpack keeps every float's bits (and tells 0.0 from -0.0)."""
    return msgpack.packb(sk.to_wire())  # type: ignore[no-any-return]


def _assert_sum_close(got: float, values: list[float]) -> None:
    # merge adds per-batch sums with float `+`; each addition may round once.
    bound = 4 * (len(values) + 1) * 2.0**-52 * math.fsum(abs(v) for v in values)
    assert abs(got - math.fsum(values)) <= bound


@settings(max_examples=100, deadline=None)
@given(batch=st.one_of(small_batch, generated))
def test_the_empty_sketch_is_an_identity(batch: Batch) -> None:
    a = Sketch.from_samples(_values(batch))

    left = Sketch()
    left.merge(a)
    right = a.copy()
    right.merge(Sketch())
    right.merge(Sketch.from_wire([0, 0.0, 0.0, 0.0, b""]))

    assert _wire_bytes(left) == _wire_bytes(a)
    assert _wire_bytes(right) == _wire_bytes(a)


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.one_of(small_batch, generated), min_size=1, max_size=4))
def test_a_merge_keeps_count_sum_min_max_of_the_concatenation(batches: list[Batch]) -> None:
    values = [_values(b) for b in batches]
    merged = _merged(*values)
    everything = [v for b in values for v in b]

    assert merged.count == len(everything)
    if everything:
        assert merged.min == min(everything)
        assert merged.max == max(everything)
        _assert_sum_close(merged.total, everything)
    else:
        assert merged.to_wire() == Sketch().to_wire()


def test_merge_leaves_the_other_sketch_as_it_was() -> None:
    a = Sketch.from_samples([1.0, 2.0, 3.0])
    b = Sketch.from_samples([10.0, 20.0])
    before = _wire_bytes(b)

    a.merge(b)
    a.merge(Sketch.from_samples([100.0]))

    assert _wire_bytes(b) == before
    assert a.count == 6


@st.composite
def three_batches(draw: st.DrawFn) -> tuple[Batch, Batch, Batch]:
    """Three adversarial small lists (kept exactly), or three flushes of one latency distribution."""
    if draw(st.booleans()):
        return draw(small_batch), draw(small_batch), draw(small_batch)
    dist = draw(st.sampled_from(sorted(DISTRIBUTIONS)))
    flush = st.builds(Generated, st.just(dist), st.integers(0, 2**32 - 1), st.integers(1000, 5000))
    return draw(flush), draw(flush), draw(flush)


def _both_orders(batches: tuple[list[float], ...]) -> tuple[Sketch, Sketch]:
    a, b, c = (_over_the_wire(Sketch.from_samples(x)) for x in batches)
    left = a.copy()
    left.merge(b)
    left.merge(c)
    bc = b.copy()
    bc.merge(c)
    right = a.copy()
    right.merge(bc)
    return left, right


# 0.4 percentile points. Flush sketches travel at WIRE_CENTROIDS (300): seen < 0.2 at p99 of 300
# random triples and up to 0.3 at worst, also when the three flushes hold the same samples (same
# seed, which hypothesis finds); at 1000 centroids such triples reached 0.2, the bound this had then.
RANK_TOLERANCE = 0.004


@settings(max_examples=100, deadline=None)
@given(batches=three_batches())
def test_merge_is_associative(batches: tuple[Batch, Batch, Batch]) -> None:
    values = tuple(_values(b) for b in batches)
    left, right = _both_orders(values)

    assert (left.count, left.min, left.max) == (right.count, right.min, right.max)
    assert left.total == pytest.approx(right.total, rel=1e-12, abs=1e-300)
    if left.count == 0:
        return
    if left.count <= 180:  # every sample is its own centroid: both orders are exact
        for q in QUANTILES:
            assert left.quantile(q) == pytest.approx(right.quantile(q), rel=1e-9, abs=1e-12)
        return
    # Compressed: both orders put each quantile at nearly the right rank of the exact samples.
    # (In value space the orders can be further apart than 0.5 % where samples are sparse.)
    ordered = np.sort(np.concatenate(values))
    for q in QUANTILES:
        for estimate in (left.quantile(q), right.quantile(q)):
            lowest = np.searchsorted(ordered, estimate, "left") / ordered.size
            highest = np.searchsorted(ordered, estimate, "right") / ordered.size
            assert lowest - RANK_TOLERANCE <= q <= highest + RANK_TOLERANCE, (q, estimate)


def test_merge_order_moves_quantiles_by_less_than_half_a_percent_or_one_sample_gap() -> None:
    # Three small flushes of a bimodal mixture: around p99 neighbouring samples are ~5 % apart,
    # where no sketch (nor numpy's choice of interpolation) pins a value to 0.5 %. The two merge
    # orders must agree within 0.5 %, or within the gap between the samples around that rank.
    batches = (Generated("mixture", 31507, 1895), Generated("mixture", 29145, 2872), Generated("mixture", 22337, 1008))
    values = tuple(b.values() for b in batches)
    left, right = _both_orders(values)
    ordered = np.sort(np.concatenate([np.asarray(v) for v in values]))

    for q in QUANTILES:
        i = int(q * (ordered.size - 1))
        gap = float(ordered[min(i + 2, ordered.size - 1)] - ordered[max(i - 1, 0)])
        diff = abs(left.quantile(q) - right.quantile(q))
        assert diff <= max(ACCURACY * abs(right.quantile(q)), gap), (q, diff, gap)


def _flush_wires(n: int) -> list[Any]:
    rng = np.random.default_rng(7)
    wires = [Sketch.from_samples(_pareto(rng, int(rng.integers(500, 5000))).tolist()).to_wire() for _ in range(n)]
    wires.insert(13, Sketch().to_wire())
    return msgpack.unpackb(msgpack.packb(wires))  # type: ignore[no-any-return]


def test_merging_the_same_wire_sketches_twice_is_bit_identical() -> None:
    wires = _flush_wires(150)  # more than one merge batch

    def fold() -> bytes:
        out = Sketch()
        for w in wires:
            out.merge(Sketch.from_wire(w))
        return _wire_bytes(out)

    assert fold() == fold()


def test_reading_a_sketch_between_merges_does_not_change_what_it_merges_to() -> None:
    wires = _flush_wires(150)

    def fold(read_every: int) -> bytes:
        out = Sketch()
        for i, w in enumerate(wires, 1):
            out.merge(Sketch.from_wire(w))
            if read_every and i % read_every == 0:
                out.quantile(0.99)  # what a live threshold check does
        return _wire_bytes(out)

    assert fold(0) == fold(10)


def test_digests_waiting_to_be_folded_are_held_compactly() -> None:
    """A sketch merged from small sketches (a per-endpoint row: a few requests a report) holds
    each pending digest in a few hundred bytes, not as a live fastdigest object (~4.2 KB
    whatever it holds): 100 rows x 63 pending digests was ~27 MB of a soak's coordinator.
    Measured as the memory of 63 pending digests less that of 23, so the module's small
    fixed caches (the last few digests and folds) cancel out."""
    import gc
    import tracemalloc

    def held(n: int) -> tuple[int, Sketch]:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            out = Sketch()
            sources = [Sketch.from_samples([float(i)]) for i in range(n)]
            for src in sources:
                out.merge(src)
            del src, sources  # the merged sketch must not need them, nor their digests
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before, out
        finally:
            tracemalloc.stop()

    (small, _), (big, out) = held(23), held(MERGE_BATCH - 1)
    assert len(out._pending) == MERGE_BATCH - 1  # not folded yet: this is what waits
    per_digest = (big - small) / (MERGE_BATCH - 1 - 23)
    assert per_digest < 300, f"{per_digest:.0f} bytes per pending one-sample digest"
    assert out.count == MERGE_BATCH - 1 and out.quantile(0.5) == 31.0


@settings(max_examples=50, deadline=None)
@given(batch=st.one_of(small_batch, generated))
def test_wire_round_trip_is_exact(batch: Batch) -> None:
    sk = Sketch.from_samples(_values(batch))
    back = _over_the_wire(sk)

    assert _wire_bytes(back) == _wire_bytes(sk)
    if sk.count:
        for q in QUANTILES:
            assert back.quantile(q) == sk.quantile(q)


# --------------------------------------------------------------------------- from_wire refusals

P = pack_centroids
VALID = [4, 10.0, 1.0, 4.0, P([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])]
NAN, INF = math.nan, math.inf


def _with(i: int, value: Any) -> list[Any]:
    out = list(VALID)
    out[i] = value
    return out


def _cents(means: list[float], weights: list[float]) -> list[Any]:
    return _with(4, P(means, weights))


def test_the_valid_example_is_accepted() -> None:
    assert Sketch.from_wire(VALID).to_wire() == Sketch.from_samples([1.0, 2.0, 3.0, 4.0]).to_wire()
    assert Sketch.from_wire(tuple(VALID)).count == 4
    assert Sketch.from_wire([4, 10, 1, 4, VALID[4]]).quantile(0.5) == 2.5  # ints, as msgpack may give


def test_the_wire_form_is_float64_pairs_in_one_bin() -> None:
    sk = Sketch.from_samples([1.0, 2.0, 8.5])
    count, total, lo, hi, packed = sk.to_wire()

    assert (count, total, lo, hi) == (3, 11.5, 1.0, 8.5)
    assert packed == struct.pack("<6d", 1.0, 1.0, 2.0, 1.0, 8.5, 1.0)  # (mean, weight) little-endian
    assert packed == P(*zip(*sk.centroids()))
    assert msgpack.unpackb(msgpack.packb(sk.to_wire(), use_bin_type=True)) == sk.to_wire()  # bin stays bytes


@pytest.mark.parametrize(
    "wire, reason",
    [
        pytest.param("not a list", "expected", id="not a list"),
        pytest.param(None, "expected", id="None"),
        pytest.param({"count": 4}, "expected", id="a map"),
        pytest.param(VALID[:4], "expected", id="too short"),
        pytest.param([*VALID, 0], "expected", id="too long"),
        pytest.param([4, 10.0, 1.0, 4.0, [1.0, 2.0, 3.0, 4.0], [1.0] * 4], "expected", id="protocol 3's two lists"),
        pytest.param([], "expected", id="empty list"),
        pytest.param(_with(0, -1), "count", id="negative count"),
        pytest.param(_with(0, True), "count", id="bool count"),
        pytest.param(_with(0, 4.0), "count", id="float count"),
        pytest.param(_with(0, "4"), "count", id="str count"),
        pytest.param(_with(1, NAN), "sum", id="NaN sum"),
        pytest.param(_with(1, INF), "sum", id="inf sum"),
        pytest.param(_with(1, True), "sum", id="bool sum"),
        pytest.param(_with(2, NAN), "min", id="NaN min"),
        pytest.param(_with(2, -INF), "min", id="-inf min"),
        pytest.param(_with(3, NAN), "max", id="NaN max"),
        pytest.param(_with(3, INF), "max", id="inf max"),
        pytest.param(_with(3, "4"), "max", id="str max"),
        pytest.param(_with(4, [1.0, 2.0]), "must be bytes", id="centroids a list"),
        pytest.param(_with(4, "1234"), "must be bytes", id="centroids a str"),
        pytest.param(_with(4, None), "must be bytes", id="centroids None"),
        pytest.param(_with(4, bytearray(VALID[4])), "must be bytes", id="centroids a bytearray"),
        pytest.param(_with(4, VALID[4][:-1]), "not whole", id="centroids one byte short"),
        pytest.param(_with(4, VALID[4][:-8]), "not whole", id="a mean without its weight"),
        pytest.param(_cents([1.0, NAN, 3.0, 4.0], [1.0] * 4), "centroid mean", id="NaN mean"),
        pytest.param(_cents([1.0, 2.0, 3.0, INF], [1.0] * 4), "centroid mean", id="inf mean"),
        pytest.param(_cents([-INF, 2.0, 3.0, 4.0], [1.0] * 4), "centroid mean", id="-inf mean"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 2.0, 1.0]), "positive", id="zero weight"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.0], [1.0, -0.0, 2.0, 1.0]), "positive", id="minus zero weight"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.0], [2.0, -1.0, 2.0, 1.0]), "positive", id="negative weight"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.0], [1.0, NAN, 1.0, 1.0]), "centroid weight", id="NaN weight"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.0], [1.0, INF, 1.0, 1.0]), "centroid weight", id="inf weight"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 2.0]), "add to", id="weights add to more than count"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 0.5]), "add to", id="weights add to less than count"),
        pytest.param(_cents([1.0, 3.0, 2.0, 4.0], [1.0] * 4), "ascending", id="means out of order"),
        pytest.param([4, 10.0, 4.0, 1.0, VALID[4]], "above max", id="min above max"),
        pytest.param(_cents([0.5, 2.0, 3.0, 4.0], [1.0] * 4), "outside", id="centroid below min"),
        pytest.param(_cents([1.0, 2.0, 3.0, 4.5], [1.0] * 4), "outside", id="centroid above max"),
        pytest.param([0, 0.0, 0.0, 0.0, P([1.0], [1.0])], "empty sketch", id="centroids for an empty sketch"),
        pytest.param([1, 1.0, 1.0, 1.0, b""], "do not fit", id="no centroids for a count"),
        pytest.param([1, 1.0, 1.0, 1.0, P([1.0, 1.0], [0.5, 0.5])], "do not fit", id="more centroids than values"),
        pytest.param([3 * MAX_CENTROIDS, 3.0 * MAX_CENTROIDS, 1.0, 1.0, P([1.0] * (2 * MAX_CENTROIDS + 1), [1.0] * (2 * MAX_CENTROIDS + 1))],
                     "do not fit", id="too many centroids"),
        pytest.param(_with(1, 17.0), "impossible", id="sum above count*max"),
        pytest.param(_with(1, 3.0), "impossible", id="sum below count*min"),
    ],
)
def test_from_wire_refuses(wire: Any, reason: str) -> None:
    with pytest.raises(ProtocolError, match="sketch: .*" + reason):
        Sketch.from_wire(wire)


def test_from_wire_takes_extreme_but_valid_centroids() -> None:
    """What the byte-level checks send the slow way is still accepted when it is valid."""
    tiny = 5e-324  # the least positive float64 (a denormal): its top byte is 0
    sk = Sketch.from_wire([2, 2.0, 0.0, 2.0, P([0.0, 2.0], [1.0 - tiny, 1.0 + tiny])])
    assert sk.count == 2
    huge = 2.0**1020  # finite, but its top byte looks like an exponent of all ones
    sk = Sketch.from_wire([2, 2 * huge, huge, huge, P([huge], [2.0])])
    assert sk.quantile(0.5) == huge
    sk = Sketch.from_wire([2, -2.5, -2.0, -0.5, P([-2.0, -0.5], [1.0, 1.0])])  # negative means: sign bits set
    assert (sk.min, sk.max) == (-2.0, -0.5)


def test_from_wire_refuses_or_sorts_unsorted_centroids() -> None:
    sorted_form = Sketch.from_samples([float(v) for v in range(1, 101)])
    count, total, lo, hi, _ = sorted_form.to_wire()
    cents = sorted_form.centroids()[::-1]
    reversed_form = [count, total, lo, hi, P([m for m, _ in cents], [w for _, w in cents])]

    try:
        sk = Sketch.from_wire(reversed_form)
    except ProtocolError:
        return
    for q in QUANTILES:
        assert sk.quantile(q) == sorted_form.quantile(q)  # p90: 10.9 instead of 90.1


@pytest.mark.parametrize(
    "wire",
    [[10**400, 1.0, 1.0, 1.0, P([1.0], [1.0])], [1, 10**400, 1.0, 1.0, P([1.0], [1.0])]],
    ids=["huge count", "huge sum"],
)
def test_from_wire_refuses_ints_beyond_float_range(wire: list[Any]) -> None:
    with pytest.raises(ProtocolError):
        Sketch.from_wire(wire)


# Centroid values the byte-level checks must judge as the walk does: specials, denormals,
# the largest finite values (whose top byte looks like an infinity's), signed zeros.
edge_float = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.0**-1022, 2.0**1009, -(2.0**1009), 1.7976931348623157e308,
                              -1.7976931348623157e308, math.inf, -math.inf, math.nan, 1.0, -1.0])
any_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True), edge_float)


@st.composite
def nearly_valid_centroids(draw: st.DrawFn) -> tuple[list[tuple[float, float]], float, float]:
    """Centroids inside [lo, hi], ascending, of positive weight; then perhaps one value replaced."""
    cents = draw(st.lists(st.tuples(st.one_of(st.floats(-1e12, 1e12), edge_float.filter(math.isfinite)),
                                    st.one_of(st.floats(1e-300, 1e12), st.sampled_from([5e-324, 2.0**-1022, 2.0**1009]))),
                          min_size=1, max_size=12))
    cents.sort()
    lo, hi = cents[0][0], cents[-1][0]
    if draw(st.booleans()):
        i, j = draw(st.integers(0, len(cents) - 1)), draw(st.integers(0, 1))
        cents[i] = (draw(any_float), cents[i][1]) if j == 0 else (cents[i][0], draw(any_float))
    return cents, lo, hi


@st.composite
def any_centroids(draw: st.DrawFn) -> tuple[list[tuple[float, float]], float, float]:
    cents = draw(st.lists(st.tuples(any_float, any_float), min_size=1, max_size=12))
    if draw(st.booleans()):
        cents.sort(key=lambda c: c[0] if not math.isnan(c[0]) else 0.0)
    bound = st.one_of(st.floats(-1e300, 1e300), edge_float.filter(math.isfinite))
    return cents, draw(bound), draw(bound)


@settings(max_examples=500, deadline=None)
@given(case=st.one_of(nearly_valid_centroids(), any_centroids()))
def test_the_byte_level_checks_agree_with_the_walk(case: tuple[list[tuple[float, float]], float, float]) -> None:
    cents, lo, hi = case
    means, weights = [m for m, _ in cents], [w for _, w in cents]
    packed = P(means, weights)
    try:
        _explain_centroids(means, weights, lo, hi)
        walk_accepts = True
    except ProtocolError:
        walk_accepts = False
    fast_accepts = _centroids_hold(packed, array("d", packed)[0::2], lo, hi)
    # The fast check may only be stricter than the walk where a finite sum overflowed (the
    # caller then walks, and the walk's verdict stands); it never accepts what the walk refuses.
    assert fast_accepts <= walk_accepts
    if walk_accepts and not fast_accepts:
        assert not math.isfinite(sum(array("d", packed)))


# --------------------------------------------------------------------------- from_wire never crashes

# Integers as msgpack can carry them (beyond float range: test_from_wire_refuses_ints_beyond_float_range).
wire_int = st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_scalar = st.none() | st.booleans() | wire_int | st.floats() | st.text(max_size=8)
json_like = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
number = st.one_of(wire_int, st.floats(), st.integers(-3, 10), st.floats(-10, 10))
numbers = st.lists(number, max_size=6)


@st.composite
def mutated_valid(draw: st.DrawFn) -> list[Any]:
    """A real wire sketch with one or two fields replaced: gets past the shallow checks."""
    values = draw(st.lists(st.floats(0, 1e4), min_size=1, max_size=30))
    wire = Sketch.from_samples(values).to_wire()
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, 4))
        if i == 4:  # the centroids: other bytes, cut, or the pairs of other numbers
            wire[4] = draw(st.one_of(
                st.binary(max_size=80),
                st.just(wire[4][: draw(st.integers(0, len(wire[4])))]),
                st.lists(st.tuples(st.floats(), st.floats()), max_size=6).map(lambda c: P([m for m, _ in c], [w for _, w in c])),
                numbers,
            ))
        else:
            wire[i] = draw(st.one_of(number, json_like))
    return wire


@settings(max_examples=200, deadline=None)
@given(
    obj=st.one_of(
        json_like,
        st.lists(json_like, min_size=5, max_size=5),
        st.tuples(number, number, number, number, st.binary(max_size=64)).map(list),
        mutated_valid(),
    )
)
def test_from_wire_raises_only_protocol_error(obj: Any) -> None:
    try:
        sk = Sketch.from_wire(obj)
    except ProtocolError:
        return
    # Whatever it accepts is a usable sketch.
    if sk.count:
        assert sk.min <= sk.quantile(0.5) <= sk.max
    assert Sketch.from_wire(sk.to_wire()).count == sk.count


# --------------------------------------------------------------------------- the fast rebuild


def test_this_fastdigest_takes_the_fast_path() -> None:
    from surge.common import sketch

    assert sketch.FAST_DIGESTS  # the byte layout was proven at import; if this fails, from_dict is used (slow)


@settings(max_examples=200, deadline=None)
@given(
    cents=st.lists(
        st.tuples(st.floats(-1e9, 1e9, allow_nan=False), st.floats(1e-3, 1e6, allow_nan=False)), min_size=1, max_size=80
    )
)
def test_the_byte_layout_rebuilds_exactly_what_from_dict_does(cents: list[tuple[float, float]]) -> None:
    from surge.common.sketch import _centroid_bytes, _digest_from_bytes, _digest_from_dict

    cents.sort()
    means, weights = [m for m, _ in cents], [w for _, w in cents]
    total, packed, mass = math.fsum(m * w for m, w in cents), P(means, weights), sum(weights)
    fast = _digest_from_bytes(packed, means, weights, mass, total, means[0], means[-1])
    slow = _digest_from_dict(packed, means, weights, mass, total, means[0], means[-1])
    assert fast.to_bytes() == slow.to_bytes()
    assert fast.to_dict() == slow.to_dict()
    assert _centroid_bytes(fast) == packed  # what the wire carries of it

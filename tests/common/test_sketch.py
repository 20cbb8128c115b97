"""The latency sketch: accuracy against exact percentiles, merge laws, and wire validation.

Accuracy is a requirement of the project: p50..p99 of the fleet-wide merged sketch must be
within 0.5 % of the exact percentiles of the same samples. The fleet is simulated the way a
run builds it: one sketch per worker per flush (:meth:`Sketch.from_samples`), sent as its wire
form, rebuilt by :meth:`Sketch.from_wire`, merged per worker in sequence order, then across
workers in worker order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.errors import ProtocolError
from surge.common.sketch import Sketch

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


def test_an_empty_sketch() -> None:
    sk = Sketch()

    assert sk.count == 0
    assert math.isnan(sk.mean)
    assert math.isnan(sk.quantile(0.5))
    assert sk.to_wire() == [0, 0.0, 0.0, 0.0, [], []]
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
    right.merge(Sketch.from_wire([0, 0.0, 0.0, 0.0, [], []]))

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

VALID = [4, 10.0, 1.0, 4.0, [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]]
NAN, INF = math.nan, math.inf


def _with(i: int, value: Any) -> list[Any]:
    out = list(VALID)
    out[i] = value
    return out


def test_the_valid_example_is_accepted() -> None:
    assert Sketch.from_wire(VALID).to_wire() == Sketch.from_samples([1.0, 2.0, 3.0, 4.0]).to_wire()
    assert Sketch.from_wire(tuple(VALID)).count == 4
    assert Sketch.from_wire([4, 10, 1, 4, [1, 2, 3, 4], [1, 1, 1, 1]]).quantile(0.5) == 2.5  # ints, as msgpack may give


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param("not a list", id="not a list"),
        pytest.param(None, id="None"),
        pytest.param({"count": 4}, id="a map"),
        pytest.param(VALID[:5], id="too short"),
        pytest.param([*VALID, 0], id="too long"),
        pytest.param([], id="empty list"),
        pytest.param(_with(0, -1), id="negative count"),
        pytest.param(_with(0, True), id="bool count"),
        pytest.param(_with(0, 4.0), id="float count"),
        pytest.param(_with(0, "4"), id="str count"),
        pytest.param(_with(1, NAN), id="NaN sum"),
        pytest.param(_with(1, INF), id="inf sum"),
        pytest.param(_with(1, True), id="bool sum"),
        pytest.param(_with(2, NAN), id="NaN min"),
        pytest.param(_with(2, -INF), id="-inf min"),
        pytest.param(_with(3, NAN), id="NaN max"),
        pytest.param(_with(3, INF), id="inf max"),
        pytest.param(_with(3, "4"), id="str max"),
        pytest.param(_with(4, [1.0, NAN, 3.0, 4.0]), id="NaN mean"),
        pytest.param(_with(4, [1.0, 2.0, 3.0, INF]), id="inf mean"),
        pytest.param(_with(4, [1.0, "2", 3.0, 4.0]), id="str mean"),
        pytest.param(_with(5, [1.0, 0.0, 2.0, 1.0]), id="zero weight"),
        pytest.param(_with(5, [2.0, -1.0, 2.0, 1.0]), id="negative weight"),
        pytest.param(_with(5, [1.0, NAN, 1.0, 1.0]), id="NaN weight"),
        pytest.param(_with(5, [1.0, True, 1.0, 1.0]), id="bool weight"),
        pytest.param(_with(5, [1.0, 1.0, 1.0, 2.0]), id="weights add to more than count"),
        pytest.param(_with(5, [1.0, 1.0, 1.0, 0.5]), id="weights add to less than count"),
        pytest.param(_with(4, [1.0, 2.0, 3.0]), id="fewer means than weights"),
        pytest.param(_with(4, "1234"), id="means not a list"),
        pytest.param(_with(5, None), id="weights not a list"),
        pytest.param([4, 10.0, 4.0, 1.0, [1.0, 2.0, 3.0, 4.0], [1.0] * 4], id="min above max"),
        pytest.param(_with(4, [0.5, 2.0, 3.0, 4.0]), id="centroid below min"),
        pytest.param(_with(4, [1.0, 2.0, 3.0, 4.5]), id="centroid above max"),
        pytest.param([0, 0.0, 0.0, 0.0, [1.0], [1.0]], id="centroids for an empty sketch"),
        pytest.param([1, 1.0, 1.0, 1.0, [], []], id="no centroids for a count"),
        pytest.param([1, 1.0, 1.0, 1.0, [1.0, 1.0], [0.5, 0.5]], id="more centroids than values"),
        pytest.param(_with(1, 17.0), id="sum above count*max"),
        pytest.param(_with(1, 3.0), id="sum below count*min"),
    ],
)
def test_from_wire_refuses(wire: Any) -> None:
    with pytest.raises(ProtocolError, match="sketch"):
        Sketch.from_wire(wire)


def test_from_wire_refuses_or_sorts_unsorted_centroids() -> None:
    sorted_form = Sketch.from_samples([float(v) for v in range(1, 101)])
    count, total, lo, hi, means, weights = sorted_form.to_wire()
    reversed_form = [count, total, lo, hi, means[::-1], weights[::-1]]

    try:
        sk = Sketch.from_wire(reversed_form)
    except ProtocolError:
        return
    for q in QUANTILES:
        assert sk.quantile(q) == sorted_form.quantile(q)  # p90: 10.9 instead of 90.1


@pytest.mark.parametrize(
    "wire",
    [[10**400, 1.0, 1.0, 1.0, [1.0], [1.0]], [1, 10**400, 1.0, 1.0, [1.0], [1.0]]],
    ids=["huge count", "huge sum"],
)
def test_from_wire_refuses_ints_beyond_float_range(wire: list[Any]) -> None:
    with pytest.raises(ProtocolError):
        Sketch.from_wire(wire)


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
        i = draw(st.integers(0, 5))
        wire[i] = draw(numbers if i >= 4 else st.one_of(number, json_like))
    return wire


@settings(max_examples=200, deadline=None)
@given(
    obj=st.one_of(
        json_like,
        st.lists(json_like, min_size=6, max_size=6),
        st.tuples(number, number, number, number, numbers, numbers).map(list),
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
    from surge.common.sketch import _digest_from_bytes, _digest_from_dict

    cents.sort()
    means, weights = [m for m, _ in cents], [w for _, w in cents]
    total = math.fsum(m * w for m, w in cents)
    fast = _digest_from_bytes(means, weights, total, means[0], means[-1])
    slow = _digest_from_dict(means, weights, total, means[0], means[-1])
    assert fast.to_bytes() == slow.to_bytes()
    assert fast.to_dict() == slow.to_dict()

"""The grant book's rules as properties: the budget, first in first out, no report granted
twice while it is on its way, nothing offered left waiting once the fleet's reports arrive."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common.grants import GrantBook

PEERS = [b"a", b"b", b"c", b"d"]

_op = st.one_of(
    st.tuples(st.just("offer"), st.sampled_from(PEERS), st.integers(1, 12), st.integers(0, 400)),
    st.tuples(st.just("grant"), st.floats(0, 3), st.integers(0, 300)),
    st.tuples(st.just("arrive"), st.integers(0, 50)),
    st.tuples(st.just("take")),
    st.tuples(st.just("forget"), st.sampled_from(PEERS)),
)


@settings(max_examples=300, deadline=None)
@given(budget=st.integers(1, 1000), ops=st.lists(_op, max_size=80))
def test_grants_keep_the_budget_and_never_double_grant(budget: int, ops: list[tuple[object, ...]]) -> None:
    book = GrantBook(budget, ttl_s=5.0, max_offers_per_peer=3)
    now = 0.0
    taken = 0
    arrivals = 0
    sizes: dict[tuple[bytes, str, int], int] = {}  # what was offered, by key
    on_the_way: dict[tuple[bytes, str, int], float] = {}  # granted, not arrived, not expired -> when
    for op in ops:
        if op[0] == "offer":
            _, peer, seq, size = op
            assert isinstance(peer, bytes) and isinstance(seq, int) and isinstance(size, int)
            key = (peer, "r", seq)
            if book.offer(peer, "r", seq, size, taken):
                assert key not in on_the_way  # a report on its way is never queued again
                sizes[key] = size
        elif op[0] == "grant":
            _, dt, unread = op
            assert isinstance(dt, float) and isinstance(unread, int)
            now += dt
            on_the_way = {k: t for k, t in on_the_way.items() if now - t < 5.0}  # the TTL
            used = sum(sizes[k] for k in on_the_way) + unread
            for key in book.grant(now, unread):
                assert key not in on_the_way
                size = sizes[key]
                # within the budget, or alone: a report larger than the budget still goes
                assert used + size <= budget or used == 0
                used += size
                on_the_way[key] = now
            assert book.outstanding_bytes == sum(sizes[k] for k in on_the_way)
        elif op[0] == "arrive":
            _, pick = op
            assert isinstance(pick, int)
            if on_the_way:
                key = sorted(on_the_way)[pick % len(on_the_way)]
                del on_the_way[key]
                arrivals += 1
                assert book.arrived(*key, ticket=arrivals)
                assert not book.offer(*key, sizes[key], taken)  # landed, not yet taken by the loop
        elif op[0] == "take":
            taken = min(arrivals, taken + 1)
        else:
            _, peer = op
            book.forget(peer)  # type: ignore[arg-type]
            on_the_way = {k: t for k, t in on_the_way.items() if k[0] != peer}
        assert book.outstanding_bytes == sum(sizes[k] for k in on_the_way)
        assert book.outstanding_bytes >= 0


@settings(max_examples=200, deadline=None)
@given(budget=st.integers(1, 500), sizes=st.lists(st.integers(0, 300), min_size=1, max_size=40))
def test_every_offer_is_granted_in_order_as_the_reports_arrive(budget: int, sizes: list[int]) -> None:
    book = GrantBook(budget, max_offers_per_peer=len(sizes))
    for seq, size in enumerate(sizes, 1):
        assert book.offer(b"w", "r", seq, size, 0)
    order: list[int] = []
    for _ in range(len(sizes) + 1):
        granted = book.grant(0.0, 0)
        assert granted or not book.waiting  # something always fits once nothing is on its way
        order += [seq for _, _, seq in granted]
        for key in granted:
            book.arrived(*key)
    assert order == list(range(1, len(sizes) + 1)) and book.waiting == 0 and book.outstanding_bytes == 0


def test_a_grant_whose_report_never_comes_expires_and_the_offer_is_granted_again() -> None:
    book = GrantBook(100, ttl_s=5.0)
    book.offer(b"w", "r", 1, 80, 0)
    assert book.grant(0.0, 0) == [(b"w", "r", 1)]
    book.offer(b"v", "r", 1, 80, 0)
    assert book.grant(4.9, 0) == []  # the first grant still holds the budget
    assert not book.offer(b"w", "r", 1, 80, 0)  # re-offered while on its way: not queued
    assert book.grant(5.0, 0) == [(b"v", "r", 1)] and book.expired == 1
    assert book.offer(b"w", "r", 1, 80, 0)  # expired: the worker's next offer is queued again
    assert book.arrived(b"v", "r", 1, ticket=1)
    assert book.grant(5.1, 0) == [(b"w", "r", 1)]


def test_an_arrived_report_is_offered_again_only_after_the_loop_took_it() -> None:
    book = GrantBook(100)
    book.offer(b"w", "r", 1, 10, 0)
    book.grant(0.0, 0)
    book.arrived(b"w", "r", 1, ticket=7)
    assert not book.offer(b"w", "r", 1, 10, taken=6)  # still in the loop's inbox
    assert book.offer(b"w", "r", 1, 10, taken=7)  # taken and not acknowledged: not kept, send it again

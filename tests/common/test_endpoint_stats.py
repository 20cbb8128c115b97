"""The per-endpoint table's keys, its row cap, the overflow suggestions, and ``surge.url``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.common.api import URL, url
from surge.common.endpoint_stats import (
    DURATION,
    FAILURES,
    OVERFLOW,
    OVERFLOW_NAMES,
    EndpointKey,
    EndpointRow,
    RowCap,
    bounded_max_endpoints,
    failure_tags,
    parse_endpoint_key,
    suggest_name,
)
from surge.common.metrics import SeriesName, parse_series_name

values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(st.lists(st.tuples(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), values), max_size=4,
                unique_by=lambda kv: kv[0]))
def test_a_series_key_reads_back_whatever_its_tag_values_hold(tags: list[tuple[str, str]]) -> None:
    sn = SeriesName("http_req_duration", tuple(tags))
    back = parse_series_name(str(sn))
    if any("`" in v and '"' in v and "'" in v for _, v in tags):
        return  # the one value a key cannot carry as is (its backticks become ')
    assert back.tags == tuple(tags)


def test_a_url_template_is_quoted_in_its_key_and_a_bare_brace_is_refused() -> None:
    row = EndpointRow("http://h/items/${}", "GET", "browse", "::shop")
    key = row.key(DURATION)

    assert key == 'surge_endpoint_duration{name:"http://h/items/${}",method:GET,scenario:browse,group:::shop}'
    assert parse_endpoint_key(key) == EndpointKey(DURATION, row)
    with pytest.raises(ValueError, match="expected 'metric'"):
        parse_series_name("http_req_duration{name:/items/${}}")


def test_failure_keys_carry_the_kind_and_anything_else_is_not_an_endpoint_key() -> None:
    row = EndpointRow("checkout", "POST")
    key = row.key(FAILURES, *failure_tags(503, 1503))

    assert parse_endpoint_key(key) == EndpointKey(FAILURES, row, "503", "1503")
    assert parse_endpoint_key(EndpointRow("/x?a=1").key(OVERFLOW_NAMES)) == EndpointKey(OVERFLOW_NAMES, EndpointRow("/x?a=1"))
    for bad in ("http_reqs", "surge_endpoint_duration", "surge_endpoint_duration{method:GET}",
                "surge_endpoint_nope{name:x}", "surge_endpoint_duration{name:{x}}"):
        assert parse_endpoint_key(bad) is None, bad


def test_the_cap_keeps_the_first_rows_and_folds_every_later_one_remembering_a_few_names() -> None:
    cap = RowCap(3, max_examples=2)
    rows = [EndpointRow(f"/items/{i}", "GET") for i in range(10)]

    admitted = [cap.admit(r) for r in rows]

    assert admitted[:3] == rows[:3] and admitted[3:] == [OVERFLOW] * 7
    assert [cap.admit(r) for r in rows[:3]] == rows[:3]  # a kept row stays kept
    assert cap.admit(OVERFLOW) is OVERFLOW  # the overflow row takes no place
    assert cap.examples == cap.new_examples == ["/items/3", "/items/4"]
    with pytest.raises(ValueError):
        RowCap(0)


@pytest.mark.parametrize(("given_url", "suggested"), [
    ("http://127.0.0.1:8787/items/18342", "http://127.0.0.1:8787/items/${}"),
    ("http://h/users/u-42/orders/7?page=3&sort=asc", "http://h/users/${}/orders/${}?page=${}&sort=${}"),
    ("http://h/items/3f2b9c1e-0d6a-4e8b-9a77-5c1d2e3f4a5b", "http://h/items/${}"),
    ("http://h/shop/events", "http://h/shop/events"),
    ("/relative/12", "/relative/${}"),
])
def test_the_suggested_name_puts_a_placeholder_where_ids_are(given_url: str, suggested: str) -> None:
    assert suggest_name(given_url) == suggested


def test_url_fills_a_format_template_and_names_it_as_k6s_http_url_does() -> None:
    u = url("http://h/items/{}?ref={ref:>3}", 42, ref="a")

    assert isinstance(u, URL) and isinstance(u, str)
    assert str(u) == "http://h/items/42?ref=  a"
    assert u.name == "http://h/items/${}?ref=${}"
    assert url("http://h/{{literal}}").name == "http://h/{literal}"
    with pytest.raises(TypeError):
        url(b"http://h/{}")  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        url("http://h/{}/{}", 1)


def test_a_run_message_cannot_make_a_workers_table_unbounded_or_refuse_every_row() -> None:
    assert [bounded_max_endpoints(n) for n in (-5, 0, 1, 100, 10_000, 10**12)] == [1, 1, 1, 100, 10_000, 10_000]

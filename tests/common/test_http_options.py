"""k6's HTTP options: what each key becomes, and a clear problem naming its path for each bad value."""

from __future__ import annotations

from typing import Any

import pytest

from surge.common.http_options import DnsOptions, HostAddress, HttpOptions, http_options_raw, parse_http_options
from surge.common.options import parse_options


def good(raw: dict[str, Any]) -> HttpOptions:
    opts, problems = parse_http_options(raw)
    assert problems == []
    return opts


def test_the_defaults_are_k6s() -> None:
    opts = good({})
    assert opts == HttpOptions()
    assert (opts.user_agent, opts.max_redirects, opts.batch, opts.batch_per_host) == (None, 10, 20, 6)
    assert opts.dns == DnsOptions(ttl_s=300.0, select="random", policy="preferIPv4")
    assert not (opts.insecure_skip_tls_verify or opts.no_connection_reuse or opts.no_vu_connection_reuse)
    assert good({"userAgent": None, "dns": None, "hosts": None, "batch": None}) == HttpOptions()  # k6's null


def test_every_key_is_read() -> None:
    opts = good({
        "discardResponseBodies": True, "insecureSkipTLSVerify": True, "userAgent": "", "maxRedirects": 0,
        "noConnectionReuse": True, "noVUConnectionReuse": True, "batch": 3, "batchPerHost": 0,
        "hosts": {"API.test": "127.0.0.1", "api.test:443": "127.0.0.2:8443", "*.svc.test": "[::1]:81"},
        "tlsVersion": {"min": "tls1.2", "max": "tls1.3"},
        "dns": {"ttl": "1m30s", "select": "roundRobin", "policy": "onlyIPv6"},
    })  # fmt: skip
    assert opts.discard_response_bodies and opts.insecure_skip_tls_verify
    assert opts.user_agent == "" and opts.max_redirects == 0
    assert opts.no_connection_reuse and opts.no_vu_connection_reuse
    assert (opts.batch, opts.batch_per_host) == (3, 0)
    assert dict(opts.hosts) == {
        "api.test": HostAddress("127.0.0.1"),
        "api.test:443": HostAddress("127.0.0.2", 8443),
        "*.svc.test": HostAddress("::1", 81),
    }
    assert (opts.tls_min, opts.tls_max) == ("tls1.2", "tls1.3")
    assert opts.dns == DnsOptions(ttl_s=90.0, select="roundRobin", policy="onlyIPv6")
    assert (good({"tlsVersion": "tls1.2"}).tls_min, good({"tlsVersion": "tls1.2"}).tls_max) == ("tls1.2", "tls1.2")
    assert good({"dns": {"ttl": "0"}}).dns.ttl_s == 0.0
    assert good({"dns": {"ttl": "inf"}}).dns.ttl_s > 300 * 24 * 3600


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"userAgent": 5}, "options.userAgent: expected a string on one line, got 5"),
        ({"userAgent": "a\r\nX-Evil: 1"}, "options.userAgent: expected a string on one line"),
        ({"noConnectionReuse": "yes"}, "options.noConnectionReuse: expected true or false, got 'yes'"),
        ({"maxRedirects": -1}, "options.maxRedirects: expected a whole number >= 0, got -1"),
        ({"batch": 0}, "options.batch: expected a whole number >= 1, got 0"),
        ({"batchPerHost": 1.5}, "options.batchPerHost: expected a whole number >= 0, got 1.5"),
        ({"hosts": ["a"]}, "options.hosts: expected a dict of host name to IP address"),
        ({"hosts": {"a.test": "example.com"}}, "options.hosts['a.test']: expected an IP address or IP:port"),
        ({"hosts": {"a.test": "10.0.0.1:99999"}}, "options.hosts['a.test']: expected an IP address or IP:port"),
        ({"hosts": {"a b": "127.0.0.1"}}, "options.hosts['a b']: expected a host name"),
        ({"tlsVersion": "tls1.4"}, "options.tlsVersion: expected one of tls1.0, tls1.1, tls1.2, tls1.3"),
        ({"tlsVersion": {"min": "ssl3"}}, "options.tlsVersion.min: expected one of tls1.0"),
        ({"tlsVersion": {"mni": "tls1.2"}}, "options.tlsVersion.mni: unknown key; expected min and max"),
        ({"tlsVersion": {"min": "tls1.3", "max": "tls1.2"}}, "options.tlsVersion: min tls1.3 is above max tls1.2"),
        ({"dns": "5m"}, "options.dns: expected a dict such as"),
        ({"dns": {"ttl": 300}}, "options.dns.ttl: expected a duration such as '5m', '0' (no cache) or 'inf', got 300"),
        ({"dns": {"select": "last"}}, "options.dns.select: expected one of first, random, roundRobin, got 'last'"),
        ({"dns": {"policy": "ipv4"}}, "options.dns.policy: expected one of preferIPv4, preferIPv6, onlyIPv4"),
        ({"dns": {"tll": "5m"}}, "options.dns.tll: unknown key; expected ttl, select and policy"),
    ],
)
def test_each_bad_value_is_named_with_what_was_expected(raw: dict[str, Any], problem: str) -> None:
    _, problems = parse_http_options(raw)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_the_scenario_options_report_them_before_any_load_with_the_rest() -> None:
    opts, problems = parse_options({"vus": 1, "duration": "1s", "userAgent": 7, "dns": {"select": "x"}})
    assert opts is None
    assert problems == [
        "options.userAgent: expected a string on one line, got 7",
        "options.dns.select: expected one of first, random, roundRobin, got 'x'",
    ]
    opts, problems = parse_options({"vus": 1, "duration": "1s", "userAgent": "me/1", "hosts": {"a.test": "10.0.0.1"}})
    assert problems == [] and opts is not None
    assert opts.http.user_agent == "me/1" and opts.http.hosts["a.test"] == HostAddress("10.0.0.1")


def test_what_travels_to_the_workers_is_what_the_scenario_wrote() -> None:
    raw = {"vus": 1, "duration": "1s", "userAgent": "me", "dns": {"ttl": "1m"}, "thresholds": {}}
    assert http_options_raw(raw) == {"userAgent": "me", "dns": {"ttl": "1m"}}
    assert good(http_options_raw(raw)) == parse_options(raw)[0].http  # type: ignore[union-attr]

"""k6's resolver: hosts overrides, the lookup cache by ttl (a fake clock: no sleeping), policy and select."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from surge.common.http_options import DnsOptions, HostAddress
from surge.worker.http.dns import Resolver

ADDRESSES = {"two.test": ["10.0.0.1", "fd00::1", "10.0.0.2"], "six.test": ["fd00::6"]}


class Lookups:
    """A DNS stand-in that counts its questions; unknown names do not exist."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in ADDRESSES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(ADDRESSES[host])


def resolve_all(resolver: Resolver, *names: tuple[str, int]) -> list[tuple[str, int]]:
    async def main() -> list[tuple[str, int]]:
        return [await resolver.resolve(host, port) for host, port in names]

    return asyncio.run(main())


def test_a_lookup_is_cached_for_its_ttl_and_asked_again_after() -> None:
    now = [100.0]
    lookups = Lookups()
    resolver = Resolver(DnsOptions(ttl_s=300.0, select="first"), lookup=lookups, clock=lambda: now[0])
    assert resolve_all(resolver, ("two.test", 80), ("two.test", 443)) == [("10.0.0.1", 80), ("10.0.0.1", 443)]
    now[0] = 399.9
    resolve_all(resolver, ("two.test", 80))
    assert lookups.asked == ["two.test"]  # three dials, one lookup
    now[0] = 400.0
    resolve_all(resolver, ("two.test", 80))
    assert lookups.asked == ["two.test", "two.test"]


def test_ttl_0_asks_at_every_dial_and_a_failure_is_never_cached() -> None:
    lookups = Lookups()
    resolver = Resolver(DnsOptions(ttl_s=0.0, select="first"), lookup=lookups, clock=lambda: 0.0)
    resolve_all(resolver, ("two.test", 80), ("two.test", 80))
    assert lookups.asked == ["two.test", "two.test"]
    cached = Resolver(DnsOptions(ttl_s=300.0), lookup=lookups, clock=lambda: 0.0)
    for _ in range(2):
        with pytest.raises(socket.gaierror):
            resolve_all(cached, ("missing.test", 80))
    assert lookups.asked.count("missing.test") == 2


@pytest.mark.parametrize(
    ("policy", "host", "expected"),
    [
        ("preferIPv4", "two.test", "10.0.0.1"),
        ("preferIPv4", "six.test", "fd00::6"),  # none of v4: falls back
        ("preferIPv6", "two.test", "fd00::1"),
        ("onlyIPv4", "two.test", "10.0.0.1"),
        ("onlyIPv6", "two.test", "fd00::1"),
        ("any", "two.test", "10.0.0.1"),
    ],
)
def test_policy_keeps_one_family(policy: str, host: str, expected: str) -> None:
    resolver = Resolver(DnsOptions(select="first", policy=policy), lookup=Lookups())
    assert resolve_all(resolver, (host, 80)) == [(expected, 80)]


def test_only_one_family_with_none_of_it_is_no_such_host() -> None:
    resolver = Resolver(DnsOptions(policy="onlyIPv4"), lookup=Lookups())
    with pytest.raises(socket.gaierror) as caught:
        resolve_all(resolver, ("six.test", 80))
    assert caught.value.errno == socket.EAI_NONAME  # k6's 1101, "no such host"


def test_select_first_round_robin_and_random() -> None:
    dialled = [(h, 80) for h in ["two.test"] * 4]
    first = Resolver(DnsOptions(select="first", policy="onlyIPv4"), lookup=Lookups())
    assert [ip for ip, _ in resolve_all(first, *dialled)] == ["10.0.0.1"] * 4
    turns = Resolver(DnsOptions(select="roundRobin", policy="onlyIPv4"), lookup=Lookups())
    assert [ip for ip, _ in resolve_all(turns, *dialled)] == ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"]
    rand = Resolver(DnsOptions(select="random", policy="any"), lookup=Lookups(), rng=random.Random(7))
    picked = {ip for ip, _ in resolve_all(rand, *dialled * 10)}
    assert picked == {"10.0.0.1", "fd00::1", "10.0.0.2"}  # 40 seeded draws reach all three


def test_hosts_answer_without_a_lookup_by_name_port_then_name_then_pattern() -> None:
    lookups = Lookups()
    hosts = {
        "api.test:8443": HostAddress("10.1.0.1", 9443),
        "api.test": HostAddress("10.1.0.2"),
        "*.svc.test": HostAddress("10.1.0.3", 81),
        "*.deep.svc.test": HostAddress("10.1.0.4"),
    }
    resolver = Resolver(hosts=hosts, lookup=lookups)
    assert resolve_all(
        resolver, ("api.test", 8443), ("API.test", 80), ("a.svc.test", 80), ("x.deep.svc.test", 443), ("1.2.3.4", 80)
    ) == [("10.1.0.1", 9443), ("10.1.0.2", 80), ("10.1.0.3", 81), ("10.1.0.4", 443), ("1.2.3.4", 80)]
    assert lookups.asked == []

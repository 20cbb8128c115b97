"""Where a connection goes: k6's ``hosts`` overrides, then its DNS cache, ``select`` and ``policy``.

Go's resolver is asked at every dial unless k6's own sits in front of it, and k6's does by
default (``dns: {ttl: "5m", select: "random", policy: "preferIPv4"}``): one lookup per host
per TTL for the whole process, not one per connection, so that a test with
``noConnectionReuse`` measures the server and not the resolver. :class:`Resolver` is that
cache, one per worker process, shared by every VU's transport (as k6's is shared by its VUs):

1. a ``hosts`` entry, matched by ``name:port``, then ``name``, then the longest ``*suffix``
   pattern, answers without any lookup (an entry without a port keeps the URL's);
2. an IP address in the URL needs no lookup either;
3. otherwise the addresses of the last lookup of that name, if younger than ``ttl``, or a
   new lookup; ``policy`` keeps the IPv4 or IPv6 ones (``prefer*`` falls back to the other
   family when there is none, ``only*`` fails as "no such host", k6's 1101);
4. ``select`` picks the one address dialled: the ``first``, a ``random`` one, or the next in
   turn per name (``roundRobin``).

The clock and the lookup are injected, so the cache is tested without sleeping or a DNS
server. A failed lookup is not cached (k6 neither): the next dial asks again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

from surge.common.http_options import DnsOptions, HostAddress

__all__ = ["Lookup", "Resolver", "system_lookup"]

Lookup = Callable[[str], Awaitable[list[str]]]
"""Every address of a host name, in the resolver's order (raises ``socket.gaierror`` if none)."""


async def system_lookup(host: str) -> list[str]:
    """The system resolver's addresses for ``host`` (``getaddrinfo``, on the running loop's executor)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _no_such_host() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class Resolver:
    """k6's resolver: ``hosts``, then a per-name cache of lookups (see the module docstring)."""

    def __init__(
        self,
        dns: DnsOptions = DnsOptions(),
        hosts: Mapping[str, HostAddress] | None = None,
        *,
        lookup: Lookup = system_lookup,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._dns = dns
        self._hosts = dict(hosts or {})
        self._patterns = sorted(((k[1:], v) for k, v in self._hosts.items() if k.startswith("*")),
                                key=lambda kv: -len(kv[0]))  # fmt: skip
        self._lookup = lookup
        self._clock = clock
        self._rng = rng or random.Random()
        self._cache: dict[str, tuple[float, list[str]]] = {}  # name -> (looked up at, addresses)
        self._turn: dict[str, int] = {}
        self.lookups = 0  # how many times the lookup was asked (for tests and curiosity)

    def override(self, host: str, port: int) -> tuple[str, int] | None:
        """The ``hosts`` entry for ``host:port`` as ``(ip, port)``, or None."""
        if not self._hosts:
            return None
        name = host.lower()
        entry = self._hosts.get(f"{name}:{port}") or self._hosts.get(name)
        if entry is None:
            for suffix, address in self._patterns:
                bare, _, pattern_port = suffix.partition(":")
                if name.endswith(bare) and (not pattern_port or pattern_port == str(port)):
                    entry = address
                    break
        if entry is None:
            return None
        return entry.ip, entry.port if entry.port is not None else port

    async def resolve(self, host: str, port: int) -> tuple[str, int]:
        """The one ``(ip, port)`` to dial for ``host:port``; ``socket.gaierror`` if there is none."""
        forced = self.override(host, port)
        if forced is not None:
            return forced
        try:
            ipaddress.ip_address(host)
            return host, port
        except ValueError:
            pass
        return self._select(host, await self._addresses(host)), port

    async def _addresses(self, host: str) -> list[str]:
        ttl = self._dns.ttl_s
        if ttl > 0:
            cached = self._cache.get(host)
            if cached is not None and self._clock() < cached[0] + ttl:
                return cached[1]
        self.lookups += 1
        addresses = self._by_policy(await self._lookup(host))
        if not addresses:
            raise _no_such_host()
        if ttl > 0:
            self._cache[host] = (self._clock(), addresses)
        return addresses

    def _by_policy(self, addresses: list[str]) -> list[str]:
        policy = self._dns.policy
        if policy == "any":
            return addresses
        v4 = [a for a in addresses if ":" not in a]
        v6 = [a for a in addresses if ":" in a]
        if policy == "preferIPv4":
            return v4 or v6
        if policy == "preferIPv6":
            return v6 or v4
        return v4 if policy == "onlyIPv4" else v6

    def _select(self, host: str, addresses: list[str]) -> str:
        select = self._dns.select
        if select == "first" or len(addresses) == 1:
            return addresses[0]
        if select == "roundRobin":
            turn = self._turn.get(host, 0)
            self._turn[host] = turn + 1
            return addresses[turn % len(addresses)]
        return self._rng.choice(addresses)

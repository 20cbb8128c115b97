"""k6's HTTP options (``userAgent``, ``hosts``, ``dns``, ``tlsVersion``...) validated into :class:`HttpOptions`.

The same keys and meanings as k6's, read from the scenario's ``options`` beside the others
(:mod:`surge.common.options`), and read again by each worker from the run message, which
carries them as the user wrote them (:func:`http_options_raw`): one parser for both ends.

=========================  ==================================================  ======================
key                        meaning                                              default (k6's)
=========================  ==================================================  ======================
``discardResponseBodies``  bool: bodies are read and counted, never kept         ``false``
                           (a request's ``responseType`` overrides it)
``insecureSkipTLSVerify``  bool: accept any server certificate                   ``false``
``userAgent``              the ``User-Agent`` of every request; ``""`` sends     ``surge/VERSION``
                           none (k6: ``Grafana k6/VERSION``)
``maxRedirects``           whole number >= 0: redirects followed per request     ``10``
``noConnectionReuse``      bool: a new connection for every request              ``false``
                           (``Connection: close``)
``noVUConnectionReuse``    bool: a VU closes its idle connections at the start   ``false``
                           of every iteration
``hosts``                  dict: host (``"*.x"``, ``"name:port"``) to an IP or   ``{}``
                           ``IP:port``; no DNS lookup for those
``tlsVersion``             ``"tls1.2"`` (min and max), or ``{min, max}``; each   any
                           of ``tls1.0``, ``tls1.1``, ``tls1.2``, ``tls1.3``
``dns``                    ``{ttl, select, policy}``: how long a lookup is      ``{ttl: "5m", select:
                           cached (a duration, ``"0"`` none, ``"inf"``),         "random", policy:
                           which address is dialled (``first``, ``random``,      "preferIPv4"}``
                           ``roundRobin``), which family (``preferIPv4``,
                           ``preferIPv6``, ``onlyIPv4``, ``onlyIPv6``, ``any``)
``batch``                  whole number >= 1: requests of one ``http.batch``     ``20``
                           in flight at once
``batchPerHost``           whole number >= 0 (0: no limit): the same per host    ``6``
=========================  ==================================================  ======================

As everywhere in surge's options, a duration is a string (``dns.ttl: "5m"``); k6's bare
numbers of milliseconds are refused so that nobody has to guess the unit (``"0"`` excepted).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from surge.common.durations import parse_duration

__all__ = [
    "DNS_POLICIES",
    "DNS_SELECTS",
    "HTTP_KEYS",
    "TLS_VERSIONS",
    "DnsOptions",
    "HostAddress",
    "HttpOptions",
    "http_options_raw",
    "parse_http_options",
]

HTTP_KEYS = (
    "discardResponseBodies", "insecureSkipTLSVerify", "userAgent", "maxRedirects", "noConnectionReuse",
    "noVUConnectionReuse", "hosts", "tlsVersion", "dns", "batch", "batchPerHost",
)  # fmt: skip
"""The top-level option keys this module reads."""

TLS_VERSIONS = ("tls1.0", "tls1.1", "tls1.2", "tls1.3")
DNS_SELECTS = ("first", "random", "roundRobin")
DNS_POLICIES = ("preferIPv4", "preferIPv6", "onlyIPv4", "onlyIPv6", "any")
_DNS_KEYS = ("ttl", "select", "policy")
_INF_TTL_S = 365 * 24 * 3600.0  # k6's "inf": a year
# k6's host pattern: an optional "*" or "*." prefix, DNS labels, an optional ":port".
_HOST_PATTERN = re.compile(
    r"^(\*\.?)?((([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9]))?(:[0-9]{1,5})?$"
)


@dataclass(frozen=True)
class DnsOptions:
    """k6's ``dns``: a lookup is cached ``ttl_s`` (0: not at all); ``select`` and ``policy`` pick one address."""

    ttl_s: float = 300.0
    select: str = "random"
    policy: str = "preferIPv4"


@dataclass(frozen=True)
class HostAddress:
    """Where a ``hosts`` entry sends a name: an IP address, and a port (``None``: the URL's)."""

    ip: str
    port: int | None = None


def _no_hosts() -> Mapping[str, HostAddress]:
    return MappingProxyType({})


@dataclass(frozen=True)
class HttpOptions:
    """The validated HTTP options (see the module docstring); the defaults are k6's."""

    discard_response_bodies: bool = False
    insecure_skip_tls_verify: bool = False
    user_agent: str | None = None  # None: surge's own, "surge/VERSION"; "": no User-Agent at all
    max_redirects: int = 10
    no_connection_reuse: bool = False
    no_vu_connection_reuse: bool = False
    hosts: Mapping[str, HostAddress] = field(default_factory=_no_hosts, hash=False)  # lower-case keys
    tls_min: str | None = None  # one of TLS_VERSIONS, None: the library's floor
    tls_max: str | None = None
    dns: DnsOptions = DnsOptions()
    batch: int = 20
    batch_per_host: int = 6


def http_options_raw(options: Mapping[str, Any]) -> dict[str, Any]:
    """The HTTP keys of a scenario's ``options``, as written: what the run message carries to workers."""
    return {key: options[key] for key in HTTP_KEYS if key in options}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bool(problems: list[str], raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key)
    if value is None:  # k6's null: unset
        return False
    if not isinstance(value, bool):
        problems.append(f"{where}.{key}: expected true or false, got {_show(value)}")
        return False
    return value


def _whole(problems: list[str], raw: Mapping[str, Any], key: str, where: str, minimum: int, default: int) -> int:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.append(f"{where}.{key}: expected a whole number >= {minimum}, got {_show(value)}")
        return default
    return value


def _hosts(problems: list[str], value: object, path: str) -> dict[str, HostAddress]:
    if not isinstance(value, Mapping):
        problems.append(f'{path}: expected a dict of host name to IP address, e.g. {{"test.local": "127.0.0.1"}}')
        return {}
    out: dict[str, HostAddress] = {}
    for name, target in value.items():
        where = f"{path}[{_show(name)}]"
        if not isinstance(name, str) or not _HOST_PATTERN.match(name.lower()) or not name.strip("*."):
            problems.append(f"{where}: expected a host name (optionally *.domain or name:port), got {_show(name)}")
            continue
        address = _host_address(target)
        if address is None:
            problems.append(f"{where}: expected an IP address or IP:port, e.g. '127.0.0.1' or '[::1]:8080', "
                            f"got {_show(target)}")  # fmt: skip
            continue
        out[name.lower()] = address
    return out


def _host_address(value: object) -> HostAddress | None:
    if not isinstance(value, str):
        return None
    try:
        return HostAddress(str(ipaddress.ip_address(value)))
    except ValueError:
        pass
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return None  # an IPv6 address with a port goes in brackets
    try:
        return HostAddress(str(ipaddress.ip_address(host)), int(port))
    except ValueError:
        return None


def _tls_versions(problems: list[str], value: object, path: str) -> tuple[str | None, str | None]:
    expected = f"one of {', '.join(TLS_VERSIONS)}"
    if isinstance(value, str):
        if value not in TLS_VERSIONS:
            problems.append(f"{path}: expected {expected}, or {{min, max}}; got {_show(value)}")
            return None, None
        return value, value
    if not isinstance(value, Mapping):
        problems.append(f'{path}: expected {expected}, or {{"min": ..., "max": ...}}; got {_show(value)}')
        return None, None
    bounds: dict[str, str | None] = {"min": None, "max": None}
    for key, item in value.items():
        if key not in bounds:
            problems.append(f"{path}.{key}: unknown key; expected min and max")
        elif item is not None and item != "" and item not in TLS_VERSIONS:
            problems.append(f"{path}.{key}: expected {expected}, got {_show(item)}")
        else:
            bounds[key] = item or None
    low, high = bounds["min"], bounds["max"]
    if low and high and TLS_VERSIONS.index(low) > TLS_VERSIONS.index(high):
        problems.append(f"{path}: min {low} is above max {high}")
    return low, high


def _dns(problems: list[str], value: object, path: str) -> DnsOptions:
    if not isinstance(value, Mapping):
        problems.append(f'{path}: expected a dict such as {{"ttl": "5m", "select": "random", '
                        f'"policy": "preferIPv4"}}, got {_show(value)}')  # fmt: skip
        return DnsOptions()
    kw: dict[str, Any] = {}
    for key in (k for k in value if k not in _DNS_KEYS):
        problems.append(f"{path}.{key}: unknown key; expected ttl, select and policy")
    ttl = value.get("ttl")
    if ttl is not None:
        if ttl == "inf":
            kw["ttl_s"] = _INF_TTL_S
        else:
            try:
                seconds = parse_duration(ttl)
            except ValueError:
                seconds = -1.0
            if not (0 <= seconds < math.inf):
                problems.append(f"{path}.ttl: expected a duration such as '5m', '0' (no cache) or 'inf', "
                                f"got {_show(ttl)}")  # fmt: skip
            else:
                kw["ttl_s"] = seconds
    for key, allowed in (("select", DNS_SELECTS), ("policy", DNS_POLICIES)):
        item = value.get(key)
        if item is None:
            continue
        if item not in allowed:
            problems.append(f"{path}.{key}: expected one of {', '.join(allowed)}, got {_show(item)}")
        else:
            kw[key] = item
    return DnsOptions(**kw)


def parse_http_options(raw: Mapping[str, Any], *, where: str = "options") -> tuple[HttpOptions, list[str]]:
    """The :class:`HttpOptions` in ``raw`` (a scenario's options, other keys ignored), and every problem.

    Never raises on bad input: each problem names its key path from ``where`` and what was
    expected; with problems, the options returned are not to be used.
    """
    problems: list[str] = []
    kw: dict[str, Any] = {
        "discard_response_bodies": _bool(problems, raw, "discardResponseBodies", where),
        "insecure_skip_tls_verify": _bool(problems, raw, "insecureSkipTLSVerify", where),
        "no_connection_reuse": _bool(problems, raw, "noConnectionReuse", where),
        "no_vu_connection_reuse": _bool(problems, raw, "noVUConnectionReuse", where),
        "max_redirects": _whole(problems, raw, "maxRedirects", where, 0, 10),
        "batch": _whole(problems, raw, "batch", where, 1, 20),
        "batch_per_host": _whole(problems, raw, "batchPerHost", where, 0, 6),
    }
    user_agent = raw.get("userAgent")
    if user_agent is not None:
        if not isinstance(user_agent, str) or "\r" in user_agent or "\n" in user_agent:
            problems.append(f"{where}.userAgent: expected a string on one line, got {_show(user_agent)}")
        else:
            kw["user_agent"] = user_agent
    if raw.get("hosts") is not None:
        kw["hosts"] = MappingProxyType(_hosts(problems, raw["hosts"], f"{where}.hosts"))
    if raw.get("tlsVersion") is not None:
        kw["tls_min"], kw["tls_max"] = _tls_versions(problems, raw["tlsVersion"], f"{where}.tlsVersion")
    if raw.get("dns") is not None:
        kw["dns"] = _dns(problems, raw["dns"], f"{where}.dns")
    return HttpOptions(**kw), problems

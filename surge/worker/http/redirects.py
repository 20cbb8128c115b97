"""Redirects, by Go's ``net/http`` rules (which are k6's): one implementation for every transport.

- 301/302/303 turn into GET without a body (HEAD stays HEAD), and lose ``Content-Type`` and
  ``Content-Length``; 307/308 keep method and body;
- credentials (:data:`SENSITIVE_HEADERS`) are dropped when the next host is neither the
  same host nor a subdomain of it (Go's ``shouldCopyHeaderOnRedirect``);
- the ``Location`` is resolved against the URL of the hop that sent it.

Cookies set along the way land in the VU's jar (each transport's own). After
``max_redirects`` hops k6 stops and *returns the last redirect response* (status 3xx, no
error), so the transports do too. The returned Response carries the last hop's timings (as
k6's does) and the bytes of all hops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from multidict import CIMultiDict

__all__ = ["REDIRECT_STATUSES", "SENSITIVE_HEADERS", "Hop", "next_hop", "same_site"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SENSITIVE_HEADERS = ("Authorization", "Www-Authenticate", "Cookie", "Cookie2")
"""Dropped from a redirect to another host (Go's ``shouldCopyHeaderOnRedirect``)."""


def same_site(host: str | None, target: str | None) -> bool:
    """Go's rule for keeping credentials on redirect: the same host or a subdomain of it."""
    if not host or not target:
        return False
    return target == host or target.endswith("." + host)


class Hop(NamedTuple):
    """The next request of a redirect chain."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


def next_hop(
    status: int, url: str, host: str | None, location: str, method: str, headers: Mapping[str, str], body: bytes | None
) -> Hop:
    """The request that follows the redirect ``status`` with ``location`` from ``url`` (whose host is ``host``).

    A next URL that does not parse is returned as it is: the transport's next hop then fails
    as an invalid URL (k6's 1020), as Go's does.
    """
    next_url = urljoin(url, location.strip())
    try:
        next_host = urlsplit(next_url).hostname
    except ValueError:
        next_host = None  # the next hop fails as an invalid URL
    out: CIMultiDict[str] = CIMultiDict(headers)
    if status in (301, 302, 303):
        if method not in ("GET", "HEAD"):
            method = "GET"
        body = None
        out.popall("Content-Type", None)
        out.popall("Content-Length", None)
    if not same_site(host, next_host):
        for name in SENSITIVE_HEADERS:
            out.popall(name, None)
    return Hop(method, next_url, out, body)

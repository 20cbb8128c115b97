"""A URL made ready to request by the fast transport: parsed once, cached per transport.

What :class:`Target` settles once per URL: the scheme (http or https, else k6's 1020), the
host (IDNA-encoded; whether it is an IP address, which needs no lookup), the port, the
``Host`` header, the path and query percent-encoded as Go would send them, the path cookies
are matched against, and Basic auth from ``user:pass@`` (as in k6).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from urllib.parse import quote, unquote, urlsplit

from surge.worker.http.errors import InvalidURLError

__all__ = ["Target"]

_UNSAFE = re.compile(r"[^\x21-\x7e]")  # anything but visible ASCII must be percent-encoded
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?[]"


class Target:
    """One URL made ready to request: parsed once, cached per transport."""

    __slots__ = ("auth", "cookie_path", "host", "host_header", "ip", "key", "path", "port", "tls", "url")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # a bad port, an unclosed IPv6 bracket...
            raise InvalidURLError(url) from exc
        if parts.scheme not in ("http", "https"):
            raise InvalidURLError(url)
        host = parts.hostname
        if not host:
            raise InvalidURLError(url)
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise InvalidURLError(url) from exc
        self.url = url
        self.tls = parts.scheme == "https"
        default_port = 443 if self.tls else 80
        self.port = default_port if port is None else port
        self.host = host
        self.key = (parts.scheme, host, self.port)
        try:
            ipaddress.ip_address(host)
            self.ip = True
        except ValueError:
            self.ip = False
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if self.port == default_port else f"{shown}:{self.port}"
        path = parts.path or "/"
        if _UNSAFE.search(path):
            path = quote(path, safe=_PATH_SAFE)
        query = parts.query
        if query and _UNSAFE.search(query):
            query = quote(query, safe=_QUERY_SAFE)
        self.path = f"{path}?{query}" if query else path
        self.cookie_path = path
        self.auth: str | None = None
        if parts.username is not None:  # http://user:pass@host/ means Basic auth, as in k6
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(userinfo.encode("utf-8")).decode("ascii")

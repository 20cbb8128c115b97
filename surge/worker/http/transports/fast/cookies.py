"""A VU's cookie jar for the fast transport, by RFC 6265's rules.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, Morsel, SimpleCookie

from surge.worker.http.transports.fast.url import Target

__all__ = ["Jar"]

class _Cookie:
    __slots__ = ("domain", "expires", "host_only", "name", "path", "secure", "value")

    def __init__(
        self, name: str, value: str, domain: str, host_only: bool, path: str, secure: bool, expires: float | None
    ) -> None:
        self.name = name
        self.value = value
        self.domain = domain
        self.host_only = host_only
        self.path = path
        self.secure = secure
        self.expires = expires


def _domain_match(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _path_match(path: str, cookie_path: str) -> bool:
    if path == cookie_path:
        return True
    return path.startswith(cookie_path) and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")


def _default_path(path: str) -> str:
    """RFC 6265 5.1.4: the request path up to its last slash."""
    cut = path.rfind("/")
    return "/" if cut <= 0 else path[:cut]


class Jar:
    """A VU's cookies, by RFC 6265's rules for domain, path, expiry and ``Secure``.

    Enough for real hosts and for IP addresses (which, as in k6 and aiohttp's unsafe jar,
    keep host-only cookies). No public-suffix list: a load test talks to its own systems.
    """

    __slots__ = ("_cookies",)

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], _Cookie] = {}

    def __len__(self) -> int:
        return len(self._cookies)

    def store(self, target: Target, set_cookies: list[bytes]) -> None:
        for raw in set_cookies:
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(raw.decode("latin-1"))
            except CookieError:
                continue  # browsers ignore a Set-Cookie they cannot parse; so does Go
            for name, morsel in parsed.items():
                self._store(target, name, morsel)

    def _store(self, target: Target, name: str, morsel: Morsel[str]) -> None:
        domain_attr = morsel["domain"].lstrip(".").lower()
        if domain_attr and not _domain_match(target.host, domain_attr):
            return  # a cookie for someone else
        domain = domain_attr or target.host
        path = morsel["path"] if morsel["path"].startswith("/") else _default_path(target.cookie_path)
        key = (domain, path, name)
        expires: float | None = None
        try:
            if morsel["max-age"] != "":
                expires = time.time() + int(morsel["max-age"])
            elif morsel["expires"]:
                expires = parsedate_to_datetime(morsel["expires"]).timestamp()
        except (ValueError, TypeError, OverflowError):
            expires = None  # an unreadable date: keep it for the session
        if expires is not None and expires <= time.time():
            self._cookies.pop(key, None)  # the server deletes it
            return
        self._cookies[key] = _Cookie(
            name, morsel.coded_value, domain, not domain_attr, path, bool(morsel["secure"]), expires
        )

    def header(self, target: Target) -> str | None:
        """The ``Cookie`` header for a request to ``target`` (``None``: no cookie applies)."""
        now = time.time()
        matched: list[_Cookie] = []
        for key, c in list(self._cookies.items()):
            if c.expires is not None and c.expires <= now:
                del self._cookies[key]
            elif (
                (target.host == c.domain if c.host_only else _domain_match(target.host, c.domain))
                and _path_match(target.cookie_path, c.path)
                and (target.tls or not c.secure)
            ):
                matched.append(c)
        if not matched:
            return None
        matched.sort(key=_longest_path_first)
        return "; ".join([f"{c.name}={c.value}" for c in matched])


def _longest_path_first(c: _Cookie) -> int:
    return -len(c.path)

"""The TLS client contexts of both transports: k6's ``insecureSkipTLSVerify`` and ``tlsVersion``.

One context per process and setting, since loading the CA store costs milliseconds and a
worker has thousands of VUs. A version bound is Python's :class:`ssl.TLSVersion`; a bound
the local OpenSSL refuses (TLS 1.0 and 1.1 are often compiled out or held back by its
security level) makes the handshake fail as a TLS error (k6's 13xx), as Go's would.

ALPN is part of a context's key: the fast transport offers ``h2`` and ``http/1.1`` (as Go
does), the aiohttp one, which speaks only HTTP/1.x, offers nothing, so a server never picks
``h2`` for a connection that cannot speak it.
"""

from __future__ import annotations

import ssl

__all__ = ["TLS_VERSION", "client_context"]

TLS_VERSION = {
    "tls1.0": ssl.TLSVersion.TLSv1,
    "tls1.1": ssl.TLSVersion.TLSv1_1,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}
"""k6's names for TLS versions (``options.tlsVersion``), as Python's."""

_CONTEXTS: dict[tuple[bool, str | None, str | None, tuple[str, ...]], ssl.SSLContext] = {}


def client_context(
    verify: bool = True, tls_min: str | None = None, tls_max: str | None = None, alpn: tuple[str, ...] = ()
) -> ssl.SSLContext:
    """The shared client context: certificates verified or not, versions bounded by k6's names,
    and the ALPN protocols offered (none by default)."""
    key = (verify, tls_min, tls_max, alpn)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if tls_min is not None:
            ctx.minimum_version = TLS_VERSION[tls_min]
        if tls_max is not None:
            ctx.maximum_version = TLS_VERSION[tls_max]
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        _CONTEXTS[key] = ctx
    return ctx

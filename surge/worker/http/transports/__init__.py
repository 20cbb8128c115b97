"""The transports, and the one place that picks one by name.

``fast`` (:mod:`.fast`, the default) and ``aiohttp`` (:mod:`.aiohttp`). Each imports the
core (``surge.worker.http``), never the other way round. :func:`make_transport` imports the
chosen one when first asked, so that a worker on the fast transport never loads aiohttp's
client.
"""

from __future__ import annotations

from surge.common.http_options import HttpOptions
from surge.worker.http.dns import Resolver
from surge.worker.http.transport import Transport

__all__ = ["TRANSPORTS", "make_transport"]

TRANSPORTS = ("fast", "aiohttp")
"""The names :func:`make_transport` knows, the default first."""


def make_transport(name: str, options: HttpOptions | None = None, resolver: Resolver | None = None) -> Transport:
    """A new transport by name: ``"fast"`` (the default) or ``"aiohttp"``.

    ``options``: k6's HTTP options a transport applies (TLS); ``resolver``: the worker's
    shared one (k6's ``hosts`` and ``dns``), else the transport makes its own.
    """
    if name == "fast":
        from surge.worker.http.transports.fast import FastTransport

        return FastTransport(options=options, resolver=resolver)
    if name == "aiohttp":
        from surge.worker.http.transports.aiohttp import AiohttpTransport

        return AiohttpTransport(options=options, resolver=resolver)
    raise ValueError(f"unknown HTTP transport {name!r}; expected one of: {', '.join(TRANSPORTS)}")

"""The fast transport: HTTP/1.1 on a raw asyncio/uvloop protocol, parsed by httptools, and HTTP/2.

A worker's CPU is the ceiling of what it can measure, and aiohttp's client spends about ten
times what the wire needs per request. :class:`FastTransport` does only what k6's model
asks for, with the fewest Python calls: the request is serialised by hand into one
``bytes`` and written once, the response is parsed by httptools (llhttp, in C) calling
back into one :class:`~.connection.Connection` object, and the VU's coroutine awaits one
future per request. It is the default transport; ``transports.aiohttp`` is the reference it
is tested against, with the same tests. Over TLS it offers ``h2`` by ALPN, as k6 does, and
serves an origin whose server picks it with one HTTP/2 connection per VU (the ``h2`` library).

Its parts, each importing only those above it:

- :mod:`.h2errors`: HTTP/2's exceptions and their k6 rules (16xx);
- :mod:`.errors`: its exceptions and its table of k6 error rules (httptools', zlib's, h2's);
- :mod:`.url`: a URL parsed once into what a request needs (:class:`~.url.Target`);
- :mod:`.cookies`: the VU's cookie jar (RFC 6265);
- :mod:`.message`: a response's lazily decoded headers and its decompressed body;
- :mod:`.connection`: one connection, its life and its parser callbacks, and its timings;
- :mod:`.h2stream`: one HTTP/2 request, its header list and its :class:`~.h2stream.Stream`;
- :mod:`.h2conn`: one HTTP/2 connection and its streams (flow control, GOAWAY, resets);
- :mod:`.pool`: :class:`FastTransport`, the VU's connections, dialling, retries, redirects.
"""

from surge.worker.http.transports.fast.errors import (
    ERROR_RULES,
    TRANSPORT_ERRORS,
    DialError,
    DialTimeoutError,
    ServerClosedError,
    TruncatedResponseError,
    classify_error,
)
from surge.worker.http.transports.fast.pool import FastTransport

__all__ = [
    "ERROR_RULES",
    "TRANSPORT_ERRORS",
    "DialError",
    "DialTimeoutError",
    "FastTransport",
    "ServerClosedError",
    "TruncatedResponseError",
    "classify_error",
]

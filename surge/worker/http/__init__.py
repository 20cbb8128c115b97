"""The VU's HTTP layer: k6's ``http`` API, its Response, its error codes and its timings.

Where things are (each module's docstring carries its part of the picture):

- :mod:`~surge.worker.http.errors`: k6's error codes and the rules that turn an exception
  into one ("failures are data");
- :mod:`~surge.worker.http.response`: :class:`Response` and :class:`Timings` (k6's timing
  breakdown, and what each figure means);
- :mod:`~surge.worker.http.transport`: the :class:`Transport` protocol, the seam between
  the client and the bytes, and what both real transports share;
- :mod:`~surge.worker.http.redirects`: Go's redirect rules, once for both transports;
- :mod:`~surge.worker.http.dns`: where a connection goes (k6's ``hosts``, and its DNS cache
  with ``ttl``, ``select`` and ``policy``), one resolver per worker process;
- :mod:`~surge.worker.http.tls`: the TLS client contexts (``insecureSkipTLSVerify``, ``tlsVersion``);
- :mod:`~surge.worker.http.client`: :class:`HttpClient`, k6's request API over a transport,
  with :mod:`~surge.worker.http.batch` (k6's ``http.batch``);
- :mod:`~surge.worker.http.transports`: the transports themselves, and
  ``make_transport(name, options, resolver)``: ``fast`` (the default: HTTP/1.1 on raw uvloop
  protocols, parsed by httptools, cut into URL, cookies, message, connection and pool; over
  TLS it offers ``h2`` by ALPN and serves a server that picks it with the ``h2`` library,
  each request a stream) and
  ``aiohttp`` (aiohttp's client session, the full-featured reference the fast one is
  tested against; cut into its error rules, its trace and its session).

k6's HTTP options are validated in :mod:`surge.common.http_options`; the worker's runner
builds each VU's client and transport from them.

Imports go one way: the transports import this core, and nothing in the core imports a
transport (``tests/test_layering.py`` checks it, and that no module here imports one that
imports it). So this package re-exports the core only; a transport is built by
``surge.worker.http.transports.make_transport``.
"""

from surge.worker.http.client import HttpClient, RequestOptions
from surge.worker.http.errors import (
    ERROR_RULES,
    TRANSPORT_ERRORS,
    BodyTooLargeError,
    ErrorCode,
    InvalidURLError,
    Rule,
    classify_error,
    classify_with,
    status_error_code,
)
from surge.worker.http.redirects import REDIRECT_STATUSES, SENSITIVE_HEADERS, same_site
from surge.worker.http.response import Response, Timings
from surge.worker.http.transport import DEFAULT_MAX_BODY_BYTES, BaseTransport, LoadHalted, Transport

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ERROR_RULES",
    "REDIRECT_STATUSES",
    "SENSITIVE_HEADERS",
    "TRANSPORT_ERRORS",
    "BaseTransport",
    "BodyTooLargeError",
    "ErrorCode",
    "HttpClient",
    "InvalidURLError",
    "LoadHalted",
    "RequestOptions",
    "Response",
    "Rule",
    "Timings",
    "Transport",
    "classify_error",
    "classify_with",
    "same_site",
    "status_error_code",
]

"""The aiohttp transport: one aiohttp session per VU, with aiohttp's exceptions mapped to k6's codes.

The only surge package that imports aiohttp's client: :mod:`.errors` (its k6 rules),
:mod:`.trace` (timings and byte counts) and :mod:`.session` (:class:`AiohttpTransport`). It is the reference
transport (``make_transport("aiohttp")``); ``transports.fast`` is the cheap default, and both
are held to the same contract by the same tests. It offers no more than the fast one: the
same request options, and ``trust_env=False``, so no proxy or netrc from the environment.

Timings
-------
Measured with ``time.perf_counter`` from aiohttp's trace signals into one small
:class:`~.trace.Trace` per hop (the breakdown itself is described in ``surge.worker.http.response``)::

    start ─ blocked ───────────────────────────► got_conn ─ sending ─► sent ─ waiting ─► head ─ receiving ─► done
            └ create_start ─ connecting ───────┘
              (after DNS, if it was resolved)

- aiohttp dials TCP and TLS in one step, so for https the handshake is folded into
  ``connecting`` and ``tls_handshaking`` stays 0.
- ``sending`` ends when the headers were handed over for a bodiless request, else when the
  body's write has drained (the body is wrapped in :class:`~.trace.Body`, which notes that moment;
  aiohttp has no signal for it).
- ``waiting`` ends when the response head has been parsed (k6: first byte).

``bytes_sent``/``bytes_received`` are estimated from the request and the parsed response
(aiohttp does not count wire bytes).

Bodies and framing
------------------
A body is read in the chunks aiohttp hands over, kept up to ``max_body_bytes`` (64 MiB by
default, counted after aiohttp's decompression; past it the request fails with 1700 and
the connection is closed), or not kept at all when the client discards bodies. A
``Transfer-Encoding`` header from the user is dropped, as in the fast transport and Go.
Where aiohttp and the fast transport differ: aiohttp parses every byte of a read as a
pipeline, so garbage arriving in the same read after a response fails that response, and
half a status line after it stays in aiohttp's parser for the next request on that
connection (the fast transport returns the response as sent and closes the connection;
tests/worker/http/test_framing.py keeps both behaviours pinned).

Errors
------
:data:`ERROR_RULES` is the shared table of ``surge.worker.http.errors`` plus a rule for every
exception class aiohttp defines; a test walks aiohttp to prove none is missing.
"""

from surge.worker.http.transports.aiohttp.errors import ERROR_RULES, TRANSPORT_ERRORS, classify_error
from surge.worker.http.transports.aiohttp.session import AiohttpTransport

__all__ = ["ERROR_RULES", "TRANSPORT_ERRORS", "AiohttpTransport", "classify_error"]

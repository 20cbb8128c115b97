"""The VU's HTTP client: k6's ``http`` request API over a :class:`Transport`.

:class:`HttpClient` does what is the same for every transport: k6's argument handling
(``json=``, ``data=``, ``params=``, ``timeout="30s"``, ``response_type``, ``redirects``), the
base headers (k6's ``userAgent``; ``Connection: close`` for ``noConnectionReuse``), k6's
``discardResponseBodies``, ``http.batch`` (:mod:`surge.worker.http.batch`), the fence against
a lost coordinator (:class:`LoadHalted`), and reporting: every request, failed or not, is
reported exactly once to ``on_response`` with its tags, and so is every redirect hop before
it (k6 counts each hop as a request); the worker's recorder turns that into metrics, this
module records nothing itself. Nothing here adds an ``Accept-Encoding`` (k6 sends none
unless the script does, and then decodes gzip and deflate). A transport that raises one of :data:`TRANSPORT_ERRORS` instead of answering still
yields a failed Response; anything else is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import json as _json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import urlencode

from multidict import CIMultiDict, CIMultiDictProxy

from surge import __version__
from surge.common import api
from surge.common.durations import parse_duration
from surge.worker.http.batch import Batcher, BatchRequests, check_limits
from surge.worker.http.errors import TRANSPORT_ERRORS
from surge.worker.http.response import Response
from surge.worker.http.transport import LoadHalted, Transport

__all__ = ["DEFAULT_USER_AGENT", "RESPONSE_TYPES", "HttpClient", "RequestOptions"]

class RequestOptions(TypedDict, total=False):
    """The keywords every request method takes (k6's ``params``, Python-style)."""

    json: Any
    data: str | bytes | Mapping[str, str] | None
    headers: Mapping[str, str] | None
    params: Mapping[str, str] | None
    timeout: float | str | None
    tags: Mapping[str, str] | None
    response_type: str | None
    redirects: int | None


DEFAULT_USER_AGENT = f"surge/{__version__}"
"""What every request says it is, unless ``userAgent`` says otherwise (k6: ``Grafana k6/VERSION``)."""

RESPONSE_TYPES = ("text", "binary", "none")
"""k6's ``responseType``: the body is kept (``text``, ``binary``: ``Response.body`` is bytes
either way, ``.text`` decodes it) or read, counted and dropped (``none``: ``body`` is None)."""


class HttpClient:
    """A VU's ``http``: k6's request API over a :class:`Transport`, reporting every request once.

    ``on_response(response, tags)`` is called after each request, failed or not, with the
    ``tags=`` given to it (or ``None``). A request cancelled from outside (the VU being
    stopped) raises ``CancelledError``; if it had already been written to the connection it
    is reported first, as failed with ``error == "request interrupted"``, because the server
    received it and the counts on both sides must agree. The transport is given
    (``surge.worker.http.transports.make_transport`` builds one by name): this module knows
    no transport, so that no transport's import leads back here.

    ``may_send()``, if given, is asked before every request: False means this worker must not
    load anyone now (its coordinator has gone silent: see :class:`LoadHalted`), and the request
    is not sent.
    """

    def __init__(
        self,
        *,
        on_response: Callable[[Response, Mapping[str, str] | None], None],
        transport: Transport,
        default_timeout_s: float = 60.0,
        max_redirects: int = 10,
        base_headers: Mapping[str, str] | None = None,
        discard_response_bodies: bool = False,
        may_send: Callable[[], bool] | None = None,
        user_agent: str | None = None,
        no_connection_reuse: bool = False,
        batch: int = 20,
        batch_per_host: int = 6,
    ) -> None:
        if not default_timeout_s > 0:
            raise ValueError(f"default_timeout_s must be > 0, got {default_timeout_s!r}")
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {max_redirects!r}")
        self._on_response = on_response
        self._transport = transport
        self._default_timeout_s = float(default_timeout_s)
        self._max_redirects = max_redirects
        self._discard = discard_response_bodies  # k6's discardResponseBodies: responseType "none"
        self._may_send = may_send
        check_limits(batch, batch_per_host)
        self._batch_limits = (batch, batch_per_host)
        self._batcher: Batcher | None = None  # made by the first batch(): most VUs never batch
        if may_send is not None and hasattr(self._transport, "fence"):
            self._transport.fence = may_send  # a transport that writes again (retry, redirect) asks too
        self._base_headers = _shared_base_headers(
            DEFAULT_USER_AGENT if user_agent is None else user_agent, no_connection_reuse, base_headers
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: str | bytes | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | str | None = None,
        tags: Mapping[str, str] | None = None,
        response_type: str | None = None,
        redirects: int | None = None,
    ) -> Response:
        """Send one request and return its Response; network and HTTP failures come back as data.

        ``response_type`` is k6's ``responseType`` (:data:`RESPONSE_TYPES`; by default
        ``"none"`` under ``discardResponseBodies``, else ``"text"``); ``redirects`` is k6's
        per-request ``redirects`` (default: the ``maxRedirects`` option). Each redirect hop is
        reported as a request of its own, before the response it led to.
        """
        if not isinstance(method, str) or not isinstance(url, str):
            raise TypeError(f"method and url must be str, got {type(method).__name__} and {type(url).__name__}")
        if isinstance(url, api.URL) and not (tags and "name" in tags):  # surge.url's name, unless a tag says otherwise
            tags = {**(tags or {}), "name": url.name}
        method = method.upper()
        timeout_s = self._timeout_s(timeout)
        if response_type is None:
            keep_body = not self._discard
        elif response_type in RESPONSE_TYPES:
            keep_body = response_type != "none"
        else:
            raise ValueError(f"response_type must be one of {', '.join(RESPONSE_TYPES)}, got {response_type!r}")
        if redirects is None:
            redirects = self._max_redirects
        elif isinstance(redirects, bool) or not isinstance(redirects, int) or redirects < 0:
            raise ValueError(f"redirects must be a whole number >= 0, got {redirects!r}")
        body, content_type = _encode_body(json, data)
        if params:
            url = _with_query(url, params)
        if headers and not isinstance(headers, Mapping):
            raise TypeError(f"headers must be a mapping, got {type(headers).__name__}")
        all_headers = _merged_headers(self._base_headers, headers, content_type)
        if self._may_send is not None and not self._may_send():
            # One turn of the loop first: the VU was just cancelled with the rest, and a scenario
            # that retries in a loop must not spin here without ever letting that cancel land.
            await asyncio.sleep(0)
            raise LoadHalted("not sent: this worker's coordinator has gone silent, so its load stops")
        try:
            resp = await self._transport.send(method, url, all_headers, body, timeout_s, redirects, keep_body)
        except asyncio.CancelledError:
            cut = self._transport.take_interrupted()
            if cut is not None:
                self._report(cut, tags)
            raise
        except TRANSPORT_ERRORS as exc:  # a transport that raised instead of answering
            resp = Response.failed(method, url, exc)
        if not keep_body:
            resp.body = None  # read and counted (data_received), then dropped, as in k6
        self._report(resp, tags)
        return resp

    def _report(self, resp: Response, tags: Mapping[str, str] | None) -> None:
        for hop in resp.hops:  # k6 counts every redirect hop as a request of its own
            self._on_response(hop, tags)
        self._on_response(resp, tags)

    async def batch(self, requests: BatchRequests) -> Any:
        """k6's ``http.batch``: the requests in parallel, their Responses in the same order (or keys).

        See :mod:`surge.worker.http.batch` for the shapes a request may take; at most
        ``batch`` of them are in flight at once, and ``batchPerHost`` per host. Every
        request is checked before any is sent.
        """
        if self._batcher is None:
            self._batcher = Batcher(self.request, *self._batch_limits)
        return await self._batcher.run(requests)

    async def close_idle(self) -> None:
        """Close the connections no request is using (k6's ``noVUConnectionReuse``)."""
        close_idle = getattr(self._transport, "close_idle", None)
        if close_idle is not None:
            await close_idle()

    def _timeout_s(self, timeout: float | str | None) -> float:
        if timeout is None:
            return self._default_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float, str)):
            raise TypeError(f"timeout must be seconds or a duration string such as '30s', got {timeout!r}")
        seconds = parse_duration(timeout) if isinstance(timeout, str) else float(timeout)
        if not seconds > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        return seconds

    url = staticmethod(api.url)  # k6's http.url: vu.http.url("http://h/items/{}", id)

    # The verbs hand back request()'s coroutine itself (``await vu.http.post(...)`` as before):
    # a coroutine of their own around it would be one more object and one more level that
    # every resumption of the request goes through.

    def get(self, url: str, **options: Unpack[RequestOptions]) -> Coroutine[Any, Any, Response]:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Unpack[RequestOptions]) -> Coroutine[Any, Any, Response]:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Unpack[RequestOptions]) -> Coroutine[Any, Any, Response]:
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Unpack[RequestOptions]) -> Coroutine[Any, Any, Response]:
        return self.request("PATCH", url, **options)

    def delete(self, url: str, **options: Unpack[RequestOptions]) -> Coroutine[Any, Any, Response]:
        return self.request("DELETE", url, **options)

    def head(self, url: str, **options: Unpack[RequestOptions]) -> Coroutine[Any, Any, Response]:
        return self.request("HEAD", url, **options)

    def options(self, url: str, **options: Unpack[RequestOptions]) -> Coroutine[Any, Any, Response]:
        return self.request("OPTIONS", url, **options)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


_BASE_HEADERS: dict[tuple[str, bool, tuple[tuple[str, str], ...]], CIMultiDictProxy[str]] = {}
_MAX_BASE_HEADERS = 64


def _shared_base_headers(
    agent: str, no_connection_reuse: bool, base_headers: Mapping[str, str] | None
) -> CIMultiDictProxy[str]:
    """The headers every request of a client starts from, one read-only object for all clients alike.

    10,000 VUs have the same ones, and no request changes them (:func:`_merged_headers` builds
    on them): sharing saves ~330 bytes a VU. A few distinct sets are kept (clients built with
    other options: tests, lifecycle VUs); past that, or for a value that cannot be hashed, a
    new one is made each time.
    """
    key = (agent, no_connection_reuse, tuple(base_headers.items()) if base_headers else ())
    try:
        shared, keep = _BASE_HEADERS.get(key), True
    except TypeError:  # an unhashable value: made, not kept
        shared, keep = None, False
    if shared is not None:
        return shared
    headers: CIMultiDict[str] = CIMultiDict()
    if agent:  # k6's userAgent "": no User-Agent at all (Go sends none for an empty one)
        headers["User-Agent"] = agent
    if no_connection_reuse:
        # k6's noConnectionReuse is Go's DisableKeepAlives, which asks the server to close;
        # the fast transport then drops the connection, the aiohttp one is told by its
        # options (aiohttp pools a connection whatever this header says).
        headers["Connection"] = "close"
    if base_headers:
        headers.update(base_headers)
    shared = CIMultiDictProxy(headers)
    if keep and len(_BASE_HEADERS) < _MAX_BASE_HEADERS:
        _BASE_HEADERS[key] = shared
    return shared


_MERGED: dict[tuple[int, tuple[tuple[str, str], ...], str | None], tuple[object, CIMultiDictProxy[str]]] = {}
_MAX_MERGED = 256


def _merged_headers(
    base: CIMultiDictProxy[str], headers: Mapping[str, str] | None, content_type: str | None
) -> CIMultiDictProxy[str]:
    """A request's headers: ``base``, then the caller's (each replacing a base field of its
    name), then ``content_type`` unless the caller set one. Read-only, and one object for
    equal inputs: a scenario sends the same few sets again and again, and the fast transport
    keeps what it encoded of each object (``FastTransport._encode``). At most ``_MAX_MERGED``
    sets are kept (URL-like values in headers would otherwise grow it), then it starts anew;
    headers with a value that cannot be hashed are merged each time.
    """
    if not headers and content_type is None:
        return base
    try:
        key = (id(base), tuple(headers.items()) if headers else (), content_type)
        hit = _MERGED.get(key)
    except TypeError:  # an unhashable value: merged, not kept
        key, hit = None, None
    if hit is not None and hit[0] is base:
        return hit[1]
    merged = base.copy()
    if headers:
        for name, value in headers.items():
            merged[name] = value
    if content_type is not None and "Content-Type" not in merged:
        merged["Content-Type"] = content_type
    shared = CIMultiDictProxy(merged)
    if key is not None:
        if len(_MERGED) >= _MAX_MERGED:
            _MERGED.clear()
        _MERGED[key] = (base, shared)  # base kept alive with it: its id cannot be reused meanwhile
    return shared


def _encode_body(json: Any, data: str | bytes | Mapping[str, str] | None) -> tuple[bytes | None, str | None]:
    """The body bytes and the Content-Type they imply (``None``: leave it to the caller)."""
    if json is not None:
        if data is not None:
            raise TypeError("pass json= or data=, not both")
        text = _json.dumps(json, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8"), "application/json"
    if data is None:
        return None, None
    if isinstance(data, str):
        return data.encode("utf-8"), None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), None
    if isinstance(data, Mapping):
        return urlencode(data).encode("ascii"), "application/x-www-form-urlencoded"
    raise TypeError(f"data must be str, bytes or a mapping, got {type(data).__name__}")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    base, hash_, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{urlencode(params)}{hash_}{fragment}"

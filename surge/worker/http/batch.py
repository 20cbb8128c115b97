"""k6's ``http.batch``: several requests of one VU in parallel, their responses in order.

A request in the batch takes one of k6's shapes::

    "https://host/path"                                   # GET
    ("POST", "https://host/path", body, params)           # body and params optional
    {"method": "POST", "url": ..., "body": ..., "params": {...}}

``body`` is what ``data=`` takes (str, bytes, a form mapping); ``params`` is a dict of the
request keywords (``headers``, ``tags``, ``timeout``, ``response_type``/``responseType``,
``redirects``, ``json``...). As in k6, a GET or HEAD in the dict shape drops its body. The
batch itself is a list (the responses come back as a list, in its order) or a dict of name
to request (a dict of name to response).

At most ``batch`` requests are in flight at once (k6's ``batch``, default 20) and at most
``batchPerHost`` to one host (default 6; 0 means no limit), as k6's limiters. Every request
is checked before any is sent, so a malformed one raises (``TypeError``/``ValueError``)
with nothing on the wire; if a request raises later (:class:`LoadHalted`), the others are
cancelled and the error propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Union
from urllib.parse import urlsplit

from surge.worker.http.response import Response

__all__ = ["BatchRequests", "Batcher"]

BatchRequest = Union[str, Sequence[Any], Mapping[str, Any]]
BatchRequests = Union[Sequence[BatchRequest], Mapping[str, BatchRequest]]
Send = Callable[..., Awaitable[Response]]  # HttpClient.request(method, url, **keywords)

_ALIASES = {"responseType": "response_type"}  # k6's spelling of a params key
_BODILESS = ("GET", "HEAD")


def _params(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: params must be a dict of request keywords, got {type(value).__name__}")
    return {_ALIASES.get(str(k), str(k)): v for k, v in value.items()}


def _parse(item: object, where: str) -> tuple[str, str, dict[str, Any]]:
    """``(method, url, keywords)`` for one request of a batch (k6's ``parseBatchRequest``)."""
    if isinstance(item, str):
        return "GET", item, {}
    if isinstance(item, Mapping):
        if "url" not in item:
            raise ValueError(f"{where}: a batch request needs a url key")
        method = item.get("method", "GET")
        if not isinstance(method, str):
            raise TypeError(f"{where}: invalid method {method!r}")
        method = method.upper()
        kw = _params(item.get("params"), where)
        for key in ("json", "data", "headers", "tags", "timeout", "response_type", "redirects"):
            if key in item:
                kw[key] = item[key]
        if item.get("body") is not None and method not in _BODILESS:
            kw["data"] = item["body"]
        return method, item["url"], kw
    if isinstance(item, (list, tuple)):
        if len(item) < 2 or len(item) > 4:
            raise ValueError(f"{where}: expected (method, url[, body[, params]]), got {len(item)} items")
        method = item[0]
        if not isinstance(method, str):
            raise TypeError(f"{where}: invalid method {method!r}")
        kw = _params(item[3] if len(item) > 3 else None, where)
        if len(item) > 2 and item[2] is not None:
            kw["data"] = item[2]
        return method.upper(), item[1], kw
    raise TypeError(f"{where}: expected a URL, a (method, url, body, params) tuple or a dict, got {type(item).__name__}")


def check_limits(batch: int, batch_per_host: int) -> None:
    """``ValueError`` unless k6's ``batch`` is at least 1 and ``batchPerHost`` at least 0 (0: no limit)."""
    if batch < 1 or batch_per_host < 0:
        raise ValueError(f"batch must be >= 1 and batch_per_host >= 0, got {batch} and {batch_per_host}")


class Batcher:
    """Runs batches for one client, within its ``batch`` and ``batchPerHost`` limits."""

    def __init__(self, send: Send, batch: int = 20, batch_per_host: int = 6) -> None:
        check_limits(batch, batch_per_host)
        self._send = send
        self._batch = batch
        self._per_host = batch_per_host

    async def run(self, requests: BatchRequests) -> Any:
        """The responses, as a list in order or as a dict by name (see the module docstring)."""
        names: list[Any] | None = None
        if isinstance(requests, Mapping):
            keys = list(requests)
            items = [_parse(requests[name], f"batch[{name!r}]") for name in keys]
            names = keys
        elif isinstance(requests, (list, tuple)):
            items = [_parse(item, f"batch[{i}]") for i, item in enumerate(requests)]
        else:
            raise TypeError(f"batch takes a list or a dict of requests, got {type(requests).__name__}")
        for method, url, _ in items:
            if not isinstance(url, str):
                raise TypeError(f"batch: a url must be a str, got {type(url).__name__} for {method}")
        responses = await self._all(items)
        if names is None:
            return responses
        return dict(zip(names, responses))

    async def _all(self, items: list[tuple[str, str, dict[str, Any]]]) -> list[Response]:
        overall = asyncio.Semaphore(self._batch)
        hosts: dict[str, asyncio.Semaphore] = {}

        async def one(method: str, url: str, kw: dict[str, Any]) -> Response:
            per_host = None
            if self._per_host:
                try:
                    host = urlsplit(url).netloc.lower()
                except ValueError:
                    host = ""  # the request fails as an invalid URL, with no slot of its own
                per_host = hosts.setdefault(host, asyncio.Semaphore(self._per_host))
            async with overall:
                if per_host is None:
                    return await self._send(method, url, **kw)
                async with per_host:
                    return await self._send(method, url, **kw)

        tasks = [asyncio.ensure_future(one(m, u, kw)) for m, u, kw in items]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

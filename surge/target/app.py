"""The embedded demo target: a stand-in for the Supabase Edge Function behind a Stripe checkout.

``surge target`` (and the integration tests) serve this app on 127.0.0.1 so that a scenario has
something realistic to hit without touching the network. It imitates
``POST /functions/v1/create-checkout-session``, which in production checks the Supabase anon key,
validates the order, calls Stripe and answers with the checkout page's URL.

What a request goes through, in order::

    arrive        stats.requests += 1, stats.in_flight += 1        (always, whatever follows)
                  stats.by_client[client's address] += 1
    method        not POST                  -> 405 {"error"}  + Allow: POST
    auth          Authorization / apikey    -> 401 {"error"}          (names the bad header)
    body          not JSON / not an object  -> 400 {"error"}
                  first bad field           -> 400 {"error", "field"}
    draw          latency, failure?, session id   from the app's own random.Random(seed)
    sleep         lognormal latency, capped at latency_max_ms
    answer        failure -> error_status {"error": "injected failure"}
                  else    -> 200 {"url": "https://checkout.stripe.com/c/pay/cs_test_<id>", "sessionId"}
    leave         stats.completed += 1, stats.by_status[status] += 1, stats.in_flight -= 1

Beside it, a small catalog for multi-endpoint journeys (``scenarios/shop_journey.py``), open
to anyone (no auth) and answering at once: ``GET /shop/events`` (the list), ``GET
/shop/events/{id}`` (one event, any whole number; 404 otherwise) and ``GET /shop/search?q=``
(the events whose name holds ``q``). Each counts in ``stats.catalog_requests``.

Counting is exact because integration tests compare surge's request count with this one:
``requests`` is counted before anything can fail, handlers are never cancelled when a client
disconnects (so a request that arrived always finishes), and the bookkeeping endpoints
(``/__surge/stats``, ``/__surge/reset``, ``/health``) are not counted.

The random draws are made before the sleep, in arrival order, so a seeded target that receives
its requests one at a time answers with the same latencies, failures and session ids every run.
Under concurrency the order of arrival, and so the pairing of draws to requests, is the
scheduler's.

Latency is ``exp(N(ln(median), sigma))``: the median is ``latency_median_ms`` whatever sigma is,
sigma 0 gives a constant latency, sigma 0.5 gives a p99 about 3.2 times the median.

The app is itself on the hot path of benchmarks, so it logs nothing per request, keeps
connections alive for far longer than any think time, and does little more than the checks above.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEMO_ANON_KEY = "surge-demo-anon-key"
CHECKOUT_PATH = "/functions/v1/create-checkout-session"
STATS_PATH = "/__surge/stats"
RESET_PATH = "/__surge/reset"
HEALTH_PATH = "/health"
CATALOG_PATH = "/shop/events"
SEARCH_PATH = "/shop/search"
_CATALOG = [{"id": i, "name": f"{genre} night {i}", "price": 20 + 5 * (i % 7)}
            for i, genre in enumerate(("jazz", "rock", "opera", "techno", "folk", "comedy", "ballet", "blues"), 1)]

_SESSION_ALPHABET = string.ascii_letters + string.digits
_SESSION_ID_LENGTH = 32
_QUANTITY_MIN = 1
_QUANTITY_MAX = 10
# A VU keeps one connection for the whole run and may think (sleep) for minutes between
# requests; the server must not close it under the VU. aiohttp's default moved from 75 s to
# ~1 h across the versions surge accepts, so it is pinned here.
_KEEPALIVE_TIMEOUT_S = 3630.0
# Many VUs connect at once when a run starts; the kernel's default backlog of 128 would make
# some of them wait for a SYN retry (a one-second stall that is the target's, not the server's).
_LISTEN_BACKLOG = 4096
# stop() lets requests already sleeping finish: up to the latency cap, plus this margin.
_SHUTDOWN_MARGIN_S = 1.0


@dataclass(frozen=True)
class TargetConfig:
    """How the demo target listens and behaves. ``port=0`` lets the OS pick a free port."""

    host: str = "127.0.0.1"
    port: int = 8787
    anon_key: str = DEMO_ANON_KEY
    latency_median_ms: float = 40.0
    latency_sigma: float = 0.5
    latency_max_ms: float = 5000.0
    error_rate: float = 0.0
    error_status: int = 500
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0..65535, got {self.port}")
        if not self.anon_key:
            problems.append("anon_key must not be empty")
        if not self.latency_median_ms >= 0:  # also rejects NaN
            problems.append(f"latency_median_ms must be >= 0, got {self.latency_median_ms}")
        if not self.latency_sigma >= 0:
            problems.append(f"latency_sigma must be >= 0, got {self.latency_sigma}")
        if not self.latency_max_ms >= 0:
            problems.append(f"latency_max_ms must be >= 0, got {self.latency_max_ms}")
        if not 0 <= self.error_rate <= 1:
            problems.append(f"error_rate must be within 0..1, got {self.error_rate}")
        if not 100 <= self.error_status <= 599:
            problems.append(f"error_status must be an HTTP status, got {self.error_status}")
        if problems:
            raise ValueError("invalid target config: " + "; ".join(problems))


@dataclass
class TargetStats:
    """Counters of the checkout route, mutated by the app on the event loop's thread.

    ``requests`` counts every request that reached the route (any method, any outcome) on
    arrival; ``completed`` and ``by_status`` count responses the handler produced.
    ``requests - completed - in_flight`` is non-zero only for requests whose client vanished
    before the handler could answer (the body could not be read). ``by_client`` splits
    ``requests`` by the client's address (``"unknown"`` when the transport does not say), so a
    test with load machines at several addresses can tell which one sent what.
    """

    requests: int = 0
    completed: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    in_flight: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    catalog_requests: int = 0  # the catalog routes' requests (not in ``requests``, the checkout's)

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-able data; status codes become string keys, in order."""
        return {
            "requests": self.requests,
            "completed": self.completed,
            "in_flight": self.in_flight,
            "by_status": {str(code): n for code, n in sorted(self.by_status.items())},
            "by_client": dict(sorted(self.by_client.items())),
            "catalog_requests": self.catalog_requests,
        }

    def reset(self) -> None:
        """Zero the counts. ``in_flight`` is kept: those requests are live and will leave."""
        self.requests = 0
        self.completed = 0
        self.by_status = {}
        self.by_client = {}
        self.catalog_requests = 0


STATS_KEY = web.AppKey("surge_target_stats", TargetStats)
CONFIG_KEY = web.AppKey("surge_target_config", TargetConfig)


class _BadRequest(Exception):
    """A body the function rejects; becomes a 400 carrying ``error`` and maybe ``field``."""

    def __init__(self, error: str, field_name: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.field_name = field_name


def _require_str(body: dict[str, Any], name: str) -> str:
    if name not in body:
        raise _BadRequest(f"missing field {name!r}", name)
    value = body[name]
    if not isinstance(value, str):
        raise _BadRequest(f"{name!r} must be a string", name)
    return value


def _validate_order(body: Any) -> None:
    """Raise :class:`_BadRequest` for the first field the real function would refuse."""
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    for name in ("eventId", "ticketTypeId"):
        if not _require_str(body, name):
            raise _BadRequest(f"{name!r} must not be empty", name)
    if "quantity" not in body:
        raise _BadRequest("missing field 'quantity'", "quantity")
    quantity = body["quantity"]
    # bool is an int subclass, and JSON's true must not buy one ticket.
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise _BadRequest("'quantity' must be an integer", "quantity")
    if not _QUANTITY_MIN <= quantity <= _QUANTITY_MAX:
        raise _BadRequest(f"'quantity' must be within {_QUANTITY_MIN}..{_QUANTITY_MAX}", "quantity")
    if "@" not in _require_str(body, "email"):
        raise _BadRequest("'email' must be an email address", "email")
    for name in ("successUrl", "cancelUrl"):
        if not _require_str(body, name).startswith(("http://", "https://")):
            raise _BadRequest(f"{name!r} must be an http(s) URL", name)


def _json(status: int, payload: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers or None,
    )


class _Checkout:
    """The checkout handler with its config, counters and random stream."""

    def __init__(self, config: TargetConfig, stats: TargetStats) -> None:
        self._config = config
        self._stats = stats
        self._rng = random.Random(config.seed)
        self._mu = math.log(config.latency_median_ms) if config.latency_median_ms > 0 else None
        self._bearer = f"Bearer {config.anon_key}"

    async def handle(self, request: web.Request) -> web.Response:
        stats = self._stats
        stats.requests += 1
        stats.in_flight += 1
        client = request.remote or "unknown"
        stats.by_client[client] = stats.by_client.get(client, 0) + 1
        try:
            response = await self._answer(request)
            stats.completed += 1
            stats.by_status[response.status] = stats.by_status.get(response.status, 0) + 1
            return response
        finally:
            stats.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return _json(405, {"error": f"method {request.method} not allowed"}, Allow="POST")
        auth_error = self._auth_error(request)
        if auth_error is not None:
            return _json(401, {"error": auth_error})
        raw = await request.read()
        try:
            _validate_order(json.loads(raw))
        except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            return _json(400, {"error": "body is not valid JSON"})
        except _BadRequest as bad:
            payload: dict[str, Any] = {"error": bad.error}
            if bad.field_name is not None:
                payload["field"] = bad.field_name
            return _json(400, payload)

        # Every draw happens before the sleep, so draws follow the order bodies arrive in.
        latency_s = self._draw_latency_ms() / 1000.0
        failed = self._rng.random() < self._config.error_rate
        session_id = "cs_test_" + "".join(
            self._rng.choices(_SESSION_ALPHABET, k=_SESSION_ID_LENGTH)
        )
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        if failed:
            return _json(self._config.error_status, {"error": "injected failure"})
        return _json(
            200,
            {"url": f"https://checkout.stripe.com/c/pay/{session_id}", "sessionId": session_id},
        )

    def _auth_error(self, request: web.Request) -> str | None:
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return "missing Authorization header"
        if authorization != self._bearer:
            return "invalid Authorization header: expected 'Bearer <anon key>'"
        apikey = request.headers.get("apikey")
        if apikey is None:
            return "missing apikey header"
        if apikey != self._config.anon_key:
            return "invalid apikey header"
        return None

    def _draw_latency_ms(self) -> float:
        if self._mu is None:
            return 0.0
        # Drawn even when sigma is 0, so the error/session-id stream does not depend on sigma.
        drawn = self._rng.lognormvariate(self._mu, self._config.latency_sigma)
        return min(drawn, self._config.latency_max_ms)


def make_app(config: TargetConfig, stats: TargetStats | None = None) -> web.Application:
    """Build the demo target's app; its counters are ``stats`` (a new one if not given).

    The counters are also reachable as ``app[STATS_KEY]``, the config as ``app[CONFIG_KEY]``.
    """
    if stats is None:
        stats = TargetStats()
    checkout = _Checkout(config, stats)

    async def get_stats(request: web.Request) -> web.Response:
        return _json(200, stats.snapshot())

    async def reset_stats(request: web.Request) -> web.Response:
        stats.reset()
        return _json(200, stats.snapshot())

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def events(request: web.Request) -> web.Response:
        stats.catalog_requests += 1
        return _json(200, {"events": _CATALOG})

    async def event(request: web.Request) -> web.Response:
        stats.catalog_requests += 1
        raw = request.match_info["id"]
        if not raw.isdigit():
            return _json(404, {"error": f"no event {raw!r}"})
        i = int(raw)
        return _json(200, {**_CATALOG[i % len(_CATALOG)], "id": i})

    async def search(request: web.Request) -> web.Response:
        stats.catalog_requests += 1
        q = request.query.get("q", "").lower()
        return _json(200, {"q": q, "events": [e for e in _CATALOG if q in str(e["name"])]})

    app = web.Application()
    app[STATS_KEY] = stats
    app[CONFIG_KEY] = config
    app.router.add_route("*", CHECKOUT_PATH, checkout.handle)
    app.router.add_get(STATS_PATH, get_stats)
    app.router.add_post(RESET_PATH, reset_stats)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_get(CATALOG_PATH, events)
    app.router.add_get(CATALOG_PATH + "/{id}", event)
    app.router.add_get(SEARCH_PATH, search)
    return app


@dataclass
class RunningTarget:
    """A target serving in the current event loop; ``url`` carries the port actually bound."""

    url: str
    stats: TargetStats
    config: TargetConfig
    _runner: web.AppRunner = field(repr=False)

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish (up to the latency cap), close all."""
        await self._runner.cleanup()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def start_target(config: TargetConfig) -> RunningTarget:
    """Serve the demo target in the running loop on ``config.host:config.port``."""
    stats = TargetStats()
    runner = web.AppRunner(
        make_app(config, stats),
        access_log=None,
        handler_cancellation=False,  # a disconnecting client must not make a request vanish
        keepalive_timeout=_KEEPALIVE_TIMEOUT_S,
        shutdown_timeout=config.latency_max_ms / 1000.0 + _SHUTDOWN_MARGIN_S,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, backlog=_LISTEN_BACKLOG)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = config.port
    for address in runner.addresses:
        port = int(address[1])
        break
    return RunningTarget(url=_url(config.host, port), stats=stats, config=config, _runner=runner)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    # Reparented (to init or a subreaper) means the process that started us is gone.
    while os.getppid() == parent:
        await asyncio.sleep(0.2)
    stop.set()


async def _serve_until_signal(config: TargetConfig, parent_pid: int | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    target = await start_target(config)
    signals = (signal.SIGINT, signal.SIGTERM)
    watcher = loop.create_task(_watch_parent(parent_pid, stop)) if parent_pid is not None else None
    try:
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        print(f"surge demo target listening on {target.url}", flush=True)
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        for signum in signals:
            loop.remove_signal_handler(signum)
        await target.stop()


def run_target(config: TargetConfig, *, parent_pid: int | None = None) -> None:
    """Serve the demo target until SIGINT or SIGTERM, then return (for ``surge target``).

    Prints one line, ``surge demo target listening on http://HOST:PORT``. Runs on uvloop when
    it is installed, since the target shares the machine with the load it is measured under.
    ``parent_pid``: also return when that process is no longer this one's parent (it is gone,
    even killed with SIGKILL), so that ``surge run --demo-target`` never leaves a target behind.
    Given by the parent itself, so a parent that dies before this process looks is noticed too.
    """
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional here
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve_until_signal(config, parent_pid))

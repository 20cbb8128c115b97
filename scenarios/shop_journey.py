"""A shopper's journey over several endpoints: browse, search (with ids in the URLs), check out.

The per-endpoint table (``--summary-mode full``, ``--report``, ``--dashboard``) is the thing to
look at here: each request is one row per name, method, group and scenario, with its requests,
failures, req/s, latency percentiles and bytes. Three ways to name a request, as in k6:

- by its URL, the default: ``GET {BASE}/shop/events``;
- by a template, ``vu.http.url(BASE_URL + "/shop/events/{}", event_id)`` (k6's ``http.url``):
  one row named ``http://.../shop/events/${}`` however many ids are asked for;
- by a ``name`` tag: the checkout is ``tags={"name": "checkout"}``, so a threshold can name it,
  ``http_req_duration{name:checkout}``.

Two scenarios run side by side: ``shoppers`` go the whole way (browse, search, check out) and
``window_shoppers`` only browse, at a fixed arrival rate.

Run it:
    surge run --demo-target --summary-mode full scenarios/shop_journey.py
    surge run --demo-target scenarios/shop_journey.py --report shop.html -e DURATION=30s

``DURATION`` (default 20s) and ``VUS`` (default 10) shorten or grow it.
"""

from __future__ import annotations

import random
from typing import Any

from scenarios.helpers.auth import get_base_url, get_headers
from scenarios.helpers.data_generators import generate_ticket_payload
from surge import check, env, group

BASE_URL = get_base_url()
HEADERS = get_headers()
DURATION = env.get("DURATION", "20s")
VUS = int(env.get("VUS", "10"))
SEARCH_TERMS = ("jazz", "rock", "opera", "night", "blues")

options = {
    "scenarios": {
        "shoppers": {"executor": "constant-vus", "vus": VUS, "duration": DURATION, "exec": "shop"},
        "window_shoppers": {
            "executor": "constant-arrival-rate", "rate": 5, "timeUnit": "1s", "duration": DURATION,
            "preAllocatedVUs": 2, "maxVUs": 10, "exec": "browse",
        },
    },
    "thresholds": {
        "http_req_duration{name:checkout}": ["p(95)<500"],
        "http_req_failed": ["rate<0.01"],
        "checks": ["rate>0.99"],
    },
    "summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"],
}


async def _browse(vu: Any) -> list[dict[str, Any]]:
    res = await vu.http.get(f"{BASE_URL}/shop/events")
    check(res, {"events listed": lambda r: r.status == 200})
    events: list[dict[str, Any]] = (res.json() or {}).get("events", []) if res.status == 200 else []
    return events


async def browse(vu: Any) -> None:
    """A window shopper: the list, then one event by id."""
    with group("browse"):
        events = await _browse(vu)
        event_id = random.choice(events)["id"] if events else 1
        res = await vu.http.get(vu.http.url(BASE_URL + "/shop/events/{}", event_id))
        check(res, {"event shown": lambda r: r.status == 200})


async def shop(vu: Any) -> None:
    """A shopper: browse, search, look at a result (one of thousands of ids), buy."""
    with group("browse"):
        await _browse(vu)
    await vu.sleep(random.random() * 0.2)
    with group("search"):
        term = random.choice(SEARCH_TERMS)
        res = await vu.http.get(vu.http.url(BASE_URL + "/shop/search?q={}", term))
        check(res, {"search answered": lambda r: r.status == 200})
        event_id = random.randrange(1, 5000)  # an id in the URL: named by its template, one row
        res = await vu.http.get(vu.http.url(BASE_URL + "/shop/events/{}", event_id))
        check(res, {"event shown": lambda r: r.status == 200})
    await vu.sleep(random.random() * 0.2)
    with group("checkout"):
        res = await vu.http.post(
            f"{BASE_URL}/functions/v1/create-checkout-session",
            json=generate_ticket_payload(vu.id, vu.iteration), headers=HEADERS, timeout="30s",
            tags={"name": "checkout"},
        )
        check(res, {"checkout URL": lambda r: r.status == 200 and "checkout.stripe.com" in (r.json() or {}).get("url", "")})
    await vu.sleep(random.random() * 0.5)

"""What every example shares: one checkout request against BASE_URL (see scenarios/helpers/auth.py)."""

from __future__ import annotations

from typing import Any

from scenarios.helpers.auth import get_base_url, get_headers
from scenarios.helpers.data_generators import generate_ticket_payload
from surge import check

CHECKOUT_URL = f"{get_base_url()}/functions/v1/create-checkout-session"
HEADERS = get_headers()


async def purchase(vu: Any) -> None:
    """One checkout; ``vu.iteration_in_test`` makes the payload unique across the fleet."""
    payload = generate_ticket_payload(vu.id, vu.iteration_in_test)
    response = await vu.http.post(CHECKOUT_URL, json=payload, headers=HEADERS, timeout="30s")
    check(response, {"status is 200": lambda r: r.status == 200})

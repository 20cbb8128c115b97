"""Request bodies for the ticket-purchase flow, derived from the VU and iteration numbers.

Deterministic on purpose: the same ``(vu, iteration)`` always buys the same thing, so a
failure seen in the summary can be replayed by hand, and no two VUs share a buyer email.
"""

from __future__ import annotations

from typing import Any

EVENTS = ("evt_summer_fest_2026", "evt_jazz_night", "evt_tech_conf", "evt_comedy_gala")
TICKET_TYPES = ("general", "vip", "early_bird", "student")


def generate_ticket_payload(vu: int, iteration: int) -> dict[str, Any]:
    """The JSON body of one ``create-checkout-session`` call for VU ``vu``, iteration ``iteration``."""
    n = vu * 7919 + iteration
    return {
        "eventId": EVENTS[n % len(EVENTS)],
        "ticketTypeId": TICKET_TYPES[(n // len(EVENTS)) % len(TICKET_TYPES)],
        "quantity": 1 + n % 4,
        "email": f"loadtest+vu{vu}.it{iteration}@example.test",
        "successUrl": "https://tickets.example.test/checkout/success?session_id={CHECKOUT_SESSION_ID}",
        "cancelUrl": "https://tickets.example.test/checkout/cancel",
    }

"""Ticket purchase load test: 100 concurrent VUs against create-checkout-session.

Port of the k6 plan ``load-tests/scenarios/ticket-purchase.js``: ramp to 100 VUs in 30 s,
hold 2 minutes, ramp down in 30 s (gracefulRampDown 10 s); each iteration creates one Stripe
checkout session and thinks for 0.5-2.5 s.

Pass criteria: p95 < 500 ms, error rate < 1 %, every successful request returns a Stripe
checkout URL. ``purchase_errors`` counts an iteration as an error when any of its checks
fails, including "response under 500ms": as in the original, a slow purchase is a failed one.

Run it:
    surge run --demo-target scenarios/ticket_purchase.py                 # embedded demo target
    surge run -e BASE_URL=https://<project>.supabase.co -e ANON_KEY=<key> scenarios/ticket_purchase.py

Shorter runs (CI smoke tests) override the stages: -e RAMP_UP=5s -e HOLD=10s -e RAMP_DOWN=5s,
and the peak with -e TARGET_VUS=20. The results JSON goes to RESULTS_DIR
(default scenarios/results).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from scenarios.config.thresholds import get_thresholds
from scenarios.helpers.auth import get_base_url, get_headers
from scenarios.helpers.data_generators import generate_ticket_payload
from surge import Rate, Trend, check, env, text_summary

# Custom metrics
purchase_errors = Rate("purchase_errors")
checkout_duration = Trend("checkout_duration", is_time=True)

BASE_URL = get_base_url()
HEADERS = get_headers()
CHECKOUT_URL = f"{BASE_URL}/functions/v1/create-checkout-session"
TARGET_VUS = int(env.get("TARGET_VUS", "100"))

options = {
    "scenarios": {
        "purchase": {
            "executor": "ramping-vus",
            "startVUs": 0,
            "stages": [
                {"duration": env.get("RAMP_UP", "30s"), "target": TARGET_VUS},  # ramp up to 100 VUs
                {"duration": env.get("HOLD", "2m"), "target": TARGET_VUS},  # hold at 100 for 2 minutes
                {"duration": env.get("RAMP_DOWN", "30s"), "target": 0},  # ramp down
            ],
            "gracefulRampDown": "10s",
        },
    },
    "thresholds": {
        **get_thresholds("purchase"),
        "checkout_duration": ["p(95)<500"],  # custom metric threshold
        "purchase_errors": ["rate<0.01"],
    },
    "summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"],
}

_failures_logged = 0


def _has_checkout_url(r: Any) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "checkout.stripe.com" in str(body.get("url") or "")


async def default(vu: Any) -> None:
    global _failures_logged
    payload = generate_ticket_payload(vu.id, vu.iteration)

    response = await vu.http.post(CHECKOUT_URL, json=payload, headers=HEADERS, timeout="30s")

    duration = response.timings.duration
    checkout_duration.add(duration)

    success = check(
        response,
        {
            "status is 200": lambda r: r.status == 200,
            "has checkout URL": _has_checkout_url,
            "response under 500ms": lambda r: duration < 500,
            "response under 1s": lambda r: duration < 1000,
        },
    )
    purchase_errors.add(not success)

    if not success and response.status != 200 and _failures_logged < 20:
        _failures_logged += 1
        detail = response.error or response.text[:200]
        print(f"[VU {vu.id}] Failed: {response.status} - {detail}", file=sys.stderr)

    # Realistic delay between purchases
    await vu.sleep(random.random() * 2 + 0.5)


def handle_summary(data: dict[str, Any]) -> dict[str, str]:
    metrics = data["metrics"]

    def value(metric: str, stat: str) -> float:
        return float(metrics.get(metric, {}).get("values", {}).get(stat, 0) or 0)

    threshold_results = "\n".join(
        f"  {'PASS' if result['ok'] else 'FAIL'} {name}: {expr}"
        for name, metric in metrics.items()
        for expr, result in metric.get("thresholds", {}).items()
    )
    summary = f"""
================================================================================
                    TICKET PURCHASE LOAD TEST RESULTS
================================================================================

Configuration:
  Target VUs:     {TARGET_VUS} concurrent users
  Stages:         {' + '.join(s['duration'] for s in options['scenarios']['purchase']['stages'])} (ramp up, hold, ramp down)
  Endpoint:       POST /functions/v1/create-checkout-session

Results:
  Total Requests: {value('http_reqs', 'count'):.0f}
  Failed:         {value('http_req_failed', 'passes'):.0f}
  Error Rate:     {value('purchase_errors', 'rate') * 100:.2f}%

Response Times:
  Average:        {value('checkout_duration', 'avg'):.0f}ms
  P95:            {value('checkout_duration', 'p(95)'):.0f}ms
  P99:            {value('checkout_duration', 'p(99)'):.0f}ms
  Max:            {value('checkout_duration', 'max'):.0f}ms

Thresholds:
{threshold_results}

================================================================================
"""
    results_dir = Path(env.get("RESULTS_DIR", "scenarios/results"))
    return {
        "stdout": text_summary(data) + "\n" + summary,
        str(results_dir / "ticket-purchase-results.json"): json.dumps(data, indent=2),
    }

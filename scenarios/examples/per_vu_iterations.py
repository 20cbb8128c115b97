"""per-vu-iterations: each of VUS VUs runs ITERATIONS iterations (default 5 x 10 = 50 requests).

    surge run --demo-target scenarios/examples/per_vu_iterations.py
    surge run -w 3 -e BASE_URL=... -e ANON_KEY=... -e VUS=10 -e ITERATIONS=100 scenarios/examples/per_vu_iterations.py
"""

from __future__ import annotations

from typing import Any

from scenarios.examples._common import purchase
from surge import env

options = {
    "scenarios": {
        "per_vu": {
            "executor": "per-vu-iterations",
            "vus": int(env.get("VUS", "5")),
            "iterations": int(env.get("ITERATIONS", "10")),
            "maxDuration": env.get("MAX_DURATION", "1m"),
        },
    },
}


async def default(vu: Any) -> None:
    await purchase(vu)

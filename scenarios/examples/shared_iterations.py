"""shared-iterations: ITERATIONS iterations in all, shared by VUS VUs (default 47 over 4 VUs).

Exactly ITERATIONS requests reach the target however many workers run (-w N): each worker
runs the iteration numbers the plan gives it.

    surge run --demo-target scenarios/examples/shared_iterations.py
"""

from __future__ import annotations

from typing import Any

from scenarios.examples._common import purchase
from surge import env

options = {
    "scenarios": {
        "shared": {
            "executor": "shared-iterations",
            "vus": int(env.get("VUS", "4")),
            "iterations": int(env.get("ITERATIONS", "47")),
            "maxDuration": env.get("MAX_DURATION", "1m"),
        },
    },
}


async def default(vu: Any) -> None:
    await purchase(vu)

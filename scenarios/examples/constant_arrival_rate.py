"""constant-arrival-rate: RATE iterations per second for DURATION, whatever the server's speed.

Iterations start on schedule (the open model); when every VU is busy a new one is started,
up to maxVUs, and past that the iteration is counted in dropped_iterations.
iteration_duration_from_schedule measures each from its planned start (coordinated omission).

    surge run --demo-target scenarios/examples/constant_arrival_rate.py
"""

from __future__ import annotations

from typing import Any

from scenarios.examples._common import purchase
from surge import env

options = {
    "scenarios": {
        "steady": {
            "executor": "constant-arrival-rate",
            "rate": int(env.get("RATE", "20")),
            "timeUnit": "1s",
            "duration": env.get("DURATION", "5s"),
            "preAllocatedVUs": int(env.get("PRE_VUS", "5")),
            "maxVUs": int(env.get("MAX_VUS", "20")),
        },
    },
}


async def default(vu: Any) -> None:
    await purchase(vu)

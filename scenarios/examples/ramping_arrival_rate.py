"""ramping-arrival-rate: from 0 to PEAK iterations per second over RAMP, hold for HOLD, then to 0.

    surge run --demo-target scenarios/examples/ramping_arrival_rate.py
"""

from __future__ import annotations

from typing import Any

from scenarios.examples._common import purchase
from surge import env

PEAK = int(env.get("PEAK", "30"))

options = {
    "scenarios": {
        "ramp": {
            "executor": "ramping-arrival-rate",
            "startRate": 0,
            "timeUnit": "1s",
            "stages": [
                {"duration": env.get("RAMP", "2s"), "target": PEAK},
                {"duration": env.get("HOLD", "2s"), "target": PEAK},
                {"duration": env.get("RAMP", "2s"), "target": 0},
            ],
            "preAllocatedVUs": int(env.get("PRE_VUS", "5")),
            "maxVUs": int(env.get("MAX_VUS", "30")),
        },
    },
}


async def default(vu: Any) -> None:
    await purchase(vu)

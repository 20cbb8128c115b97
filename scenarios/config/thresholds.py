"""Threshold profiles: what "fast enough" and "reliable enough" mean for each kind of flow.

``get_thresholds(scenario)`` returns k6-style thresholds scoped to one scenario through
sub-metrics (``http_req_duration{scenario:purchase}``), so several scenarios in one file can
each be held to their own profile. The profile is chosen by the scenario's name, or given.
"""

from __future__ import annotations

PROFILES: dict[str, dict[str, list[str]]] = {
    # Payment flows: the launch criteria (p95 < 500 ms, < 1 % errors) and a p99 ceiling.
    "purchase": {
        "http_req_duration": ["p(95)<500", "p(99)<1500"],
        "http_req_failed": ["rate<0.01"],
        "checks": ["rate>0.99"],
    },
    # Read-only browsing: faster, and a little more tolerant of errors.
    "browse": {
        "http_req_duration": ["p(95)<300", "p(99)<1000"],
        "http_req_failed": ["rate<0.02"],
    },
}


def get_thresholds(scenario: str, profile: str | None = None) -> dict[str, list[str]]:
    """Thresholds for ``scenario`` from ``profile`` (default: the profile named like the scenario)."""
    name = profile or scenario
    if name not in PROFILES:
        raise KeyError(f"no threshold profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    return {f"{metric}{{scenario:{scenario}}}": list(exprs) for metric, exprs in PROFILES[name].items()}

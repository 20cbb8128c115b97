"""The embedded demo target: a local stand-in for a Supabase Edge Function that starts a checkout.

``surge target`` serves it, and integration tests start it on a free port to compare the
requests surge says it sent with the requests the target counted.
"""

from surge.target.app import (
    CHECKOUT_PATH,
    DEMO_ANON_KEY,
    RunningTarget,
    TargetConfig,
    TargetStats,
    make_app,
    run_target,
    start_target,
)

__all__ = [
    "CHECKOUT_PATH",
    "DEMO_ANON_KEY",
    "RunningTarget",
    "TargetConfig",
    "TargetStats",
    "make_app",
    "run_target",
    "start_target",
]

"""Where the system under test lives and how to authenticate to it.

The target is one environment variable away: ``BASE_URL`` (e.g. the Supabase project URL)
and ``ANON_KEY`` (sent both as the bearer token and as ``apikey``, as Supabase Edge Functions
expect). ``surge run --demo-target`` sets both for the embedded demo target; ``-e KEY=VALUE``
or the process environment set them for a real deployment.

Both are read when the scenario loads, so a missing value stops the run before any request
with a message that says what to set.
"""

from __future__ import annotations

from surge import env


class MissingSetting(RuntimeError):
    pass


def _required(name: str, example: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise MissingSetting(
            f"{name} is not set: run with --demo-target for the embedded demo target, "
            f"or point the test at a deployment with -e {name}={example}"
        )
    return value


def get_base_url() -> str:
    """The deployment's base URL, without a trailing slash."""
    return _required("BASE_URL", "https://<project>.supabase.co").rstrip("/")


def get_headers() -> dict[str, str]:
    """JSON content type plus the anon key as bearer token and apikey."""
    key = _required("ANON_KEY", "<anon key>")
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key}",
        "apikey": key,
    }

"""k6's duration strings: ``"30s"``, ``"2m"``, ``"1h30m"``, ``"1.5s"``, ``"500ms"``, ``"250us"``.

A bare number is refused: k6 reads one as milliseconds in JSON configs while a Python
reader would expect seconds, so surge asks for the unit rather than guess (only ``"0"`` is
accepted bare).
"""

from __future__ import annotations

import re

_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")


def parse_duration(text: object) -> float:
    """Return the duration in seconds, or raise ``ValueError`` saying what was expected."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"expected a duration string such as '30s' or '2m', got {text!r}")
    s = text.strip()
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos == 0 or pos != len(s):
        raise ValueError(f"expected a duration string such as '30s', '2m' or '1m30s', got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """The short human form k6 prints: ``2m30s``, ``10s``, ``1.5s``, ``250ms``."""
    if seconds < 1 and seconds > 0:
        return f"{seconds * 1000:g}ms"
    whole = int(seconds)
    frac = seconds - whole
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    out = ""
    if h:
        out += f"{h}h"
    if m or (h and (s or frac)):
        out += f"{m}m"
    if s or frac or not out:
        out += f"{s + frac:g}s"
    return out

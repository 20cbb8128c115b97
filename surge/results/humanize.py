"""Numbers as k6's end-of-test summary prints them: JavaScript's formatting, reproduced.

k6 renders its summary in JavaScript (``internal/js/summary.js``), so its numbers come out
through ``Number.prototype.toString`` and ``toFixed``, with k6's own rounding on top. These
functions give the same characters for the same number, quirks included, because CI logs and
people's eyes are used to them:

- durations (ms in): ``0s``; below 1 µs ``Nns``; below 1 ms ``N.NNµs``; below 1 s ``N.NNms``;
  below 1 min ``N.NNs``; then ``NmNs`` and ``NhNmNs`` (whole seconds). Decimals are
  *truncated* to 2 and trailing zeros dropped (``45.129`` -> ``45.12ms``). With
  ``summaryTimeUnit`` ``s``/``ms``/``us`` every duration uses that unit, 2 decimals, rounded.
- data: decimal units ``B kB MB GB TB PB``, one decimal below 10 (``1.2 MB``, ``40 kB``).
- rates: percent truncated to 2 decimals (``98.50%``).
- other numbers: up to 6 decimals, trailing zeros dropped (``66.666667``).

Pure: no I/O.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal

__all__ = ["TIME_UNITS", "humanize_bytes", "humanize_duration", "humanize_value", "js_str", "share"]

_DECIMAL_CTX = Context(prec=80)


def js_str(x: float) -> str:
    """``Number.prototype.toString``: shortest round-trip digits, exponent only outside 1e-7..1e21."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(float(x))
    if "e" not in text:
        return text
    mantissa, exp_text = text.split("e")
    exp = int(exp_text)
    if -7 < exp < 21:
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if exp > 0 else '-'}{abs(exp)}"


def _to_fixed(x: float, digits: int) -> str:
    """``Number.prototype.toFixed``: exact binary value, ties away from zero."""
    if not math.isfinite(x) or abs(x) >= 1e21:
        return js_str(x)
    if x == 0:
        x = 0.0  # -0 prints as 0
    quantum = Decimal(1).scaleb(-digits)
    return format(Decimal(x).quantize(quantum, rounding=ROUND_HALF_UP, context=_DECIMAL_CTX), "f")


def _fixed_no_trailing_zeros(x: float, digits: int) -> str:
    """k6's ``toFixedNoTrailingZeros``: ``parseFloat(x.toFixed(digits)).toString()``."""
    return js_str(float(_to_fixed(x, digits)))


def _trunc_no_trailing_zeros(x: float, digits: int) -> str:
    mult = 10.0**digits
    return _fixed_no_trailing_zeros(math.trunc(mult * x) / mult, digits)


TIME_UNITS: dict[str, tuple[str, float]] = {"s": ("s", 0.001), "ms": ("ms", 1.0), "us": ("µs", 1000.0)}


def humanize_duration(ms: float, time_unit: str = "") -> str:
    """A duration given in milliseconds, as k6 prints it: ``45.12ms``, ``1.2s``, ``1m3s``.

    ``time_unit`` (k6's ``summaryTimeUnit``: ``s``, ``ms`` or ``us``) fixes the unit; an
    empty or unknown one picks the unit by size.
    """
    if time_unit in TIME_UNITS:
        unit, coef = TIME_UNITS[time_unit]
        return _to_fixed(ms * coef, 2) + unit
    if not math.isfinite(ms):
        return js_str(ms)
    if ms == 0:
        return "0s"
    if ms < 0.001:
        return f"{math.trunc(ms * 1_000_000)}ns"
    if ms < 1:
        return _trunc_no_trailing_zeros(ms * 1000, 2) + "µs"
    if ms < 1000:
        return _trunc_no_trailing_zeros(ms, 2) + "ms"
    result = _trunc_no_trailing_zeros(math.fmod(ms, 60000) / 1000, 0 if ms > 60000 else 2) + "s"
    minutes = math.trunc(ms / 60000)
    if minutes < 1:
        return result
    result = f"{minutes % 60}m{result}"
    hours = math.trunc(minutes / 60)
    if hours < 1:
        return result
    return f"{hours}h{result}"


_DATA_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def humanize_bytes(n: float) -> str:
    """A byte count in decimal units, as k6 prints it: ``512 B``, ``1.2 MB``, ``40 kB``."""
    if not math.isfinite(n):
        return js_str(n) + " B"
    if n < 10:
        return js_str(n) + " B"
    e = math.floor(math.log(n) / math.log(1000))
    suffix = _DATA_UNITS[min(e, len(_DATA_UNITS) - 1)]
    val = math.floor(n / 1000.0**e * 10 + 0.5) / 10
    return _to_fixed(val, 1 if val < 10 else 0) + " " + suffix


def humanize_value(value: float, metric_type: str, contains: str, time_unit: str = "") -> str:
    """One value of a metric, formatted by its type and what it contains (k6's ``humanizeValue``)."""
    if metric_type == "rate":
        # Truncated, not rounded: 99.999 % must not print as 100.00 %.
        return _to_fixed(math.trunc(value * 100 * 100) / 100, 2) + "%"
    if contains == "data":
        return humanize_bytes(value)
    if contains == "time":
        return humanize_duration(value, time_unit)
    return _fixed_no_trailing_zeros(value, 6)


def share(value: float) -> str:
    """A share of one as a percentage with up to 2 decimals: 0.0047 -> ``0.47%``, 1.25 -> ``125%``."""
    return _fixed_no_trailing_zeros(value * 100, 2) + "%"

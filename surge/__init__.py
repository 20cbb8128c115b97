"""surge: distributed load testing with k6's test model and Python scenarios.

A scenario file imports what it needs from here::

    from surge import check, group, env, abort_test, url, Counter, Gauge, Rate, Trend, text_summary

and reads data files at init with ``surge.open("users.csv")`` (k6's ``open()``). ``open`` is
not in ``__all__`` so that ``from surge import *`` never hides the builtin ``open``.
"""

from surge.common.api import Counter, Gauge, Rate, Trend, abort_test, check, env, group, url
from surge.common.api import open as open

__all__ = ["Counter", "Gauge", "Rate", "Trend", "abort_test", "check", "env", "group", "text_summary", "url"]
__version__ = "0.1.0"


def text_summary(data: dict, indent: str = "", enable_colors: bool = False, *,  # type: ignore[type-arg]
                 summary_mode: str = "compact") -> str:
    """k6's ``textSummary``: the end-of-test text for ``handle_summary``'s ``data``, in k6 v1's layout.

    ``indent`` is put before every line (k6 1.x's own ignores it); ``summary_mode`` is
    ``"compact"`` (the default, whatever ``--summary-mode`` the run had) or ``"full"``, which
    adds a section per group and per scenario (see surge/results/summary_text.py).
    """
    from surge.results.summary_text import text_summary as _text_summary

    return _text_summary(data, indent=indent, enable_colors=enable_colors, summary_mode=summary_mode)  # type: ignore[arg-type]

"""The HTML page of a run: one self-contained file that opens offline.

:func:`render_html` turns a report document (:mod:`surge.results.report_data`) into the page:
uPlot (vendored from the npm registry under ``assets/``, see ``assets/README.md``), its CSS,
surge's own CSS and ``assets/report.js`` are inlined, and the document rides along as JSON in
a ``<script type="application/json">`` element that ``report.js`` parses. Nothing is loaded
from anywhere: the file opens from a mail attachment on a plane.

The live dashboard (:mod:`surge.results.dashboard`) serves the same page with ``events_url``
set: ``report.js`` then subscribes to that Server-Sent Events stream and redraws from each
document it receives.

**Embedding JSON safely.** Inside ``<script>`` the HTML parser ends the element at the first
``</script`` whatever the JSON says, and ``<!--`` changes how it scans, so a scenario name,
tag value or check name such as ``</script><script>alert(1)</script>`` must not appear
verbatim. :func:`script_json` escapes ``<``, ``>`` and ``&`` as ``\\u003c``-style JSON escapes
(JSON.parse reads them back as the same characters) and U+2028/U+2029, which old JavaScript
parsers took for line ends. Pure: reads its assets, nothing else.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)


def _finite_only(obj: Any) -> Any:
    """``obj`` with every NaN or infinity as None: JSON has no such numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite_only(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_only(v) for v in obj]
    return obj


def document_json(doc: Mapping[str, Any]) -> str:
    """The document as compact JSON (non-finite numbers as null)."""
    return json.dumps(_finite_only(doc), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def script_json(doc: Mapping[str, Any]) -> str:
    """JSON safe to place inside a ``<script>`` element (see the module docstring)."""
    return document_json(doc).translate(_ESCAPE_TABLE)


@cache
def asset(name: str) -> str:
    """One of the files under ``surge/results/assets/`` (installed with the package)."""
    return resources.files("surge.results").joinpath("assets", name).read_text(encoding="utf-8")


def _inline_script(code: str) -> str:
    # The vendored and own scripts hold no "</script"; make sure they never will unnoticed.
    if "</script" in code.lower():
        raise ValueError("an inlined script contains '</script'")
    return code


def render_html(doc: Mapping[str, Any], *, events_url: str | None = None, document: str | None = None) -> str:
    """The whole page for ``doc``; ``events_url``: the live dashboard's SSE stream.

    ``document``: the document's :func:`script_json` if the caller has it already (the
    dashboard builds it once per snapshot).
    """
    title = str(doc.get("title") or "surge report")
    data = document if document is not None else script_json(doc)
    live = "" if events_url is None else f' data-events="{html.escape(events_url, quote=True)}"'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # no favicon request: the page asks nothing of any server
        '<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{asset('uPlot.min.css')}\n</style>\n"
        f"<style>\n{asset('report.css')}\n</style>\n"
        "</head>\n"
        f"<body{live}>\n"
        '<div id="app"><noscript>This report draws its charts with JavaScript.</noscript></div>\n'
        f'<script type="application/json" id="surge-data">{data}</script>\n'
        f"<script>\n{_inline_script(asset('uPlot.iife.min.js'))}\n</script>\n"
        f"<script>\n{_inline_script(asset('report.js'))}\n</script>\n"
        "</body>\n</html>\n"
    )

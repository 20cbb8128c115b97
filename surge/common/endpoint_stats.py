"""The per-endpoint table's series: what a row is, how its series are keyed, and the cap on rows.

Locust users read one table first: per request name, its requests, failures, latency
percentiles and bytes. surge builds it from the fleet's merged data like everything else: each
worker's recorder keeps a few sinks per *row* and ships them in its reports, and the
coordinator merges them (:mod:`surge.results.endpoints`). A row is one request name under one
method, group and scenario (:class:`EndpointRow`); the name is k6's ``name`` tag: the URL by
default, the ``name`` given in a request's ``tags``, or the template of a URL built with
:func:`surge.url` (``vu.http.url``), k6's ``http.url``.

Series of a row, all surge-internal (left out of the summary's ``metrics``, and out of the
timeline: a row's story over time is not charted)::

    surge_endpoint_duration{name:...,method:GET,scenario:browse,group:::shop}   trend (its count: requests)
    surge_endpoint_failures{<row>,status:503,error_code:1503}                   counter, per kind of failure
    surge_endpoint_data_sent{<row>} / surge_endpoint_data_received{<row>}      counters, bytes
    surge_endpoint_overflow_names{name:...}                                     counter: names folded away

**Bounded cardinality.** A scenario that requests ``/items/<id>`` for 100,000 ids must not
make 100,000 rows, on the worker (memory, the wire) or on the coordinator. Both keep at most
``maxEndpoints`` rows (:data:`DEFAULT_MAX_ENDPOINTS`; ``options.maxEndpoints`` or
``--max-endpoints`` change it), first come first kept; every request beyond goes to one
overflow row, named :data:`OVERFLOW_NAME` with no method, group or scenario. Workers may
admit different first rows, so the coordinator caps the merged set again, folding what comes
late into the same overflow row; so does a machine's relay (``--processes N``) for its
processes (:class:`KeyCap`). A few overflowed names (:data:`MAX_OVERFLOW_EXAMPLES` per
worker) travel as ``surge_endpoint_overflow_names`` so that the coordinator can say, once,
which URLs overflowed and what template would name them (:func:`suggest_name`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from surge.common.metrics import SeriesName, parse_series_name

DEFAULT_MAX_ENDPOINTS = 100  # rows: a readable table, and ~100 small sketches per report interval
MAX_ENDPOINTS_LIMIT = 10_000  # what maxEndpoints may be set to at most
OVERFLOW_NAME = "__overflow__"
MAX_OVERFLOW_EXAMPLES = 5  # overflowed names each worker reports (once each)

DURATION = "surge_endpoint_duration"
FAILURES = "surge_endpoint_failures"
DATA_SENT = "surge_endpoint_data_sent"
DATA_RECEIVED = "surge_endpoint_data_received"
OVERFLOW_NAMES = "surge_endpoint_overflow_names"
ENDPOINT_METRICS = frozenset({DURATION, FAILURES, DATA_SENT, DATA_RECEIVED, OVERFLOW_NAMES})
# Every endpoint series key starts so; a cheap test on the coordinator's hot path.
KEY_PREFIX = "surge_endpoint_"

_ROW_TAGS = ("name", "method", "scenario", "group")


def bounded_max_endpoints(n: int) -> int:
    """``n`` within 1..:data:`MAX_ENDPOINTS_LIMIT`: the coordinator checked ``maxEndpoints``, and a
    ``Run`` that says otherwise still cannot make a worker's table unbounded (or refuse every row)."""
    return min(max(n, 1), MAX_ENDPOINTS_LIMIT)


@dataclass(frozen=True)
class EndpointRow:
    """One row of the table: a request name under one method, group (``::a::b``) and scenario."""

    name: str
    method: str = ""
    scenario: str = ""
    group: str = ""

    @property
    def is_overflow(self) -> bool:
        return self.name == OVERFLOW_NAME and not (self.method or self.scenario or self.group)

    def key(self, metric: str, *extra: tuple[str, str]) -> str:
        """The series key of ``metric`` for this row (``extra`` tags after the row's)."""
        return str(SeriesName(metric, (("name", self.name), ("method", self.method),
                                       ("scenario", self.scenario), ("group", self.group), *extra)))


OVERFLOW = EndpointRow(OVERFLOW_NAME)


def failure_tags(status: int | str, error_code: int | str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The extra tags of a row's ``surge_endpoint_failures`` series for one kind of failure."""
    return ("status", str(status)), ("error_code", str(error_code))


@dataclass(frozen=True)
class EndpointKey:
    """A parsed endpoint series key: its metric, its row and, for failures, the kind."""

    metric: str
    row: EndpointRow
    status: str = ""
    error_code: str = ""


def parse_endpoint_key(key: str) -> EndpointKey | None:
    """The metric, row and failure kind of an endpoint series key; None if ``key`` is not one.

    Keys come from workers, so anything malformed is None, never an exception.
    """
    if not key.startswith(KEY_PREFIX):
        return None
    try:
        sn = parse_series_name(key)
    except ValueError:
        return None
    if sn.metric not in ENDPOINT_METRICS:
        return None
    tags = dict(sn.tags)
    if sn.metric == OVERFLOW_NAMES:
        return EndpointKey(sn.metric, EndpointRow(tags.get("name", "")))
    if "name" not in tags:
        return None
    row = EndpointRow(*(tags.get(t, "") for t in _ROW_TAGS))
    if sn.metric == FAILURES:
        return EndpointKey(sn.metric, row, tags.get("status", ""), tags.get("error_code", ""))
    return EndpointKey(sn.metric, row)


class RowCap:
    """First come, first kept: at most ``max_rows`` rows, every later one is :data:`OVERFLOW`.

    Holds the admitted rows (at most ``max_rows``) and up to ``max_examples`` names it folded
    away, so its memory is bounded whatever it is fed.
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ENDPOINTS, max_examples: int = MAX_OVERFLOW_EXAMPLES) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.max_rows = max_rows
        self._admitted: set[EndpointRow] = set()
        self._max_examples = max_examples
        self.examples: list[str] = []  # names folded into the overflow row, the first few
        self.new_examples: list[str] = []  # of those, the ones not yet handed on (the worker ships them)

    @property
    def settled(self) -> bool:
        """Full, with every example it keeps: from now on every new row is :data:`OVERFLOW` and nothing changes."""
        return len(self._admitted) >= self.max_rows and len(self.examples) >= self._max_examples

    def admit(self, row: EndpointRow) -> EndpointRow:
        """``row`` itself if it has (or gets) a place, else :data:`OVERFLOW`."""
        if row in self._admitted or row.is_overflow:
            return row
        if len(self._admitted) < self.max_rows:
            self._admitted.add(row)
            return row
        if len(self.examples) < self._max_examples and row.name not in self.examples:
            self.examples.append(row.name)
            self.new_examples.append(row.name)
        return OVERFLOW

    def note_example(self, name: str) -> None:
        """A name another process folded away, for the hint (kept if there is room)."""
        if len(self.examples) < self._max_examples and name not in self.examples:
            self.examples.append(name)


class KeyCap:
    """The cap applied to series keys: a key of an admitted row as it is, any other row's as the overflow row's.

    For a relay that merges reports it forwards (``surge worker --processes N``): each process
    caps its own rows, but N processes may have kept N different sets. Parsed keys are
    remembered (a bounded memo: reports carry the same keys every interval).
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ENDPOINTS) -> None:
        self._cap = RowCap(max_rows, max_examples=0)
        self._memo: dict[str, str] = {}
        self._memo_max = 16 * (max_rows + 1) + 64

    def __call__(self, key: str) -> str:
        known = self._memo.get(key)
        if known is not None:
            return known
        out = key
        parsed = parse_endpoint_key(key)
        if parsed is not None and parsed.metric != OVERFLOW_NAMES:
            row = self._cap.admit(parsed.row)
            if row is not parsed.row:
                extra = failure_tags(parsed.status, parsed.error_code) if parsed.metric == FAILURES else ()
                out = row.key(parsed.metric, *extra)
        if len(self._memo) < self._memo_max:
            self._memo[key] = out
        return out


_NUMBERISH = re.compile(r"^(?=.*\d)[0-9A-Za-z_.~%-]+$")  # a path segment that holds a digit: an id
_HEXISH = re.compile(r"^[0-9a-fA-F-]{16,}$")  # a hash or a UUID without digits is rare; one with is caught above


def suggest_name(url: str) -> str:
    """A k6-style template for ``url``: each id-like path segment and each query value as ``${}``.

    ``http://h/items/18342?ref=ab12`` -> ``http://h/items/${}?ref=${}``: what ``surge.url``
    (or a ``name`` tag) would name every request of that shape. Only a suggestion for the
    overflow hint: it cannot know which segments the scenario varies.
    """
    base, q, query = url.partition("?")
    scheme, sep, rest = base.partition("://")
    if not sep:
        scheme, rest = "", base
    host, slash, path = rest.partition("/")
    parts = ["${}" if _NUMBERISH.match(p) or _HEXISH.match(p) else p for p in path.split("/")] if slash else []
    out = (scheme + sep if sep else "") + host + (slash + "/".join(parts) if slash else "")
    if q:
        pairs = [p.partition("=") for p in query.split("&")]
        out += "?" + "&".join(k + ("=${}" if eq else "") for k, eq, _ in pairs)
    return out

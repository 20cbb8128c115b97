"""What a scenario file imports from ``surge``: custom metrics, ``check``, ``group`` and ``env``.

Custom metrics are declared at module level (``Trend("checkout_duration", is_time=True)``)
and so exist in every process that loads the scenario. Declaring one registers its name and
type (the coordinator validates thresholds against that registry before any load); adding a
value hands it to the *recorder* that the worker installed with :func:`install_recorder`.
In a process that only plans or judges (the coordinator) there is no recorder and ``add`` does
nothing, which is what lets one scenario file serve both sides.

The recorder is the one seam: anything with ``add(metric, value, tags)`` and
``add_check(name, ok, tags)`` will do, which is how tests observe what a scenario records.

A bad value is stopped here, where it is added, because only here is the culprit known: a
NaN that reached a t-digest would poison a whole interval's sketch (and a worker's report),
an ``inf`` would be refused by the coordinator's codec, and a string would fail far from the
line that produced it. So ``add`` takes any real number (``bool`` is 1 or 0, as in k6) that is
finite as a float, and drops anything else: the drop is counted in the built-in counter
``surge_dropped_samples`` (visible in the summary, usable in thresholds) and told on stderr
once per metric and call site (``file:line`` of the ``.add(...)``), never raised into the
scenario, whose iteration goes on.
"""

from __future__ import annotations

import math
import numbers
import os
import reprlib
import string
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any, Literal, Protocol, overload

from surge.common.metrics import BUILTIN_METRICS, METRIC_NAME_RE, MetricDef, MetricType, ValueType


class AbortTest(Exception):
    """Raised by :func:`abort_test`: ends the whole run, on every worker (exit 108)."""


def abort_test(reason: str = "") -> None:
    """k6's ``exec.test.abort()``: stop the whole test now; the summary is still produced."""
    raise AbortTest(reason or "the scenario called abort_test()")


class Recorder(Protocol):
    def add(self, metric: str, value: float, tags: Mapping[str, str] | None) -> None: ...

    def add_check(self, name: str, ok: bool, tags: Mapping[str, str] | None) -> None: ...


_recorder: Recorder | None = None
_registry: dict[str, MetricDef] = {}


def install_recorder(recorder: Recorder | None) -> None:
    """Route metric adds and checks in this process to ``recorder`` (``None`` turns them off).

    Installing a recorder starts a run, so the bad-value log starts afresh: each run tells
    its own call sites once.
    """
    global _recorder
    _recorder = recorder
    if recorder is not None:
        _dropped_sites.clear()


def installed_recorder() -> Recorder | None:
    """The recorder adds go to now (None outside a run)."""
    return _recorder


DROPPED_SAMPLES = "surge_dropped_samples"
_MAX_DROPPED_SITES = 1000  # beyond this many (metric, line) pairs, drops are only counted
_dropped_sites: set[tuple[str, str, int]] = set()


def _as_sample(value: object) -> float | None:
    """``value`` as a finite float, or None if it is not a real number finite as a float."""
    if type(value) is float:  # the common case, first
        return value if math.isfinite(value) else None
    if not isinstance(value, numbers.Real):  # str, None, complex, Decimal, lists...
        return None
    try:
        f = float(value)
    except (OverflowError, ValueError, TypeError):  # 10**400; a Real whose __float__ misbehaves
        return None
    return f if math.isfinite(f) else None


def _drop(recorder: Recorder, metric: str, value: object) -> None:
    """Count a refused value and say where it came from, once per metric and call site."""
    recorder.add(DROPPED_SAMPLES, 1.0, None)
    frame = sys._getframe(2)  # _drop <- _Metric.add <- the scenario's line
    site = (metric, frame.f_code.co_filename, frame.f_lineno)
    if site in _dropped_sites or len(_dropped_sites) >= _MAX_DROPPED_SITES:
        return
    _dropped_sites.add(site)
    try:
        shown = reprlib.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr raises is still only a bad value
        shown = f"<{type(value).__name__}>"
    print(
        f"surge: {os.path.basename(site[1])}:{site[2]}: dropped {shown} added to metric {metric!r}: "
        f"not a finite number (counted in {DROPPED_SAMPLES}; further drops here are only counted)",
        file=sys.stderr,
    )


def declared_metrics() -> dict[str, MetricDef]:
    """Custom metrics declared so far in this process, by name."""
    return dict(_registry)


def reset_declared_metrics() -> None:
    """Forget custom metrics (a long-lived worker does this before loading the next scenario)."""
    _registry.clear()


class _Metric:
    type: MetricType = MetricType.COUNTER
    __slots__ = ("name", "contains")

    def __init__(self, name: str, contains: ValueType = ValueType.DEFAULT) -> None:
        if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
            raise ValueError(
                f"metric name {name!r} is invalid: use 1-128 letters, digits or '_', not starting with a digit"
            )
        if name in BUILTIN_METRICS:
            raise ValueError(f"metric name {name!r} is a built-in metric; choose another name")
        known = _registry.get(name)
        if known is not None and known.type is not self.type:
            raise ValueError(f"metric {name!r} was already declared as a {known.type.value}")
        self.name = name
        self.contains = contains
        _registry[name] = MetricDef(name, self.type, contains)

    def add(self, value: float | bool, tags: Mapping[str, str] | None = None) -> None:
        """Record one value; a non-finite or non-numeric one is dropped and counted, never raised."""
        recorder = _recorder
        if recorder is None:
            return
        sample = _as_sample(value)
        if sample is None:
            _drop(recorder, self.name, value)
            return
        recorder.add(self.name, sample, tags)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Counter(_Metric):
    """Adds up values: ``count`` and ``rate`` (per second)."""

    type = MetricType.COUNTER


class Gauge(_Metric):
    """Keeps the last value, and the min and max seen."""

    type = MetricType.GAUGE


class Rate(_Metric):
    """Share of non-zero adds: ``Rate("errors").add(not ok)``."""

    type = MetricType.RATE


class Trend(_Metric):
    """Distribution of values: avg, min, med, max, p(N). ``is_time=True`` for milliseconds."""

    type = MetricType.TREND
    __slots__ = ()

    def __init__(self, name: str, is_time: bool = False) -> None:
        super().__init__(name, ValueType.TIME if is_time else ValueType.DEFAULT)


_check_errors_reported = 0


def check(value: Any, checks: Mapping[str, Callable[[Any], object]], tags: Mapping[str, str] | None = None) -> bool:
    """Run each named predicate on ``value``, record it in ``checks``, return whether all passed.

    As in k6, a failed check does not stop the iteration. A predicate that raises counts as a
    failed check (the first few such errors are printed to stderr), so a body that is not JSON
    fails ``has checkout URL`` rather than ending the iteration with nothing recorded.
    """
    global _check_errors_reported
    all_ok = True
    for name, predicate in checks.items():
        try:
            ok = bool(predicate(value))
        except Exception as exc:  # noqa: BLE001 - any error in a predicate is a failed check
            ok = False
            if _check_errors_reported < 10:
                _check_errors_reported += 1
                print(f"surge: check {name!r} raised {type(exc).__name__}: {exc}", file=sys.stderr)
        if _recorder is not None:
            _recorder.add_check(name, ok, tags)
        all_ok = all_ok and ok
    return all_ok


class _Env(Mapping[str, str]):
    """k6's ``__ENV``: the process environment overlaid with ``-e KEY=VALUE`` from the command line."""

    def __init__(self) -> None:
        self._overrides: dict[str, str] = {}

    def set_overrides(self, overrides: Mapping[str, str]) -> None:
        self._overrides = dict(overrides)

    def overrides(self) -> dict[str, str]:
        return dict(self._overrides)

    def _merged(self) -> dict[str, str]:
        return {**os.environ, **self._overrides}

    def __getitem__(self, key: str) -> str:
        if key in self._overrides:
            return self._overrides[key]
        return os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())


env = _Env()


@overload
def open(path: str | os.PathLike[str], mode: Literal["b", "rb", "br"]) -> bytes: ...  # noqa: A001
@overload
def open(path: str | os.PathLike[str], mode: Literal["r", "t", "rt", "tr"] = "r") -> str: ...  # noqa: A001
@overload
def open(path: str | os.PathLike[str], mode: str) -> str | bytes: ...  # noqa: A001


def open(path: str | os.PathLike[str], mode: str = "r") -> str | bytes:  # noqa: A001 - k6's name
    """k6's ``open()``: the content of ``path``, read at init, relative to the calling module's file.

    ``mode`` ``"b"`` (or ``"rb"``) gives bytes, anything else text decoded as UTF-8. Only at
    init, i.e. at the top level of the scenario or of a module it imports while it loads: the
    coordinator records what was read and ships it in the bundle, and on a worker the very same
    call reads that shipped copy. A file outside the scenario's root is refused, and so is a
    call from ``default``. :mod:`surge.common.scenario` owns all of this; this is the name the
    scenario sees.
    """
    from surge.common.scenario import open_at_init  # scenario imports this module

    caller = sys._getframe(1)
    return open_at_init(path, mode, caller.f_code.co_filename, caller.f_lineno)


# ---------------------------------------------------------------------------- group
#
# k6's ``group(name, fn)``, as a context manager: ``with group("checkout"):`` or
# ``async with group("checkout"):``. Groups nest into k6's path: the root group's path is
# ``""`` and a group's path is its parent's path, ``::`` and its name, so ``pay`` inside
# ``checkout`` is ``::checkout::pay``. The current path lives in a ContextVar, so each VU task
# (an asyncio task runs in its own copy of the context) has its own, however many VUs share
# the loop; tasks a VU starts inside a group inherit it.
#
# What the worker's recorder does with it (surge.worker.recorder): every sample is tagged
# ``group:<path>`` (``""`` at the root, as in k6), so ``http_req_duration{group:::checkout}``
# is a sub-metric like any other; ``group_duration`` gets each group's wall time in ms when
# it ends (normally or by an exception, not when the VU is cancelled or the test aborted, as
# in k6); and checks are counted per group.
#
# Checks travel by name in ``Report.checks``; a check made inside a group is keyed
# ``<group path>\x1f<check name>`` (:func:`check_key`), one inside no group by its bare name,
# so the wire schema and every run without groups are unchanged. U+001F (the ASCII unit
# separator) is refused in group names, and a group path always starts with ``::``, so
# :func:`split_check_key` reads every key back (a root check whose own name starts with
# ``::`` and holds U+001F is the one key it would misread). A key with an empty check name
# and no passes or fails is not a check: it tells the coordinator that a group ran, so that
# a group without checks still appears in the summary's ``root_group``, as in k6.

GROUP_SEPARATOR = "::"
CHECK_KEY_SEPARATOR = "\x1f"

_group_path: ContextVar[str] = ContextVar("surge_group_path", default="")
GROUP_PATH = _group_path
"""The context variable :func:`current_group` reads; ``GROUP_PATH.get()`` is the same, one
Python call fewer, for the worker's recorder, which reads it once per request."""
_clock: Callable[[], float] = time.perf_counter  # seconds; tests replace it


def current_group() -> str:
    """The path of the group the calling VU is in (``""`` outside any group)."""
    return _group_path.get()


def check_key(group_path: str, name: str) -> str:
    """How a check made in ``group_path`` is keyed in the recorder and on the wire."""
    return name if not group_path else group_path + CHECK_KEY_SEPARATOR + name


def split_check_key(key: str) -> tuple[str, str]:
    """(group path, check name) for a key made by :func:`check_key`."""
    if key.startswith(GROUP_SEPARATOR):
        path, sep, name = key.partition(CHECK_KEY_SEPARATOR)
        if sep:
            return path, name
    return "", key


def _group_completed(exc_type: type[BaseException] | None) -> bool:
    """Whether a group that ended with ``exc_type`` ran to its end (its duration counts).

    A script error ends the group but it did run (k6 records it too); a cancelled VU or an
    aborted test did not finish it, and k6 records nothing once the VU's context is done.
    """
    return exc_type is None or (issubclass(exc_type, Exception) and not issubclass(exc_type, AbortTest))


class group:  # noqa: N801 - k6's name, used as ``with group("checkout"):``
    """k6's ``group(name)``: a context manager, sync (``with``) or async (``async with``).

    Raises ``ValueError`` at once for a name containing ``::`` (k6 refuses it too, since
    ``::`` joins a path) or U+001F, and ``TypeError`` for a name that is not a string.
    The same object may be entered more than once, even nested in itself.
    """

    __slots__ = ("name", "_stack")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"group name must be a str, got {type(name).__name__}")
        if GROUP_SEPARATOR in name:
            raise ValueError(
                f"group name {name!r} contains {GROUP_SEPARATOR!r}, which joins group paths; choose another name"
            )
        if CHECK_KEY_SEPARATOR in name:
            raise ValueError(f"group name {name!r} contains the control character U+001F; choose another name")
        self.name = name
        self._stack: list[tuple[Token[str], str, float]] = []

    def __enter__(self) -> str:
        path = _group_path.get() + GROUP_SEPARATOR + self.name
        self._stack.append((_group_path.set(path), path, _clock()))
        return path

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        token, path, t0 = self._stack.pop()
        try:
            # Measured and recorded while the path is still this group's, so the sample's
            # own context says where it was taken.
            recorder = _recorder
            if recorder is not None and _group_completed(exc_type):
                recorder.add("group_duration", (_clock() - t0) * 1000.0, {"group": path})
        finally:
            try:
                _group_path.reset(token)
            except ValueError:  # exited in another context than it was entered in
                _group_path.set(path.rpartition(GROUP_SEPARATOR)[0])

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"group({self.name!r})"


# --------------------------------------------------------------------------- request names
#
# k6 names each request by its ``name`` tag, the URL by default, and the per-endpoint table,
# thresholds (``http_req_duration{name:...}``) and the cardinality cap all go by it. A URL with
# an id in it makes one name per id; k6's ``http.url`` tagged template fixes that, and
# :func:`url` is its Python form (Python 3.11 has no tagged templates): the fields of a
# ``str.format`` template are filled in for the request, and each shows as ``${}`` in the name,
# exactly as k6 names ``http.url`\`http://h/items/${id}\``` (``http://h/items/${}``).


class URL(str):
    """A URL that carries its request name: ``str(u)`` is what is requested, ``u.name`` the ``name`` tag."""

    __slots__ = ("name",)
    name: str

    def __new__(cls, url: str, name: str) -> URL:
        made = super().__new__(cls, url)
        made.name = name
        return made

    def __repr__(self) -> str:
        return f"URL({str.__repr__(self)}, name={self.name!r})"


def url(template: str, *args: object, **kwargs: object) -> URL:
    """k6's ``http.url``: ``url("http://h/items/{}", 42)`` requests ``/items/42``, named ``http://h/items/${}``.

    ``template`` is a ``str.format`` template (``{}``, ``{0}``, ``{id}``, ``{id:05d}``...);
    each replacement field becomes ``${}`` in the name, whatever it holds, as in k6. A request
    given ``tags={"name": ...}`` too is named by the tag (k6's rule: an explicit tag wins).
    Raises ``TypeError`` for a template that is not a str, and what ``str.format`` raises
    (``IndexError``, ``KeyError``, ``ValueError``) for fields the arguments do not fill.
    """
    if not isinstance(template, str):
        raise TypeError(f"url() takes a str.format template, got {type(template).__name__}")
    name = "".join(literal + ("${}" if field is not None else "")
                   for literal, field, _spec, _conv in string.Formatter().parse(template))
    return URL(template.format(*args, **kwargs), name)

"""The wire protocol between coordinator and workers: typed messages, msgpack, one version.

Transport is ZeroMQ (see :mod:`surge.common.wire`): the coordinator binds a ROUTER, each
worker connects a DEALER. Every frame is one msgpack map ``{"v": PROTOCOL_VERSION, "k": kind,
...fields}``. :func:`decode` refuses, with a :class:`ProtocolError` that says why, a frame that
is not msgpack, has another version, an unknown kind, a missing or extra field, or a field of
the wrong type; nothing is ever unpickled. Metric sinks travel as ``[type, fields]`` of plain
numbers (a trend's centroids as one ``bin`` of float64 pairs, see :mod:`surge.common.sketch`)
and are validated by the sink classes themselves.

A run, as the coordinator sees it (W = worker, C = coordinator)::

    W -> C  Hello(name, host, pid, protocol)        on connect, repeated until answered
    C -> W  Welcome(index) | Refuse(reason, retry_s)  retry_s > 0: busy with a run, try again later
    C -> W  Run(run_id, bundle, entry, env, slices, submetrics, report_interval_s, report_delay_s)
    W -> C  Ready(run_id) | LoadFailed(run_id, exit_code, message)
    C -> W  Setup(run_id)                            to one worker, if the scenario has setup()
    W -> C  SetupDone(run_id, data, error, exit_code)  setup()'s return value, packed, or its failure
    C -> W  Ping(t) / W -> C Pong(t, worker_t)       a few round trips while loading: the coordinator
                                                     estimates each worker's clock offset from them
    C -> W  Start(run_id, data, at)                  their clocks start at ``at`` (the receiver's own
                                                     monotonic clock, converted by the coordinator)
                                                     data is setup()'s return value (vu.data)
    C -> W  Takeover(run_id, slices, seq)            a lost worker's share, for the survivors (policy
                                                     ``--on-worker-loss continue``)
    W -> C  Taken(run_id, seq, refused)              what it could not play goes to another survivor
    W -> C  Offer(run_id, seq, size)                 a report is ready (every interval, and a final one)
    C -> W  Grant(run_id, seq)                       send it: the coordinator's byte budget has room
                                                     (surge.common.grants); until then it waits in the worker
    W -> C  Report(run_id, seq, elapsed_s, series, checks, final, aborted, vus_samples)  the granted
                                                     report; vus_samples: (second, VUs) ticks
    C -> W  Ack(run_id, seq)                         the worker forgets a report only once acked
    C -> W  Reject(run_id, seq, reason)              the report did not validate: dropped alone, counted
    C -> W  Stop(run_id, reason)                     abortOnFail, Ctrl-C, a lost peer
    C -> W  Teardown(run_id, data)                   to the setup worker, once every final report is in
    W -> C  Report(...), TeardownDone(run_id, error, exit_code)   teardown's own samples, then its end
    both    Heartbeat(stall_s, where)                every second, in every phase, from each side's I/O
                                                     thread; a worker's says how long its event loop
                                                     has not run and where it is stuck
    C -> W  Bye(reason)                              a one-run worker exits

Reports carry deltas since the previous report and a per-run sequence number starting at 1.
The worker keeps every unacknowledged report and offers it again until acked; the coordinator
applies each sequence number once and in order, so a resend is never counted twice and a
reordering never changes the merged result.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

import msgpack

from surge.common.endpoint_stats import DEFAULT_MAX_ENDPOINTS
from surge.common.errors import ProtocolError
from surge.common.metrics import SINK_TYPES, MetricType, Sink

# 2: Reject, Refuse.retry_s, Heartbeat's stall report, Report.vus_samples, setup/teardown, the
# iteration and arrival-rate executors' ScenarioSlice fields (surge 0.2).
# 3: Hello.capacity and ScenarioSlice.member (a machine of several processes), Ping/Pong and
# Start.at (one start instant on every clock), Takeover and ScenarioSlice.skip_before_s.
# 4: a trend's centroids travel as one bin of (mean, weight) float64 pairs (surge.common.sketch).
# 5: Run.report_delay_s (each member sends its interval reports at its own phase),
# Run.max_endpoints (the per-endpoint table's cap, surge.common.endpoint_stats) and
# Run.http_options, k6's HTTP options as the scenario wrote them (surge.common.http_options).
# 6: Offer/Grant: a report goes only once the coordinator grants it (surge.common.grants).
PROTOCOL_VERSION = 6


@dataclass(frozen=True)
class Hello:
    name: str
    host: str
    pid: int
    protocol: int = PROTOCOL_VERSION
    # Worker processes behind this member (``surge worker --processes N``): its weight in the
    # plan, and how many of its slices carry each ``ScenarioSlice.member``.
    capacity: int = 1


@dataclass(frozen=True)
class Welcome:
    index: int


@dataclass(frozen=True)
class Refuse:
    """The coordinator will not take this worker: for good (``retry_s == 0``), or not now."""

    reason: str
    retry_s: float = 0.0


@dataclass(frozen=True)
class ScenarioSlice:
    """One worker's share of one scenario: its own steps and the fleet-wide ids of its VUs."""

    name: str
    executor: str
    exec_name: str
    start_time_s: float
    duration_s: float  # end of the last stage / of ``duration``, relative to start_time_s
    graceful_stop_s: float
    graceful_ramp_down_s: float
    steps: list[tuple[float, int]]
    vu_ids: list[int]
    env: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # The iteration and arrival-rate executors (see surge/common/arrivals.py): this worker
    # owns the fleet-wide iteration indices k with k % index_period in index_offsets.
    iterations: int = 0  # per-vu-iterations: per VU; shared-iterations: the fleet's total
    index_period: int = 1
    index_offsets: list[int] = field(default_factory=lambda: [0])
    rate_segments: list[tuple[float, int, int]] = field(default_factory=list)  # (duration_s, from, to) per time unit
    time_unit_s: float = 1.0
    pre_allocated_vus: int = 0  # arrival-rate: this worker's share; vu_ids holds its share of maxVUs
    member: int = 0  # which of the member's processes plays this slice (0..capacity-1)
    # A share taken over from a lost worker: arrivals planned before this run time (seconds
    # after Start) were that worker's to run, not this slice's.
    skip_before_s: float = 0.0


@dataclass(frozen=True)
class Run:
    run_id: str
    bundle: dict[str, bytes]  # relative path -> file content: the scenario and its local imports
    entry: str  # dotted module name of the scenario inside the bundle
    env: dict[str, str]
    slices: list[ScenarioSlice]
    submetrics: list[str]  # series keys with tag filters to track, e.g. "http_req_duration{scenario:a}"
    report_interval_s: float
    http_transport: str = "fast"  # "fast" (uvloop + httptools) or "aiohttp" (aiohttp's client, the reference)
    lifecycle: bool = False  # this worker runs the scenario's setup() and teardown() (one worker does)
    setup_timeout_s: float = 60.0
    teardown_timeout_s: float = 60.0
    discard_response_bodies: bool = False  # k6's discardResponseBodies
    # How long after each interval's end this member sends that interval's report (cut at the
    # end, sent later): the coordinator spreads its members over part of the interval, so a
    # thousand reports arrive spread out, not in one burst it would have to buffer at once.
    report_delay_s: float = 0.0
    max_endpoints: int = DEFAULT_MAX_ENDPOINTS  # rows of the per-endpoint table each worker keeps (maxEndpoints)
    # k6's HTTP options (userAgent, hosts, dns, tlsVersion...) as written in the scenario's
    # options; the worker validates them with the coordinator's parser (http_options_raw).
    http_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ready:
    run_id: str


@dataclass(frozen=True)
class LoadFailed:
    run_id: str
    exit_code: int
    message: str


@dataclass(frozen=True)
class Setup:
    """Run ``setup()`` now (to the lifecycle worker, once every worker is Ready)."""

    run_id: str


@dataclass(frozen=True)
class SetupDone:
    """What ``setup()`` returned, msgpack-packed (``b""``: None), or why it failed (``error``)."""

    run_id: str
    data: bytes = b""
    error: str = ""
    exit_code: int = 0


@dataclass(frozen=True)
class Start:
    run_id: str
    data: bytes = b""  # what setup() returned, packed: every VU's vu.data
    at: float = 0.0  # the start instant on the receiver's own monotonic clock (0: at once)


@dataclass(frozen=True)
class Ping:
    """A clock probe: ``t`` is the coordinator's monotonic clock when it sent it."""

    t: float


@dataclass(frozen=True)
class Pong:
    """The answer to a Ping, at once: ``worker_t`` is the worker's monotonic clock on receipt."""

    t: float
    worker_t: float


@dataclass(frozen=True)
class Takeover:
    """Slices a lost worker leaves behind, for this worker to play from now on (they keep the run's clock)."""

    run_id: str
    slices: list[ScenarioSlice]
    seq: int = 0  # the coordinator's number for this handover, echoed by Taken


@dataclass(frozen=True)
class Taken:
    """The answer to a Takeover: the slices this worker could not play (its own run was over)."""

    run_id: str
    seq: int
    refused: list[ScenarioSlice] = field(default_factory=list)


@dataclass(frozen=True)
class Teardown:
    """Run ``teardown(vu, data)`` now (to the lifecycle worker, once the load is over)."""

    run_id: str
    data: bytes = b""


@dataclass(frozen=True)
class TeardownDone:
    run_id: str
    error: str = ""
    exit_code: int = 0


@dataclass(frozen=True)
class Report:
    run_id: str
    seq: int
    elapsed_s: float
    series: dict[str, Sink]
    checks: dict[str, tuple[int, int]]  # check key (api.check_key: name, or group path + name) -> (passes, fails)
    final: bool = False
    aborted: str = ""  # set when the scenario called abort_test(): the whole run must stop
    vus_samples: list[tuple[int, int]] = field(default_factory=list)  # (tick: whole seconds after Start, running VUs)


@dataclass(frozen=True)
class Offer:
    """Report ``seq`` is ready and encodes to ``size`` bytes: the worker sends it once granted."""

    run_id: str
    seq: int
    size: int


@dataclass(frozen=True)
class Grant:
    """Send report ``seq`` now (the coordinator's byte budget has room for it)."""

    run_id: str
    seq: int


@dataclass(frozen=True)
class Ack:
    run_id: str
    seq: int


@dataclass(frozen=True)
class Reject:
    """A report that arrived but did not validate. The worker drops it; the coordinator skips its seq."""

    run_id: str
    seq: int
    reason: str


@dataclass(frozen=True)
class Stop:
    run_id: str
    reason: str


@dataclass(frozen=True)
class Heartbeat:
    """Liveness. From a worker, ``stall_s`` is how long its event loop has not run (0 when it is
    healthy) and ``where`` the scenario line it is stuck on, so a scenario that blocks the loop
    is named as the cause instead of looking like a lost worker."""

    stall_s: float = 0.0
    where: str = ""


@dataclass(frozen=True)
class Bye:
    reason: str


Message = Union[
    Hello, Welcome, Refuse, Run, Ready, LoadFailed, Setup, SetupDone, Start, Offer, Grant, Report, Ack, Reject,
    Stop, Teardown, TeardownDone, Heartbeat, Bye, Ping, Pong, Takeover, Taken,
]

_KINDS: dict[str, type[Any]] = {
    cls.__name__.lower(): cls
    for cls in (
        Hello, Welcome, Refuse, Run, Ready, LoadFailed, Setup, SetupDone, Start, Offer, Grant, Report, Ack,
        Reject, Stop, Teardown, TeardownDone, Heartbeat, Bye, Ping, Pong, Takeover, Taken,
    )
}
_KIND_OF: dict[type[Any], str] = {cls: kind for kind, cls in _KINDS.items()}
_HINTS: dict[type[Any], dict[str, Any]] = {
    cls: typing.get_type_hints(cls) for cls in (*_KINDS.values(), ScenarioSlice)
}


# --------------------------------------------------------------------------- encoding

_SINK_CLASSES = tuple(SINK_TYPES.values())


def _to_plain(value: Any) -> Any:
    if isinstance(value, _SINK_CLASSES):
        return [value.type.value, value.to_wire()]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def encode(msg: Message) -> bytes:
    kind = _KIND_OF.get(type(msg))
    if kind is None:
        raise TypeError(f"not a protocol message: {type(msg).__name__}")
    body = _to_plain(msg)
    body["v"] = PROTOCOL_VERSION
    body["k"] = kind
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- decoding


def _check(value: Any, hint: Any, where: str) -> Any:
    """Validate ``value`` against a type hint and return it converted (tuples, dataclasses, sinks)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f"{where}: expected a finite number, got {reprlib.repr(value)}")
        try:
            f = float(value)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise ProtocolError(f"{where}: expected a finite number, got {reprlib.repr(value)}")
        return f
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{where}: expected an integer, got {reprlib.repr(value)}")
        return value
    if hint in (str, bytes, bool):
        if type(value) is not hint:
            raise ProtocolError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
        return value
    if hint is Sink or (origin in (Union, types.UnionType) and set(typing.get_args(hint)) == set(SINK_TYPES.values())):
        if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str):
            raise ProtocolError(f"{where}: expected [metric type, fields]")
        try:
            sink_cls = SINK_TYPES[MetricType(value[0])]
        except ValueError:
            raise ProtocolError(f"{where}: unknown metric type {value[0]!r}") from None
        try:
            return sink_cls.from_wire(value[1])
        except ProtocolError as exc:
            raise ProtocolError(f"{where}: {exc}") from None
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ProtocolError(f"{where}: expected a list, got {type(value).__name__}")
        return [_check(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list) or len(value) != len(args):
            raise ProtocolError(f"{where}: expected a list of {len(args)} items")
        return tuple(_check(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ProtocolError(f"{where}: expected a map, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            try:
                out[_check(k, key_t, where)] = _check(v, val_t, where)
            except ProtocolError:
                # Again, naming the item: the names are built only for a map that fails (a
                # report's series map is checked on every report, the hot path).
                out[_check(k, key_t, f"{where} key")] = _check(v, val_t, f"{where}[{reprlib.repr(k)}]")
        return out
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    raise ProtocolError(f"{where}: unsupported field type {hint!r}")  # pragma: no cover - schema bug


def _build(cls: type[Any], body: Any, where: str) -> Any:
    if not isinstance(body, dict):
        raise ProtocolError(f"{where}: expected a map")
    hints = _HINTS[cls]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(body) - set(fields)
    if extra:
        raise ProtocolError(f"{where}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
    kwargs = {}
    for name, f in fields.items():
        if name not in body:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(f"{where}: missing field {name!r}")
            continue
        kwargs[name] = _check(body[name], hints[name], f"{where}.{name}")
    return cls(**kwargs)


_REPORT_FIELDS = frozenset(f.name for f in dataclasses.fields(Report))
_SINK_BY_NAME: dict[str, Any] = {t.value: cls for t, cls in SINK_TYPES.items()}
_NUMBER = (int, float)


def _report_fast(body: dict[Any, Any]) -> Report | None:
    """A Report checked without the generic walker, or None to let :func:`_build` judge it.

    Reports are nearly every frame a busy coordinator reads, and walking type hints for each
    field of each one cost as much as msgpack itself. This accepts exactly what ``_build``
    accepts for a Report and builds the same object, but it never explains: on anything
    unusual it returns None and the generic walker runs, refusing the frame with its
    precise reason (so error messages do not depend on which path saw the frame first).
    """
    if not body.keys() <= _REPORT_FIELDS:
        return None
    run_id, seq, elapsed = body.get("run_id"), body.get("seq"), body.get("elapsed_s")
    series, checks = body.get("series"), body.get("checks")
    final, aborted = body.get("final", False), body.get("aborted", "")
    if (type(run_id) is not str or type(seq) is not int or type(elapsed) not in _NUMBER
            or type(series) is not dict or type(checks) is not dict or type(final) is not bool
            or type(aborted) is not str):
        return None
    try:
        elapsed_s = float(body["elapsed_s"])
    except OverflowError:
        return None
    if not math.isfinite(elapsed_s):
        return None
    sinks: dict[str, Sink] = {}
    for key, value in series.items():
        if type(key) is not str or type(value) is not list or len(value) != 2 or type(value[0]) is not str:
            return None
        cls = _SINK_BY_NAME.get(value[0])
        if cls is None:
            return None
        try:
            sinks[key] = cls.from_wire(value[1])
        except ProtocolError:
            return None
    counts: dict[str, tuple[int, int]] = {}
    for name, pair in checks.items():
        if type(name) is not str or type(pair) is not list or len(pair) != 2:
            return None
        p, f = pair
        if type(p) is not int or type(f) is not int:
            return None
        counts[name] = (p, f)
    ticks: list[tuple[int, int]] = []
    if "vus_samples" in body:
        samples = body["vus_samples"]
        if type(samples) is not list:
            return None
        for tick in samples:
            if type(tick) is not list or len(tick) != 2 or type(tick[0]) is not int or type(tick[1]) is not int:
                return None
            ticks.append((tick[0], tick[1]))
    return Report(run_id, seq, elapsed_s, sinks, counts, final, aborted, ticks)


def decode(frame: bytes) -> Message:
    """Parse and validate one frame, or raise :class:`ProtocolError` saying what is wrong."""
    try:
        return _decode(frame)
    except RecursionError:  # msgpack allows nesting deep enough to exhaust Python's stack
        raise ProtocolError("frame nested too deeply") from None


def _decode(frame: bytes) -> Message:
    try:
        body = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise ProtocolError(f"not a msgpack frame: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("frame is not a map")
    version = body.pop("v", None)
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {reprlib.repr(version)} is not this surge's version {PROTOCOL_VERSION}; "
            "run the same surge release on coordinator and workers"
        )
    kind = body.pop("k", None)
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message kind {reprlib.repr(kind)}")
    try:
        fast = _report_fast(body) if cls is Report else None
        msg: Message = fast if fast is not None else _build(cls, body, cls.__name__)
    except RecursionError:
        raise ProtocolError(f"{cls.__name__}: fields nested too deeply") from None
    if isinstance(msg, (Report, Offer, Grant)) and msg.seq < 1:
        raise ProtocolError(f"{cls.__name__}.seq must be >= 1, got {msg.seq}")
    if isinstance(msg, Offer) and not 0 <= msg.size < 2**31:
        raise ProtocolError(f"Offer.size must be a frame's size in bytes, got {msg.size}")
    if isinstance(msg, Report):
        for name, (p, f) in msg.checks.items():
            if p < 0 or f < 0:
                raise ProtocolError(f"Report.checks[{name!r}]: negative count")
    return msg


def peek_seq(frame: bytes) -> tuple[str, int] | None:
    """``(run_id, seq)`` of a frame that claims to be a Report, read without building its series.

    For a frame the coordinator may not need to decode at all: a resend of a report it has
    applied already (a worker resends until acked, and a coordinator that is behind gets
    resends of what it has not acked yet) is acknowledged again, and its content is never
    used. The map is read only until both fields are found (:func:`encode` puts them first;
    what comes before them is skipped by msgpack without making objects), so this costs a few
    microseconds, not a decode. Damage after them is not seen, and needs not be: a damaged
    resend of an applied report is acknowledged too. None for anything else, or anything
    that does not parse.
    """
    found: dict[str, Any] = {}
    try:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(frame) + 1)
        unpacker.feed(frame)
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key in ("v", "k", "run_id", "seq"):
                found[key] = unpacker.unpack()
                if "run_id" in found and "seq" in found:
                    break
            else:
                unpacker.skip()
    except Exception:  # noqa: BLE001 - not msgpack, or not a map: nothing to peek at
        return None
    run_id, seq = found.get("run_id"), found.get("seq")
    if found.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION or found.get("k", "report") != "report":
        return None
    if type(run_id) is not str or type(seq) is not int:
        return None
    return run_id, seq


def peek_report(frame: bytes) -> tuple[str, int, bool] | None:
    """``(run_id, seq, final)`` of a frame that claims to be a Report, or None.

    For a report that :func:`decode` refused: the coordinator still needs to know which
    sequence number to skip, so that one bad report costs its own data and nothing after it.
    """
    try:
        body = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:  # noqa: BLE001 - not msgpack, or nested too deeply: nothing to peek at
        return None
    if not isinstance(body, dict) or body.get("k") != "report" or body.get("v") != PROTOCOL_VERSION:
        return None
    run_id, seq, final = body.get("run_id"), body.get("seq"), body.get("final", False)
    if type(run_id) is not str or type(seq) is not int or seq < 1 or seq >= 2**63 or type(final) is not bool:
        return None
    return run_id, seq, final

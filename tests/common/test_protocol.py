"""The wire codec: every message round-trips; every malformed frame is a ProtocolError, nothing else."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.common import protocol
from surge.common.errors import ProtocolError
from surge.common.metrics import CounterSink, GaugeSink, RateSink, Sink, TrendSink
from surge.common.protocol import (
    PROTOCOL_VERSION,
    Ping,
    Pong,
    Takeover,
    Taken,
    Ack,
    Grant,
    Offer,
    Bye,
    Heartbeat,
    Hello,
    LoadFailed,
    Message,
    Ready,
    Refuse,
    Reject,
    Report,
    Setup,
    SetupDone,
    Teardown,
    TeardownDone,
    Run,
    ScenarioSlice,
    Start,
    Stop,
    Welcome,
    decode,
    encode,
)
from surge.common.sketch import Sketch, pack_centroids

RUN_ID = "3f2c9a1e-run"


def _gauge(value: float, at_s: float) -> GaugeSink:
    g = GaugeSink()
    g.set(value, at_s)
    return g


def _report(**changes: Any) -> Report:
    fields: dict[str, Any] = {
        "run_id": RUN_ID,
        "seq": 4,
        "elapsed_s": 12.5,
        "series": {
            "http_reqs": CounterSink(120.0),
            "http_req_duration": TrendSink(Sketch.from_samples([12.0, 15.5, 230.0, 48.25])),
            "http_req_duration{scenario:purchase}": TrendSink(Sketch.from_samples([230.0])),
            "http_req_failed": RateSink(2, 120),
            "vus": _gauge(40.0, 12.5),
            "empty_trend": TrendSink(),
            "empty_gauge": GaugeSink(),
        },
        "checks": {"status is 200": (118, 2), "has body": (0, 0)},
        "final": False,
    }
    return Report(**{**fields, **changes})


SLICE = ScenarioSlice(
    name="purchase",
    executor="ramping-vus",
    exec_name="default",
    start_time_s=0.0,
    duration_s=180.0,
    graceful_stop_s=30.0,
    graceful_ramp_down_s=10.0,
    steps=[(0.0, 0), (0.3, 1), (0.6, 2), (180.0, 0)],
    vu_ids=[1, 3, 5],
    env={"BASE_URL": "http://127.0.0.1:8080"},
    tags={"team": "checkout"},
)

MESSAGES: list[Message] = [
    Hello("worker-1", "load-gen-a", 4242),
    Hello("w", "h", 1, protocol=PROTOCOL_VERSION),
    Hello("machine-a", "load-gen-a", 77, capacity=8),
    Welcome(0),
    Welcome(7),
    Refuse("protocol 2 is not 1"),
    Refuse("a run is already in progress", retry_s=5.0),
    Run(
        run_id=RUN_ID,
        bundle={"scenarios/ticket_purchase.py": b"import surge\n\x00\xff", "scenarios/__init__.py": b""},
        entry="scenarios.ticket_purchase",
        env={"BASE_URL": "http://127.0.0.1:8080", "EMPTY": ""},
        slices=[SLICE, dataclasses.replace(SLICE, name="browse", executor="constant-vus", vu_ids=[], env={}, tags={})],
        submetrics=["http_req_duration{scenario:purchase}"],
        report_interval_s=2.0,
    ),
    Run(RUN_ID, {}, "s", {}, [], [], 0.5),
    Ready(RUN_ID),
    LoadFailed(RUN_ID, 107, "SyntaxError: invalid syntax (ticket_purchase.py, line 3)"),
    Start(RUN_ID),
    Start(RUN_ID, data=b"\x81\xa5token\xa3abc"),
    Start(RUN_ID, at=123456.789),
    Ping(1000.25),
    Pong(1000.25, 55.5),
    Takeover(RUN_ID, [dataclasses.replace(SLICE, member=1, skip_before_s=12.5)]),
    Takeover(RUN_ID, [SLICE], seq=3),
    Taken(RUN_ID, 3),
    Taken(RUN_ID, 4, [SLICE]),
    Setup(RUN_ID),
    SetupDone(RUN_ID, b"\x90"),
    SetupDone(RUN_ID, error="setup() raised RuntimeError: no", exit_code=107),
    Teardown(RUN_ID, b""),
    TeardownDone(RUN_ID),
    Offer(RUN_ID, 7, 48_213),
    Grant(RUN_ID, 7),
    Ack(RUN_ID, 2**63),
    Reject(RUN_ID, 3, "Report.series['x']: sketch: min must be finite, got inf"),
    Stop(RUN_ID, "abortOnFail: p(95)<500 crossed"),
    Heartbeat(),
    Heartbeat(stall_s=3.25, where="scenario.py:12 in default"),
    Bye("run over"),
]


def _wires(series: dict[str, Sink]) -> dict[str, tuple[str, bytes]]:
    return {k: (s.type.value, msgpack.packb(s.to_wire())) for k, s in series.items()}


def _assert_same_report(got: Message, want: Report) -> None:
    assert isinstance(got, Report)
    assert (got.run_id, got.seq, got.elapsed_s, got.checks, got.final) == (
        want.run_id,
        want.seq,
        want.elapsed_s,
        want.checks,
        want.final,
    )
    assert list(got.series) == list(want.series)
    assert _wires(got.series) == _wires(want.series)
    for key, sink in got.series.items():
        assert type(sink) is type(want.series[key])


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg: Message) -> None:
    frame = encode(msg)

    assert isinstance(frame, bytes)
    assert decode(frame) == msg


def test_every_message_kind_is_covered() -> None:
    assert {type(m) for m in MESSAGES} | {Report} == set(Message.__args__)  # type: ignore[attr-defined]


def test_a_report_round_trips_with_its_sinks() -> None:
    report = _report()

    _assert_same_report(decode(encode(report)), report)
    bare = _report(final=True, seq=1, series={}, checks={})
    _assert_same_report(decode(encode(bare)), bare)


def test_decoded_tuples_and_floats_have_their_declared_types() -> None:
    run = decode(encode(Run(RUN_ID, {}, "s", {}, [dataclasses.replace(SLICE, steps=[(0, 3), (5, 0)])], [], 1)))

    assert isinstance(run, Run)
    assert run.slices[0].steps == [(0.0, 3), (5.0, 0)]
    assert all(isinstance(s, tuple) and isinstance(s[0], float) for s in run.slices[0].steps)
    assert isinstance(run.report_interval_s, float)
    report = decode(encode(_report()))
    assert isinstance(report, Report)
    assert all(isinstance(v, tuple) for v in report.checks.values())


def test_encode_refuses_what_is_not_a_message() -> None:
    with pytest.raises(TypeError, match="not a protocol message"):
        encode(SLICE)  # type: ignore[arg-type]


def test_a_frame_is_a_versioned_map() -> None:
    body = msgpack.unpackb(encode(Welcome(3)))

    assert body == {"index": 3, "v": PROTOCOL_VERSION, "k": "welcome"}


# --------------------------------------------------------------------------- generated reports

_text = st.text(max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_count = st.integers(0, 2**63 - 1)


@st.composite
def _rate(draw: st.DrawFn) -> RateSink:
    total = draw(_count)
    return RateSink(draw(st.integers(0, total)), total)


@st.composite
def _gauge_sink(draw: st.DrawFn) -> GaugeSink:
    g = GaugeSink()
    for value, at_s in draw(st.lists(st.tuples(_finite, _finite), max_size=3)):
        g.set(value, at_s)
    return g


sinks: st.SearchStrategy[Sink] = st.one_of(
    _finite.map(CounterSink),
    _gauge_sink(),
    _rate(),
    st.lists(st.floats(-1e9, 1e9, allow_nan=False), max_size=30).map(lambda v: TrendSink(Sketch.from_samples(v))),
)

reports = st.builds(
    Report,
    run_id=_text,
    seq=st.integers(1, 2**63 - 1),
    elapsed_s=_finite,
    series=st.dictionaries(_text, sinks, max_size=5),
    checks=st.dictionaries(_text, st.tuples(_count, _count), max_size=4),
    final=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(report=reports)
def test_generated_reports_round_trip(report: Report) -> None:
    _assert_same_report(decode(encode(report)), report)


# --------------------------------------------------------------------------- refusals


def _frame(body: Any) -> bytes:
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def _body(msg: Message, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = msgpack.unpackb(encode(msg), raw=False)
    body.update(changes)
    return body


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _report_body(**changes: Any) -> dict[str, Any]:
    return _body(_report(), **changes)


def _series(sink: Any) -> dict[str, Any]:
    return _report_body(series={"http_reqs": sink})


RUN_MSG = next(m for m in MESSAGES if isinstance(m, Run))
RUN_BODY = _body(RUN_MSG)
SLICE_BODY = RUN_BODY["slices"][0]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        # not msgpack
        pytest.param(b"", "not a msgpack frame", id="empty frame"),
        pytest.param(b"\xc1", "not a msgpack frame", id="reserved byte"),
        pytest.param(encode(Welcome(1))[:-1], "not a msgpack frame", id="truncated"),
        pytest.param(encode(Welcome(1)) + b"\x00", "not a msgpack frame", id="trailing bytes"),
        pytest.param(b"\xdd\xff\xff\xff\xff", "not a msgpack frame", id="huge array header"),
        # not a map
        pytest.param(_frame([1, "welcome", 3]), "not a map", id="a list"),
        pytest.param(_frame("welcome"), "not a map", id="a string"),
        pytest.param(_frame(None), "not a map", id="nil"),
        # version
        pytest.param(_frame({"v": PROTOCOL_VERSION - 1, "k": "heartbeat"}),
                     rf"version {PROTOCOL_VERSION - 1} is not this surge's version {PROTOCOL_VERSION}", id="previous version"),
        pytest.param(_frame({"v": PROTOCOL_VERSION + 1, "k": "heartbeat"}),
                     rf"version {PROTOCOL_VERSION + 1} is not this surge's version {PROTOCOL_VERSION}", id="next version"),
        pytest.param(_frame({"v": 0, "k": "heartbeat"}), rf"version 0 .* version {PROTOCOL_VERSION}", id="version 0"),
        pytest.param(_frame({"v": str(PROTOCOL_VERSION), "k": "heartbeat"}),
                     rf"version '{PROTOCOL_VERSION}' .* version {PROTOCOL_VERSION}", id="version as str"),
        pytest.param(_frame({"k": "heartbeat"}), rf"version None .* version {PROTOCOL_VERSION}", id="no version"),
        # kind
        pytest.param(_frame({"v": PROTOCOL_VERSION, "k": "explode"}), "unknown message kind 'explode'", id="unknown kind"),
        pytest.param(_frame({"v": PROTOCOL_VERSION, "k": "Welcome", "index": 1}), "unknown message kind", id="kind in wrong case"),
        pytest.param(_frame({"v": PROTOCOL_VERSION, "index": 1}), "unknown message kind None", id="no kind"),
        pytest.param(_frame({"v": PROTOCOL_VERSION, "k": 3}), "unknown message kind 3", id="kind not a str"),
        # fields
        pytest.param(_frame(_without(_body(Welcome(1)), "index")), "missing field 'index'", id="missing field"),
        pytest.param(_frame(_without(_report_body(), "series")), "missing field 'series'", id="missing report field"),
        pytest.param(_frame(_body(Welcome(1), extra=1)), r"unknown field\(s\) extra", id="unknown field"),
        pytest.param(_frame(_body(Heartbeat(), index=1)), r"unknown field\(s\) index", id="field on heartbeat"),
        pytest.param(_frame(_body(Welcome(1), index="3")), "Welcome.index: expected an integer", id="str for int"),
        pytest.param(_frame(_body(Welcome(1), index=True)), "Welcome.index: expected an integer", id="bool for int"),
        pytest.param(_frame(_body(Welcome(1), index=3.0)), "Welcome.index: expected an integer", id="float for int"),
        pytest.param(_frame(_body(Welcome(1), index=None)), "Welcome.index: expected an integer", id="nil for int"),
        pytest.param(_frame(_body(Refuse("x"), reason=5)), "Refuse.reason: expected str", id="int for str"),
        pytest.param(_frame(_body(Refuse("x"), reason=b"x")), "Refuse.reason: expected str", id="bytes for str"),
        pytest.param(_frame(_report_body(elapsed_s=math.nan)), "Report.elapsed_s: expected a finite number", id="NaN for float"),
        pytest.param(_frame(_report_body(elapsed_s=math.inf)), "Report.elapsed_s: expected a finite number", id="inf for float"),
        pytest.param(_frame(_report_body(elapsed_s="1.5")), "Report.elapsed_s: expected a finite number", id="str for float"),
        pytest.param(_frame(_report_body(elapsed_s=False)), "Report.elapsed_s: expected a finite number", id="bool for float"),
        pytest.param(_frame(_report_body(final=1)), "Report.final: expected bool", id="int for bool"),
        pytest.param(_frame(_report_body(series=[])), "Report.series: expected a map", id="list for map"),
        pytest.param(_frame(_report_body(checks=[["a", 1, 0]])), "Report.checks: expected a map", id="list for checks"),
        pytest.param(_frame(_report_body(checks={"a": [1]})), r"expected a list of 2 items", id="short check"),
        pytest.param(_frame(_report_body(checks={"a": [1, True]})), "expected an integer", id="bool check count"),
        pytest.param(_frame(_report_body(checks={"a": [1, -1]})), "negative count", id="negative check count"),
        pytest.param(_frame(_report_body(checks={3: [1, 0]})), "Report.checks key: expected str", id="int check name"),
        pytest.param(_frame(_body(RUN_MSG, env=[])), "Run.env: expected a map", id="list for env"),
        pytest.param(_frame(_body(RUN_MSG, env={"A": 1})), r"Run.env\['A'\]: expected str", id="int env value"),
        pytest.param(_frame(_body(RUN_MSG, bundle={"a.py": "text"})), "expected bytes", id="str for bytes"),
        pytest.param(_frame(_body(RUN_MSG, slices={})), "Run.slices: expected a list", id="map for list"),
        pytest.param(_frame(_body(RUN_MSG, slices=["purchase"])), r"Run.slices\[0\]: expected a map", id="str for slice"),
        pytest.param(
            _frame(_body(RUN_MSG, slices=[_without(SLICE_BODY, "vu_ids")])),
            r"Run.slices\[0\]: missing field 'vu_ids'",
            id="slice missing field",
        ),
        pytest.param(
            _frame(_body(RUN_MSG, slices=[{**SLICE_BODY, "vus": 3}])),
            r"Run.slices\[0\]: unknown field\(s\) vus",
            id="slice unknown field",
        ),
        pytest.param(
            _frame(_body(RUN_MSG, slices=[{**SLICE_BODY, "steps": [[0.0, 1.5]]}])),
            r"steps\[0\]\[1\]: expected an integer",
            id="float vus in a step",
        ),
        # sinks inside a report
        pytest.param(_frame(_series(["counter", [math.nan]])), r"Report.series\['http_reqs'\]: counter total", id="NaN counter"),
        pytest.param(_frame(_series(["counter", []])), "counter: expected a list of 1 fields", id="empty counter"),
        pytest.param(_frame(_series(["histogram", [1.0]])), "unknown metric type 'histogram'", id="unknown sink type"),
        pytest.param(_frame(_series(["rate", [3, 2]])), "rate: 3 passes out of 2", id="rate passes above total"),
        pytest.param(_frame(_series(["gauge", [5.0, 1.0, 4.0, 2.0]])), "gauge: value 5.0 outside", id="gauge outside"),
        pytest.param(
            _frame(_series(["trend", [1, 1.0, 1.0, 1.0, pack_centroids([1.0], [2.0])]])), "sketch: centroid weights",
            id="trend weights"
        ),
        pytest.param(_frame(_series(["trend", [1, 1.0]])), "sketch: expected", id="short trend"),
        pytest.param(  # protocol 3's form: centroids as two lists of numbers
            _frame(_series(["trend", [1, 1.0, 1.0, 1.0, [1.0], [1.0]]])), r"sketch: expected \[count, sum, min, max, centroids\]",
            id="trend in the list form"),
        pytest.param(_frame(_series(["trend", [1, 1.0, 1.0, 1.0, [1.0, 1.0]]])), "sketch: centroids must be bytes",
                     id="trend centroids as a list"),
        pytest.param(_frame(_series(["trend", [1, 1.0, 1.0, 1.0, bytes(15)]])), "not whole .* pairs",
                     id="trend centroids cut short"),
        pytest.param(_frame(_series("counter")), r"expected \[metric type, fields\]", id="sink not a list"),
        pytest.param(_frame(_series(["counter"])), r"expected \[metric type, fields\]", id="sink without fields"),
        pytest.param(_frame(_series([1, [1.0]])), r"expected \[metric type, fields\]", id="sink type not a str"),
        pytest.param(_frame(_series(["counter", [1.0], 2])), r"expected \[metric type, fields\]", id="sink too long"),
        # sequence numbers start at 1
        pytest.param(_frame(_report_body(seq=0)), "Report.seq must be >= 1, got 0", id="report seq 0"),
        pytest.param(_frame(_report_body(seq=-3)), "Report.seq must be >= 1, got -3", id="report seq negative"),
        pytest.param(_frame(_body(Offer(RUN_ID, 1, 10), seq=0)), "Offer.seq must be >= 1", id="offer seq 0"),
        pytest.param(_frame(_body(Grant(RUN_ID, 1), seq=-1)), "Grant.seq must be >= 1", id="grant seq negative"),
        pytest.param(_frame(_body(Offer(RUN_ID, 1, 10), size=-1)), "Offer.size must be a frame's size", id="offer size negative"),
        pytest.param(_frame(_body(Offer(RUN_ID, 1, 10), size=2**40)), "Offer.size must be a frame's size", id="offer size huge"),
    ],
)
def test_decode_refuses(frame: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode(frame)


def test_decode_accepts_what_msgpack_gives_for_declared_types() -> None:
    # An int where a float is declared (msgpack keeps 2.0 as a float, but another encoder may not).
    report = decode(_frame(_report_body(elapsed_s=3, series={}, checks={})))
    assert isinstance(report, Report)
    assert report.elapsed_s == 3.0 and isinstance(report.elapsed_s, float)
    # Fields with defaults may be left out.
    assert decode(_frame(_without(_body(Hello("w", "h", 1)), "protocol"))) == Hello("w", "h", 1)
    _assert_same_report(decode(_frame(_without(_report_body(), "final"))), _report())


DEEP = b"\x91" * 1020 + _frame(1)  # [[[...1...]]] nested 1020 deep (msgpack allows 1024): 1 KiB any peer can send


@pytest.mark.parametrize(
    "frame",
    [
        b"\x83" + _frame("v") + _frame(1) + _frame("k") + _frame("welcome") + _frame("index") + DEEP,
        b"\x83" + _frame("v") + _frame(1) + _frame("k") + _frame("welcome") + _frame("zzz") + DEEP,
        b"\x87" + b"".join(map(_frame, ["v", 1, "k", "report", "run_id", "r", "seq", 1, "elapsed_s", 1.0, "checks", {}]))
        + _frame("series") + b"\x81" + _frame("http_reqs") + b"\x92" + _frame("counter") + DEEP,
    ],
    ids=["a field", "an unknown field", "a sink"],
)
def test_decode_refuses_a_deeply_nested_field(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(frame)


@pytest.mark.parametrize(
    "frame",
    [
        b"\x82" + _frame("v") + DEEP + _frame("k") + _frame("welcome"),
        b"\x82" + _frame("v") + _frame(1) + _frame("k") + DEEP,
    ],
    ids=["version", "kind"],
)
def test_decode_refuses_a_deeply_nested_envelope(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(frame)


# --------------------------------------------------------------------------- never anything but ProtocolError


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=200))
def test_decode_of_arbitrary_bytes_raises_only_protocol_error(frame: bytes) -> None:
    try:
        msg = decode(frame)
    except ProtocolError:
        return
    assert type(msg) in Message.__args__  # type: ignore[attr-defined]


_FIELD_NAMES = sorted(
    {f.name for cls in (*Message.__args__, ScenarioSlice) for f in dataclasses.fields(cls)}  # type: ignore[attr-defined]
)
_KIND_NAMES = [cls.__name__.lower() for cls in Message.__args__]  # type: ignore[attr-defined]
_wire_int = st.integers(min_value=-(2**63), max_value=2**64 - 1)
_scalar = st.none() | st.booleans() | _wire_int | st.floats() | st.text(max_size=8) | st.binary(max_size=8)
_key = st.one_of(st.sampled_from(_FIELD_NAMES), st.text(max_size=6))
_json_like = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(_key, inner, max_size=4)
    | st.tuples(st.sampled_from(["counter", "gauge", "rate", "trend"]), st.lists(inner, max_size=6)).map(list),
    max_leaves=24,
)


@st.composite
def _maps(draw: st.DrawFn) -> dict[Any, Any]:
    body: dict[Any, Any] = draw(st.dictionaries(_key, _json_like, max_size=8))
    if draw(st.integers(0, 9)) > 0:
        body["v"] = draw(st.sampled_from([PROTOCOL_VERSION, PROTOCOL_VERSION, 1, 2, 4, None, "3"]))
    if draw(st.integers(0, 9)) > 0:
        body["k"] = draw(st.one_of(st.sampled_from(_KIND_NAMES), _scalar))
    if draw(st.booleans()):  # start from a real message and damage it
        msg = draw(st.sampled_from([*MESSAGES, _report()]))
        real = _body(msg)
        for key in draw(st.lists(st.sampled_from(sorted(real)), max_size=2, unique=True)):
            if draw(st.booleans()):
                real[key] = draw(_json_like)
            else:
                del real[key]
        body = {**draw(st.dictionaries(_key, _json_like, max_size=1)), **real}
    return body


@settings(max_examples=200, deadline=None)
@given(body=_maps())
def test_decode_of_arbitrary_maps_raises_only_protocol_error(body: dict[Any, Any]) -> None:
    try:
        msg = decode(_frame(body))
    except ProtocolError as exc:
        assert str(exc)
        return
    assert type(msg) in Message.__args__  # type: ignore[attr-defined]


@st.composite
def _report_bodies(draw: st.DrawFn) -> dict[Any, Any]:
    """A Report's body, valid or damaged one field (or one series, check or tick) at a time."""
    body: dict[Any, Any] = msgpack.unpackb(encode(draw(st.just(_report()) | reports)), raw=False)
    body.pop("v"), body.pop("k")
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from([*sorted(body), "extra"]))
        where = draw(st.integers(0, 2))
        if where == 0 or not isinstance(body.get(key), (dict, list)) or not body[key]:
            if draw(st.booleans()) or key not in body:
                body[key] = draw(_json_like)
            else:
                del body[key]
        elif isinstance(body[key], dict):
            body[key][draw(st.sampled_from(sorted(body[key])))] = draw(_json_like)
        else:
            body[key][draw(st.integers(0, len(body[key]) - 1))] = draw(_json_like)
    return body


@settings(max_examples=300, deadline=None)
@given(body=_report_bodies())
def test_the_report_fast_path_accepts_only_what_the_walker_accepts_and_builds_the_same(body: dict[Any, Any]) -> None:
    # decode() takes a Report through protocol._report_fast first; whatever it accepts, the
    # generic walker must accept too, giving the same report (else the walker's refusal holds).
    fast = protocol._report_fast(dict(body))
    try:
        slow = protocol._build(Report, dict(body), "Report")
    except ProtocolError:
        assert fast is None
        return
    if fast is not None:
        _assert_same_report(fast, slow)
        assert fast.aborted == slow.aborted and fast.vus_samples == slow.vus_samples
        assert [type(t) for t in fast.vus_samples] == [type(t) for t in slow.vus_samples]


def test_peek_seq_reads_a_reports_number_without_its_series() -> None:
    assert protocol.peek_seq(encode(_report())) == (RUN_ID, 4)
    # read only up to run_id and seq: a kind or version seen before them is checked
    assert protocol.peek_seq(_frame({"v": PROTOCOL_VERSION, "k": "ack", "run_id": RUN_ID, "seq": 4})) is None
    old = {"v": PROTOCOL_VERSION - 1, **{k: v for k, v in _report_body().items() if k != "v"}}  # its version first
    assert protocol.peek_seq(_frame(old)) is None
    assert protocol.peek_seq(_frame(_report_body(seq="4"))) is None


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=64) | _maps().map(_frame))
def test_peek_seq_of_anything_is_a_pair_or_none(frame: bytes) -> None:
    got = protocol.peek_seq(frame)
    assert got is None or (type(got[0]) is str and type(got[1]) is int)

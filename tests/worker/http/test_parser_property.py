"""The fast transport's parser path against h11, on random valid HTTP/1.1 responses.

Hypothesis builds a valid response (Content-Length, chunked with chunk extensions and
trailers, or framed by the close; 100/103 interim responses before it; HEAD with framing
headers and no body; 204 and 304; HTTP/1.0), cuts it into reads at random byte
boundaries, and follows it with random trailing bytes and perhaps the server's close.
The same bytes go to surge's ``Connection`` through its asyncio.Protocol methods (the one
seam; a fake transport stands in for the socket) and to h11, a strict parser written
independently of llhttp. Both must read the same status, headers and body, and agree on
whether the connection may carry another request: h11's keep-alive, and no byte after
the response (any unsolicited byte makes the connection untrustworthy). The one policy
of surge's own: bare CR and LF bytes after a response, which llhttp skips as a robust
reader between messages, are not counted as trailing bytes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import h11
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from surge.worker.http.transports.fast.connection import Connection

# ---------------------------------------------------------------------------- a fake socket


class FakeWire(asyncio.Transport):
    """What ``Connection`` writes to and closes; an aborted one delivers no more reads."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


# ---------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Case:
    method: str
    wire: bytes  # the response as the server sends it
    framing: str  # "length", "chunked", "close", "none" (204/304/HEAD: no body whatever the headers say)


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
_VALUE = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)] + [" "], min_size=1, max_size=24).map(str.strip).filter(bool)
_RESERVED = {"content-length", "transfer-encoding", "connection", "trailer", "te", "upgrade", "keep-alive"}
_FIELD = st.tuples(_TOKEN.filter(lambda n: n.lower() not in _RESERVED), _VALUE)


def _case_name(name: str, draw: Any) -> str:
    """A framing header's name in a random case: parsers must not care."""
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in name)


@st.composite
def responses(draw: Any) -> Case:
    version = draw(st.sampled_from(["1.1", "1.1", "1.1", "1.0"]))
    method = draw(st.sampled_from(["GET", "GET", "HEAD"]))
    status = draw(st.sampled_from([200, 201, 204, 301, 304, 404, 500, 503]))
    fields = draw(st.lists(_FIELD, max_size=5))
    body = draw(st.binary(max_size=300))
    reason = draw(st.sampled_from(["OK", "Whatever", "Not Found", "x y z"]))
    wire = b""
    if version == "1.1":
        for interim in draw(st.lists(st.sampled_from([100, 103]), max_size=2)):
            extra = b"Link: </style.css>; rel=preload\r\n" if interim == 103 else b""
            wire += b"HTTP/1.1 %d %s\r\n%s\r\n" % (interim, b"Continue" if interim == 100 else b"Early Hints", extra)
    if status == 204:
        framing = "none"
    elif status == 304:
        framing = draw(st.sampled_from(["none", "length"]))  # 304 may say the length it would have had
    elif version == "1.0":
        framing = draw(st.sampled_from(["length", "close"]))
    else:
        framing = draw(st.sampled_from(["length", "chunked", "close"]))
    head = [(k.encode(), v.encode()) for k, v in fields]
    if framing == "length":
        head.append((_case_name("content-length", draw).encode(), str(len(body)).encode()))
    elif framing == "chunked":
        head.append((_case_name("transfer-encoding", draw).encode(), b"chunked"))
    if version == "1.1" and draw(st.booleans()) and framing != "close":
        head.append((b"Connection", b"close"))
    if framing == "close" and version == "1.1":
        head.append((b"Connection", b"close"))  # a close-delimited 1.1 body: the server says so
    wire += b"HTTP/%s %d %s\r\n" % (version.encode(), status, reason.encode())
    wire += b"".join(b"%s: %s\r\n" % kv for kv in head) + b"\r\n"
    no_body = method == "HEAD" or status in (204, 304)
    if not no_body:
        if framing == "chunked":
            wire += _chunked(draw, body)
        elif framing in ("length", "close"):
            wire += body
    return Case(method, wire, "none" if no_body else framing)


def _chunked(draw: Any, body: bytes) -> bytes:
    out = b""
    rest = body
    while rest:
        n = draw(st.integers(1, len(rest)))
        size = b"%x" % n
        if draw(st.booleans()):
            size = size.upper()
        ext = draw(st.sampled_from([b"", b";ext", b";name=value", b';q="quoted"']))
        out += size + ext + b"\r\n" + rest[:n] + b"\r\n"
        rest = rest[n:]
    out += b"0" + draw(st.sampled_from([b"", b";last"])) + b"\r\n"
    for k, v in draw(st.lists(_FIELD, max_size=2)):
        out += b"%s: %s\r\n" % (k.encode(), v.encode())  # trailer fields
    return out + b"\r\n"


# ---------------------------------------------------------------------------- the two readers


@dataclass(frozen=True)
class Read:
    status: int
    headers: list[tuple[bytes, bytes]]  # names lower-cased, in order
    body: bytes
    reusable: bool


def read_with_h11(method: str, data: bytes, eof: bool, trailing: bytes) -> Read:
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "h")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    status, headers, body = 0, [], b""
    fed_eof = False
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA and eof and not fed_eof:
            conn.receive_data(b"")
            fed_eof = True
            continue
        assert event not in (h11.NEED_DATA, h11.PAUSED), f"h11 could not finish the response: {event}"
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            status, headers = event.status_code, [(k, v) for k, v in event.headers]
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
    keep_alive = conn.our_state is h11.DONE and conn.their_state is h11.DONE
    return Read(status, headers, body, keep_alive and not trailing and not eof)


def read_with_surge(method: str, reads: list[bytes], eof: bool, keep_bodies: bool = True) -> Read:
    loop = asyncio.new_event_loop()
    try:
        wire = FakeWire()
        conn = Connection(("http", "h", 80), False)
        conn.connection_made(wire)
        waiter = conn.exchange(b"%s / HTTP/1.1\r\nHost: h\r\n\r\n" % method.encode(), method == "HEAD",
                               perf_counter(), loop.time() + 60, loop, keep_bodies)
        for data in reads:
            if wire.closing:
                break  # an aborted transport reads nothing more
            conn.data_received(data)
        if eof and not wire.closing:
            conn.eof_received()
        if eof or wire.closing:
            conn.connection_lost(None)
        assert waiter.done(), "surge is still waiting for a complete response"
        assert waiter.exception() is None, f"surge failed a valid response: {waiter.exception()!r}"
        # As FastTransport.send: released to the pool iff keep-alive and still open.
        reusable = conn.keep_alive and not conn.closed
        return Read(conn.status, [(k.lower(), v) for k, v in conn.raw], conn.body_bytes(), reusable)
    finally:
        loop.close()


def _cut(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=responses(),
    points=st.lists(st.integers(0, 10_000), max_size=8),
    trailing=st.binary(max_size=24),
    eof=st.booleans(),
    keep=st.booleans(),
)
@example(  # the mixed response of issue 10: a second message in the read that ends the first
    case=Case("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "length"),
    points=[],
    trailing=b"HTTP/1.1 500 Oops\r\nX-Extra: 1\r\nContent-Length: 3\r\n\r\nbad",
    eof=False,
    keep=True,
)
@example(  # bare CRLFs after a response do not cost the connection
    case=Case("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "length"),
    points=[],
    trailing=b"\r\n\r\n",
    eof=False,
    keep=True,
)
@example(  # HEAD of a chunked resource, then bytes that a dropped parser would eat as a chunk size
    case=Case("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "none"),
    points=[],
    trailing=b"abc",
    eof=False,
    keep=True,
)
def test_surge_reads_what_h11_reads(case: Case, points: list[int], trailing: bytes, eof: bool, keep: bool) -> None:
    """``keep=False`` is discardResponseBodies: the same reading, and no byte of the body kept."""
    if case.framing == "close":
        eof, trailing = True, b""  # the close ends the body: anything before it is body
    data = case.wire + trailing
    unsolicited = trailing.strip(b"\r\n")  # bare CRLFs after a message are skipped (module docstring)
    expected = read_with_h11(case.method, data, eof, unsolicited)
    got = read_with_surge(case.method, _cut(data, points), eof, keep)
    if not keep:
        assert got.body == b""
        got = Read(got.status, got.headers, expected.body, got.reusable)
    assert got == expected

"""The fast transport's own cases: raw scripted servers for its framing, its cookie jar and
URLs, TLS, and a property test that it answers whatever a server sends.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import ssl
import zlib
from collections.abc import Mapping

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surge.worker.http import ErrorCode, HttpClient, InvalidURLError, Response
from surge.worker.http.transports.fast import FastTransport
from surge.worker.http.transports.fast.cookies import Jar
from surge.worker.http.transports.fast.url import Target
from tests.worker.http.helpers import (
    CLOSE,
    OK,
    RawServer,
    Reports,
    assert_timings_add_up,
    client_with,
    raw_server,
    read_request,
    script,
    serving_tls,
    with_raw_server,
)


def test_fast_reads_a_chunked_body_and_keeps_the_connection() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> list[Response]:
        return [await client.get(f"{base}/a"), await client.get(f"{base}/b")]

    first, second = with_raw_server(script(chunked, OK), test)
    assert (first.status, first.body, second.body) == (200, b"hello world", b"ok")
    assert first.bytes_received == len(chunked)


@pytest.mark.parametrize(
    ("method", "reply", "status"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n", 200),
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 204),
        ("GET", b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', 304),
        ("GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 OK\r\n\r\n", 204),
    ],
    ids=["HEAD", "204", "304", "1xx"],
)
def test_fast_responses_without_a_body_keep_the_connection_in_step(method: str, reply: bytes, status: int) -> None:
    """The next response on the same connection is read from the right byte."""

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        return await client.request(method, f"{base}/x"), await client.get(f"{base}/y"), raw

    first, second, raw = with_raw_server(script(reply, OK), test)
    assert (first.status, first.body, first.error) == (status, b"", "")
    assert (second.status, second.body) == (200, b"ok")
    assert raw.peers[0] == raw.peers[1] and second.timings.connecting == 0
    assert first.bytes_received == len(reply) and first.bytes_sent == len(raw.requests[0])


def test_fast_connection_close_from_the_server_means_a_new_connection_next_time() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        return await client.get(f"{base}/a"), await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script((closing, True), OK), test)
    assert (first.status, second.status) == (200, 200)
    assert raw.peers[0] != raw.peers[1] and second.timings.connecting > 0


def test_fast_connection_close_from_the_client_means_a_new_connection_next_time() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        first = await client.get(f"{base}/a", headers={"Connection": "close"})
        return first, await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script(OK, OK), test)
    assert b"\r\nConnection: close\r\n" in raw.requests[0]
    assert (first.status, second.status) == (200, 200) and raw.peers[0] != raw.peers[1]


def test_fast_replaces_a_keep_alive_connection_the_server_closed_while_idle() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        first = await client.get(f"{base}/a")
        await asyncio.wait_for(raw.closed_by_server.wait(), 5)  # the server's idle timeout
        return first, await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script((OK, True), OK), test)
    assert (first.status, second.status, second.error) == (200, 200, "")
    assert raw.peers[0] != raw.peers[1]


def test_fast_sends_a_replayable_request_again_when_a_reused_connection_dies_under_it() -> None:
    """The server closes the kept-alive connection as the second request arrives (Go retries GET)."""

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        await client.get(f"{base}/a")
        return await client.get(f"{base}/b"), raw

    resp, raw = with_raw_server(script(OK, (CLOSE, True), OK), test)
    assert (resp.status, resp.body, resp.error) == (200, b"ok", "")
    assert raw.peers[0] == raw.peers[1] != raw.peers[2]
    assert resp.bytes_sent == len(raw.requests[1]) + len(raw.requests[2])  # both attempts hit the wire
    assert resp.timings.connecting > 0
    assert_timings_add_up(resp.timings)


def test_fast_does_not_replay_a_post_or_a_request_on_a_fresh_connection() -> None:
    async def post(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        await client.get(f"{base}/a")
        return await client.post(f"{base}/b", json={"n": 1}), raw

    resp, raw = with_raw_server(script(OK, (CLOSE, True), OK), post)
    assert (resp.status, resp.error_code, resp.error) == (0, 1000, "EOF (server closed the connection)")
    assert len(raw.requests) == 2 and resp.bytes_sent == len(raw.requests[1])

    async def fresh(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        return await client.get(f"{base}/a"), raw

    resp, raw = with_raw_server(script((CLOSE, True), OK), fresh)
    assert (resp.status, resp.error_code, resp.error) == (0, 1000, "EOF (server closed the connection)")
    assert len(raw.requests) == 1
    assert_timings_add_up(resp.timings)


def test_fast_reads_an_http_1_0_response_framed_by_the_end_of_the_connection() -> None:
    old = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from 1.0"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        return await client.get(f"{base}/a"), await client.get(f"{base}/b"), raw

    first, second, raw = with_raw_server(script((old, True), (old, True)), test)
    assert (first.status, first.body, second.body) == (200, b"hello from 1.0", b"hello from 1.0")
    assert raw.peers[0] != raw.peers[1] and first.bytes_received == len(old)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"garbage\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "unexpected EOF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "unexpected EOF"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", None),
    ],
    ids=["garbage", "bad-status", "short-body", "short-chunk", "upgrade"],
)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fast_a_malformed_or_truncated_response_is_a_failure(reply: bytes, error: str | None, loop: str) -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/a")

    resp = with_raw_server(script((reply, True)), test, loop=loop)
    assert (resp.status, resp.error_code) == (0, 1000), resp
    assert resp.error == error or (error is None and resp.error.startswith("malformed HTTP response"))
    assert resp.bytes_received == len(reply)
    assert_timings_add_up(resp.timings)


def test_fast_counts_the_exact_bytes_of_every_hop() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, Response, RawServer]:
        posted = await client.post(f"{base}/a", data=b"x" * 1000, headers={"X-Id": "é"})
        return posted, await client.get(f"{base}/b"), raw

    posted, redirected, raw = with_raw_server(script(OK, moved, OK), test)
    assert posted.bytes_sent == len(raw.requests[0]) and posted.bytes_received == len(raw.replies[0])
    assert raw.requests[0].endswith(b"\r\n\r\n" + b"x" * 1000)
    assert "X-Id: é".encode() in raw.requests[0]
    assert redirected.url.endswith("/next") and redirected.status == 200
    (hop,) = redirected.hops  # each hop counts its own bytes, as k6's samples do
    assert (hop.bytes_sent, hop.bytes_received) == (len(raw.requests[1]), len(raw.replies[1]))
    assert (redirected.bytes_sent, redirected.bytes_received) == (len(raw.requests[2]), len(raw.replies[2]))


def test_fast_writes_the_request_as_go_would() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> RawServer:
        await client.post(f"{base}/p/ä b?q=1 2&r=ü", json={"a": 1})
        await client.get(f"{base}/g", headers={"Host": "example.test", "Content-Length": "99"})
        await client.post(f"{base}/empty")
        return raw

    raw = with_raw_server(script(OK, OK, OK), test)
    post, get, empty = (r.decode("utf-8") for r in raw.requests)
    line, *fields = post.split("\r\n\r\n")[0].split("\r\n")
    assert line == "POST /p/%C3%A4%20b?q=1%202&r=%C3%BC HTTP/1.1"
    assert fields[0].startswith("Host: 127.0.0.1:") and "Content-Length: 7" in fields
    assert "Content-Type: application/json" in fields and any(f.startswith("User-Agent: surge/") for f in fields)
    assert "Host: example.test\r\n" in get and "Content-Length" not in get  # a GET has no body to measure
    assert "Content-Length: 0\r\n" in empty


def test_fast_a_307_keeps_the_method_and_the_body() -> None:
    again = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        return await client.post(f"{base}/first", data=b"payload"), raw

    resp, raw = with_raw_server(script(again, OK), test)
    assert resp.status == 200 and resp.url.endswith("/again")
    assert raw.requests[1].startswith(b"POST /again HTTP/1.1\r\n") and raw.requests[1].endswith(b"\r\n\r\npayload")


def test_fast_a_redirect_to_another_host_drops_the_credentials() -> None:
    """127.0.0.1 sends the client to localhost (resolved by DNS, maybe ::1 first, refused there)."""

    async def main() -> tuple[Response, RawServer, RawServer]:
        async with raw_server(script(OK)) as (other_base, other):
            port = other_base.rsplit(":", 1)[1]
            moved = f"HTTP/1.1 302 Found\r\nLocation: http://localhost:{port}/landing\r\nContent-Length: 0\r\n\r\n"
            async with raw_server(script(moved.encode())) as (base, first), client_with("fast", Reports()) as client:
                headers = {"Authorization": "Bearer secret", "Cookie": "sid=1", "X-Kept": "yes"}
                return await client.get(f"{base}/start", headers=headers), first, other

    resp, first, other = uvloop.run(main())
    assert resp.status == 200 and resp.url.endswith("/landing")
    assert b"Authorization: Bearer secret" in first.requests[0] and b"Cookie: sid=1" in first.requests[0]
    assert b"Authorization" not in other.requests[0] and b"Cookie" not in other.requests[0]
    assert b"X-Kept: yes" in other.requests[0] and b"Host: localhost:" in other.requests[0]


def test_fast_refuses_a_header_that_would_split_the_request() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[Response, RawServer]:
        return await client.get(f"{base}/a", headers={"X-Evil": "a\r\nX-Injected: 1"}), raw

    resp, raw = with_raw_server(script(OK), test)
    assert (resp.status, resp.error_code) == (0, 1000) and "Newline" in resp.error
    assert raw.requests == []


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


@pytest.mark.parametrize(
    ("encoding", "payload", "expected"),
    [
        (b"gzip", _gzip(b"zipped!"), b"zipped!"),
        (b"deflate", zlib.compress(b"deflated"), b"deflated"),
        (b"deflate", zlib.compress(b"raw deflate")[2:-4], b"raw deflate"),
        (b"br", b"\x0bopaque", b"\x0bopaque"),
    ],
    ids=["gzip", "deflate", "raw-deflate", "unknown"],
)
def test_fast_decodes_a_compressed_body_and_counts_the_wire_bytes(encoding: bytes, payload: bytes, expected: bytes) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: " + encoding + b"\r\nContent-Length: %d\r\n\r\n" % len(payload)

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/z")

    resp = with_raw_server(script(reply + payload), test)
    assert (resp.status, resp.body) == (200, expected)
    assert resp.bytes_received == len(reply) + len(payload)


def test_fast_a_body_that_does_not_decompress_is_1701() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/z")

    resp = with_raw_server(script(reply), test)
    assert (resp.status, resp.error_code, resp.error) == (0, 1701, "error decompressing response body")


def test_fast_timings_follow_the_connection() -> None:
    """A response held back by the server is waiting; a reused connection has no connecting."""

    async def slow_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
            await writer.drain()
            await asyncio.sleep(0.02)  # the body comes in two pieces: receiving is measured
            writer.write(b"cde")
        writer.close()

    async def main() -> list[Response]:
        server = await asyncio.start_server(slow_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, client_with("fast", Reports()) as client:
            return [await client.get(f"http://127.0.0.1:{port}/") for _ in range(2)]

    first, second = uvloop.run(main())
    for resp in (first, second):
        assert resp.body == b"abcde"
        assert_timings_add_up(resp.timings)
        assert resp.timings.waiting >= 45 and resp.timings.receiving >= 15
        assert resp.timings.blocked >= resp.timings.connecting + resp.timings.tls_handshaking
    assert first.timings.connecting > 0 and second.timings.connecting == 0
    assert first.timings.tls_handshaking == second.timings.tls_handshaking == 0


def test_fast_concurrent_requests_of_one_vu_get_their_own_connections() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> tuple[list[Response], Response, RawServer]:
        both = await asyncio.gather(client.get(f"{base}/a"), client.get(f"{base}/b"))
        return list(both), await client.get(f"{base}/c"), raw

    both, third, raw = with_raw_server(script(OK, OK, OK), test)
    assert [r.status for r in both] == [200, 200] and third.status == 200
    assert len(set(raw.peers[:2])) == 2 and raw.peers[2] in raw.peers[:2]
    assert third.timings.connecting == 0


def test_fast_headers_are_a_case_insensitive_mapping_read_lazily() -> None:
    reply = b"HTTP/1.1 200 OK\r\nX-One: 1\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n"

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/h")

    resp = with_raw_server(script(reply), test)
    headers = resp.headers
    assert isinstance(headers, Mapping) and len(headers) == 4
    assert headers["x-one"] == "1" and headers.get("X-ONE") == "1" and "x-two" not in headers
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]  # type: ignore[attr-defined]
    assert dict(headers)["Content-Length"] == "0"


def test_fast_cookie_jar_follows_rfc_6265() -> None:
    jar = Jar()
    site = Target("http://shop.example.test/cart/items?x=1")
    jar.store(
        site,
        [
            b"sid=1; Path=/",
            b"local=2",  # default path: /cart
            b"wide=3; Domain=.example.test; Path=/",
            b"other=4; Domain=elsewhere.test",  # not ours: ignored
            b"safe=5; Secure; Path=/",
            b"gone=6; Max-Age=0",
            b"old=7; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        ],
    )
    assert jar.header(site) == "local=2; sid=1; wide=3"  # the longest path first
    assert jar.header(Target("http://shop.example.test/cartoon")) == "sid=1; wide=3"
    assert jar.header(Target("http://example.test/")) == "wide=3"
    assert jar.header(Target("http://api.example.test/cartoon")) == "wide=3"
    assert jar.header(Target("https://shop.example.test/")) == "sid=1; wide=3; safe=5"
    jar.store(site, [b"sid=1; Path=/; Max-Age=0"])
    assert jar.header(Target("http://shop.example.test/")) == "wide=3"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999/", "https://", "mailto:x@y", "http://exa mple.com:x/", "//no-scheme/"]
)
def test_fast_rejects_urls_it_cannot_request(url: str) -> None:
    with pytest.raises(InvalidURLError):
        Target(url)


def test_fast_makes_basic_auth_from_the_url() -> None:
    async def test(base: str, raw: RawServer, client: HttpClient) -> RawServer:
        await client.get(base.replace("http://", "http://us%40r:p%3Ass@") + "/")
        return raw

    raw = with_raw_server(script(OK), test)
    assert b"\r\nAuthorization: Basic " + base64.b64encode(b"us@r:p:ss") + b"\r\n" in raw.requests[0]


# ---------------------------------------------------------------------------- the fast transport over TLS


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fast_speaks_tls_and_times_the_handshake_apart(tls_files: tuple[str, str], loop: str) -> None:
    cert_file, key_file = tls_files
    trusting = ssl.create_default_context(cafile=cert_file)

    async def main() -> tuple[Response, Response, Response, Response]:
        async with (
            serving_tls(cert_file, key_file) as base,
            HttpClient(on_response=Reports(), transport=FastTransport(ssl_context=trusting)) as client,
            HttpClient(on_response=Reports(), transport=FastTransport()) as default,
            HttpClient(on_response=Reports(), transport=FastTransport(verify_tls=False)) as insecure,
        ):
            first = await client.get(f"{base}/peer")
            second = await client.get(f"{base}/peer")
            return first, second, await default.get(f"{base}/peer"), await insecure.get(f"{base}/peer")

    first, second, untrusted, insecure = uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())
    assert (first.status, second.status, first.text) == (200, 200, second.text)
    assert first.timings.connecting > 0 and first.timings.tls_handshaking > 0
    assert first.timings.blocked >= first.timings.connecting + first.timings.tls_handshaking
    assert second.timings.connecting == second.timings.tls_handshaking == 0
    for resp in (first, second):
        assert_timings_add_up(resp.timings)
    assert (untrusted.status, untrusted.error_code, untrusted.error) == (0, 1310, "x509: unknown authority")
    assert insecure.status == 200


_HEADS = st.sampled_from(
    [
        b"",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 404 Not Found\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n",
    ]
)
_FIELDS = st.lists(
    st.sampled_from(
        [
            b"Content-Length: 3\r\n",
            b"Content-Length: x\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Encoding: gzip\r\n",
            b"Connection: close\r\n",
            b"Set-Cookie: a=b; Max-Age=-1\r\n",
            b"\r\n",
        ]
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=_HEADS, fields=_FIELDS, tail=st.binary(max_size=40))
def test_fast_answers_whatever_the_server_sends(head: bytes, fields: list[bytes], tail: bytes) -> None:
    """A reply followed by a close: the transport returns a Response, never raises, never hangs."""
    reply = head + b"".join(fields) + tail

    async def test(base: str, raw: RawServer, client: HttpClient) -> Response:
        return await client.get(f"{base}/any", timeout=5)

    resp = with_raw_server(lambda n, _r: (reply, True) if n == 0 else (CLOSE, True), test)
    assert isinstance(resp, Response)
    if resp.status == 0:
        assert resp.error and resp.error_code in ErrorCode.__members__.values() and resp.error_code != 1050
    else:
        assert 200 <= resp.status <= 999 and resp.error == ""
    assert_timings_add_up(resp.timings)


# ---------------------------------------------------------------------------- the request's bytes

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20).map(str.strip)
_plain = st.dictionaries(_token.filter(lambda n: n.lower() not in {"host", "content-length", "connection",
                                                                      "transfer-encoding", "cookie", "authorization"}),
                         _value, max_size=5)


@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]), fields=_plain,
       body=st.one_of(st.none(), st.binary(max_size=30)), path=st.sampled_from(["/", "/a/b?x=1", "/items/7"]))
def test_a_request_head_is_the_same_bytes_from_a_read_only_headers_object_encoded_once_or_anew(
    method: str, fields: dict[str, str], body: bytes | None, path: str
) -> None:
    """What the transport writes: the request line, Host, the caller's fields in order, then its
    own framing. Read-only headers (the client's) are encoded once and reused: every call gives
    the same bytes as a plain dict encoded anew, and as the head written out by hand."""
    from multidict import CIMultiDict, CIMultiDictProxy

    target = Target(f"http://127.0.0.1:8080{path}")
    lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    if body is not None:
        framing = f"Content-Length: {len(body)}\r\n"
    else:
        framing = "Content-Length: 0\r\n" if method in ("POST", "PUT", "PATCH") else ""
    expected = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{lines}{framing}\r\n".encode() + (body or b"")
    proxy = CIMultiDictProxy(CIMultiDict(fields))
    transport = FastTransport()
    assert transport._encode(method, target, dict(fields), body) == (expected, False)
    assert transport._encode(method, target, proxy, body) == (expected, False)
    assert transport._encode(method, target, proxy, body) == (expected, False)  # the kept block


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("http://127.0.0.1/a", {"X-Evil": "1\r\nX-Injected: 2"}),
        ("http://127.0.0.1/a", {"X-Evil\n": "1"}),
        ("http://127.0.0.1/a", {"Host": "h\r\nX-Injected: 2"}),
    ],
    ids=["value", "name", "host"],
)
def test_a_cr_or_lf_in_a_header_is_refused_every_time(url: str, fields: dict[str, str]) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    proxy = CIMultiDictProxy(CIMultiDict(fields))
    transport = FastTransport()
    for headers in (fields, proxy, proxy):  # a refused block is not kept: refused again
        with pytest.raises(ValueError, match="Newline or carriage return"):
            transport._encode("GET", Target(url), headers, None)

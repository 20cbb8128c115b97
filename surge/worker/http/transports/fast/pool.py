"""The fast transport itself: one VU's connections (one per origin), cookie jar and redirects.

One transport per VU, and at most one keep-alive connection per origin
``(scheme, host, port)`` in it, as k6 keeps per-VU connections. (A VU that sends
concurrently gets an extra connection for the overlap; once idle it is kept as a spare, up
to ``batchPerHost`` connections per origin in all (Go's ``MaxIdleConnsPerHost`` under k6),
so that a ``vu.http.batch`` reuses its connections as k6's does.)
A connection the server closed while idle is seen closed (``connection_lost`` ran) and
replaced by a new dial. If the server closes it in the instant the request is written, the
request fails before any response byte; on a *reused* connection a replayable request
(GET, HEAD, OPTIONS, TRACE, or one with an ``Idempotency-Key``) is then sent once more on a
fresh connection, as Go's transport (k6's) does.

HTTP/2: over TLS the dial offers ``h2`` and ``http/1.1`` by ALPN (``http2=False``: only the
latter); when the server picks ``h2`` the connection is an :class:`~.h2conn.H2Connection`
and each exchange is a :class:`~.h2stream.Stream` on it, which ``send`` reads exactly as it
reads an HTTP/1.1 exchange. A request the server did not process (GOAWAY past it,
REFUSED_STREAM) is sent once more whatever its method, as Go does. The h2 parts of this
module are marked ``# HTTP/2``: the dial's ALPN check, the open of a stream and the retry
of an unprocessed one in ``send``, and the first lines of ``_release``; ``_pooled`` and
``_release_stream`` sit between ``HTTP/2 begins`` and ``HTTP/2 ends``. Idle spares are
HTTP/1.1's only: an h2 connection takes a batch's requests as streams.

What is written: the request line, ``Host``, the caller's headers, and the framing, which
is this transport's alone: ``Content-Length`` for a body (and for a bodiless POST, PUT or
PATCH), never a ``Transfer-Encoding``; one given by the caller is dropped, as Go drops it.


Dialling: the one address k6's dialer would pick (``hosts``, else the worker's DNS cache,
``dns.policy`` and ``dns.select``: :mod:`surge.worker.http.dns`; none for an IP address),
then TCP, then TLS as its own step (``start_tls``), so that the handshake has its own
figure; all within the request's deadline (else k6's dial timeout, 1211). Redirects follow
``surge.worker.http.redirects``; each hop becomes a Response of its own in ``hops``, with its
own timings and bytes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from time import perf_counter
from typing import cast

from multidict import CIMultiDict, CIMultiDictProxy, istr

from surge.common.http_options import HttpOptions
from surge.worker.http.dns import Resolver
from surge.worker.http.redirects import REDIRECT_STATUSES, next_hop
from surge.worker.http.response import Response, Timings
from surge.worker.http.tls import client_context
from surge.worker.http.transport import DEFAULT_MAX_BODY_BYTES, BaseTransport, LoadHalted
from surge.worker.http.transports.fast.connection import Connection
from surge.worker.http.transports.fast.cookies import Jar
from surge.worker.http.transports.fast.errors import (
    TRANSPORT_ERRORS,
    DialError,
    DialTimeoutError,
    ServerClosedError,
    classify_error,
)
from surge.worker.http.transports.fast.h2conn import ALPN, ALPN_HTTP1, H2Connection
from surge.worker.http.transports.fast.h2errors import Http2Error
from surge.worker.http.transports.fast.h2stream import Stream, request_fields
from surge.worker.http.transports.fast.message import Headers, decompress
from surge.worker.http.transports.fast.url import Target

__all__ = ["FastTransport"]

# Go's Request.isReplayable: what may be sent again after a reused connection failed.
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # a bodiless one still says Content-Length: 0
_MAX_TARGETS = 1024
# istr keys: multidict folds a plain str key's case on every lookup, an istr's once.
_HOST, _CONTENT_LENGTH, _CONNECTION, _TRANSFER_ENCODING = map(
    istr, ("Host", "Content-Length", "Connection", "Transfer-Encoding")
)
# What _block made of each read-only headers object it was given, by id (the object kept too).
_BLOCKS: dict[int, tuple[object, tuple[str | None, str, bool]]] = {}
_MAX_BLOCKS = 256


def _has_crlf(text: str) -> bool:
    return "\n" in text or "\r" in text


def _block(headers: Mapping[str, str], cookie: str | None, auth: str | None) -> tuple[str | None, str, bool]:
    """The header lines this transport writes for ``headers`` (each ending in CRLF), the Host
    they override (None: the target's), and whether they ask to close the connection.

    The framing is this transport's alone: a body of known length goes with Content-Length,
    and a Transfer-Encoding it was given is dropped, as Go's net/http drops it (sending both is
    the shape of request smuggling). ``cookie`` (the jar's) and ``auth`` (the URL's userinfo)
    are merged in. A CR or LF in a name or value is refused, as Go refuses it.
    """
    if not isinstance(headers, (CIMultiDict, CIMultiDictProxy)):
        headers = CIMultiDict(headers)
    host: str | None = None
    close = False
    if (
        _HOST in headers
        or _CONTENT_LENGTH in headers
        or _CONNECTION in headers
        or _TRANSFER_ENCODING in headers
        or cookie
        or auth
    ):
        # The uncommon path: headers this transport writes itself, or merges.
        fields = CIMultiDict(headers)
        host = fields.pop("Host", None)
        fields.popall("Content-Length", None)
        fields.popall("Transfer-Encoding", None)
        close = fields.get("Connection", "").lower() == "close"
        if cookie:
            mine = fields.get("Cookie")
            fields["Cookie"] = f"{mine}; {cookie}" if mine else cookie
        if auth and "Authorization" not in fields:
            fields["Authorization"] = auth
        headers = fields
    lines = "\r\n".join(map(": ".join, headers.items()))  # no Python frame per header
    if lines:
        lines += "\r\n"
    n = len(headers)
    if lines.count("\n") != n or lines.count("\r") != n:
        raise ValueError("Newline or carriage return character detected in HTTP header")
    return host, lines, close


def _replayable(method: str, headers: Mapping[str, str]) -> bool:
    return method in _REPLAYABLE or "Idempotency-Key" in headers or "X-Idempotency-Key" in headers


class FastTransport(BaseTransport):
    """One VU's connections (one per origin), cookie jar and redirects, on raw protocols.

    ``options`` are k6's HTTP options that a transport applies (``insecureSkipTLSVerify``,
    ``tlsVersion``; ``verify_tls=False`` is the first too); ``ssl_context`` replaces the
    context they make (e.g. to trust a private CA; its ALPN protocols are set to what this
    transport offers). ``resolver`` is where connections go (k6's ``hosts`` and ``dns``:
    :mod:`surge.worker.http.dns`), shared by a worker's VUs; without one the transport has
    its own. ``http2=False`` offers only HTTP/1.1 over TLS (k6 has only
    ``GODEBUG=http2client=0`` for it).
    """

    def __init__(
        self,
        *,
        verify_tls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        options: HttpOptions | None = None,
        resolver: Resolver | None = None,
        http2: bool = True,
    ) -> None:
        super().__init__(max_body_bytes=max_body_bytes)
        if options is not None:
            verify_tls = verify_tls and not options.insecure_skip_tls_verify
        alpn = ALPN if http2 else ALPN_HTTP1
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(list(alpn))
        # ALPN is in the shared context's key: the aiohttp transport's offers no h2 (tls.py)
        self._ssl_context = ssl_context or client_context(
            verify_tls, options.tls_min if options else None, options.tls_max if options else None, alpn
        )
        self._resolver = resolver if resolver is not None else Resolver()
        self._conns: dict[tuple[str, str, int], Connection | H2Connection] = {}
        # Idle connections beside the pooled one, left by requests that overlapped (a batch):
        # Go keeps up to MaxIdleConnsPerHost per host, k6's batchPerHost (Go's 2 for 0).
        self._spare: dict[tuple[str, str, int], list[Connection]] = {}
        self._max_spare = ((options.batch_per_host if options is not None else 6) or 2) - 1
        self._targets: dict[str, Target] = {}
        self._jar = Jar()

    def _target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            target = Target(url)
            if len(self._targets) >= _MAX_TARGETS:  # URLs with ids in them: do not grow forever
                self._targets.clear()
            self._targets[url] = target
        return target

    def _encode(
        self, method: str, target: Target, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[bytes, bool]:
        """The request's bytes, and whether the client asked to close the connection after it.

        A ``CIMultiDictProxy`` given as ``headers`` is taken as read-only and its lines are kept
        (the client's are: :func:`surge.worker.http.client._merged_headers` makes one per set and
        keeps no way to change it); any other mapping is encoded anew each time.
        """
        cookie = self._jar.header(target) if self._jar else None
        if cookie is None and not target.auth and isinstance(headers, CIMultiDictProxy):
            # Read-only headers (the client's, one object per distinct set): encoded once.
            hit = _BLOCKS.get(id(headers))
            if hit is not None and hit[0] is headers:
                block = hit[1]
            else:
                block = _block(headers, None, None)
                if len(_BLOCKS) >= _MAX_BLOCKS:
                    _BLOCKS.clear()
                _BLOCKS[id(headers)] = (headers, block)  # kept alive with it: its id is not reused meanwhile
        else:
            block = _block(headers, cookie, target.auth)
        host, lines, close = block
        if host is None:
            host = target.host_header
        if _has_crlf(method) or _has_crlf(target.path) or _has_crlf(host):
            raise ValueError("Newline or carriage return character detected in HTTP header")
        if body is not None:
            head = f"{method} {target.path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
        elif method in _BODY_METHODS:
            head = f"{method} {target.path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: 0\r\n\r\n"
        else:
            head = f"{method} {target.path} HTTP/1.1\r\nHost: {host}\r\n{lines}\r\n"
        data = head.encode("utf-8")
        return (data + body if body else data), close

    async def _dial(
        self, target: Target, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> Connection | H2Connection:
        """A new connection to ``target``, within the request's deadline: HTTP/2 if ALPN chose it."""
        conn = Connection(target.key, target.tls, True, self.max_body_bytes)
        try:
            async with asyncio.timeout_at(deadline):
                # k6's dialer: hosts, then the (cached) lookup, and one address by select/policy
                ip, port = (target.host, target.port) if target.ip else await self._resolver.resolve(
                    target.host, target.port
                )
                conn.conn_start = perf_counter()
                try:
                    await loop.create_connection(conn.itself, ip, port)
                except OSError as exc:
                    raise DialError(exc) from exc
                conn.connected = perf_counter()
                if target.tls:
                    raw = cast(asyncio.Transport, conn.transport)
                    tls = await loop.start_tls(raw, conn, self._ssl_context, server_hostname=target.host)
                    if tls is None:  # the peer closed during the handshake
                        raise ServerClosedError()
                    conn.transport = tls
                    tls.set_write_buffer_limits(high=0)
                    conn.tls_done = perf_counter()
                    tls_object = tls.get_extra_info("ssl_object")  # HTTP/2: the server picked h2
                    if tls_object is not None and tls_object.selected_alpn_protocol() == "h2":
                        stamps = (conn.conn_start, conn.connected, conn.tls_done)
                        return H2Connection(target.key, tls, stamps, max_body=self.max_body_bytes)
        except TimeoutError as exc:  # the deadline, or the TLS handshake's own timeout
            if conn.transport is not None:
                conn.transport.abort()
            raise DialTimeoutError("dial: i/o timeout") from exc
        except BaseException:
            if conn.transport is not None:
                conn.transport.abort()
            raise
        return conn

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_redirects: int,
        keep_body: bool = True,
    ) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        hop_url = url
        redirects = bytes_sent = bytes_received = 0  # the bytes of this hop (a retry included)
        hops: list[Response] | None = None  # the redirects before this hop, each its own request
        conn: Connection | Stream | None = None  # the exchange in flight: a connection, or an HTTP/2 stream
        data = b""
        try:
            while True:  # one hop per turn
                conn = None
                target = self._target(hop_url)
                data, close = self._encode(method, target, headers, body)
                t_start = perf_counter()  # k6's GetConn: the request is built, a connection is wanted
                retried = False
                while True:  # one attempt per turn: at most one retry on a fresh connection
                    conn = None  # a failed dial holds no connection (zero timings)
                    link = self._conns.get(target.key)
                    if link is None or not link.usable():
                        link = self._take_spare(target.key) if self._spare else None
                        if link is None:
                            link = self._pooled(await self._dial(target, deadline, loop))
                    if self.fence is not None and not self.fence():
                        # here, at the write: a dial that began before the worker froze ends after
                        await asyncio.sleep(0)  # as in HttpClient.request: let the VU's cancel land
                        raise LoadHalted("not sent: this worker's coordinator has gone silent, so its load stops")
                    if isinstance(link, H2Connection):  # HTTP/2: the request is a stream on it
                        cookie = self._jar.header(target) if self._jar else None
                        fields = request_fields(
                            method, target.host_header, target.path, headers, body, cookie, target.auth
                        )
                        conn = link.open(fields, body, t_start, deadline, loop, keep_body)
                        waiter = cast(asyncio.Future[None], conn.waiter)
                        bytes_sent += conn.n_out
                    else:
                        conn = link
                        waiter = conn.exchange(data, method == "HEAD", t_start, deadline, loop, keep_body)
                        bytes_sent += len(data)
                    try:
                        await waiter
                        break
                    except (OSError, ServerClosedError) as exc:
                        if (
                            retried
                            or conn.fresh
                            or conn.n_in
                            or isinstance(exc, TimeoutError)
                            or not _replayable(method, headers)
                        ):
                            raise
                        retried = True  # the server closed a keep-alive connection as we wrote
                        self._drop(conn)
                    except Http2Error as exc:  # HTTP/2
                        if retried or not exc.unprocessed:
                            raise
                        retried = True  # GOAWAY or REFUSED_STREAM: the server did not process it (Go retries)
                        self._drop(conn)
                bytes_received += conn.n_in
                status = conn.status
                if conn.set_cookies is not None:
                    self._jar.store(target, conn.set_cookies)
                content = conn.body_bytes()
                if conn.encoding is not None and content:
                    content = decompress(conn.encoding, content, self.max_body_bytes)
                timings = conn.timings(conn.t_done)
                raw = conn.raw
                proto = conn.proto
                location = conn.location if status in REDIRECT_STATUSES else None
                self._release(conn, conn.keep_alive and not close)
                conn = None
                if location is None or redirects >= max_redirects:
                    return Response(
                        method,
                        url if redirects == 0 else hop_url,
                        status,
                        body=content,
                        headers=Headers(raw),
                        timings=timings,
                        bytes_sent=bytes_sent,
                        bytes_received=bytes_received,
                        hops=tuple(hops) if hops else (),
                        proto=proto,
                    )
                hop = Response(method, hop_url, status, headers=Headers(raw), timings=timings,
                               bytes_sent=bytes_sent, bytes_received=bytes_received, proto=proto)  # fmt: skip
                hops = [hop] if hops is None else [*hops, hop]
                bytes_sent = bytes_received = 0
                redirects += 1
                method, hop_url, headers, body = next_hop(
                    status, target.url, target.host, location.decode("latin-1"), method, headers, body
                )
        except asyncio.CancelledError:
            # The VU was stopped mid-request. If the request was written, the server has it:
            # keep it as a failed request so surge's count matches what the server saw.
            if conn is not None and conn.busy:  # exchange() wrote the request
                done = perf_counter()
                self._interrupt(
                    method, hop_url, conn.timings(done), bytes_sent, bytes_received + conn.n_in, tuple(hops or ())
                )
            if conn is not None:
                self._drop(conn)
            raise
        except TRANSPORT_ERRORS as exc:
            done = perf_counter()
            timings = Timings()
            if conn is not None:
                timings = conn.timings(done)
                bytes_received += conn.n_in
                self._drop(conn)
            return Response.failed(
                method,
                hop_url,
                exc,
                classify=classify_error,
                timings=timings,
                bytes_sent=bytes_sent,
                bytes_received=bytes_received,
                hops=tuple(hops or ()),
            )

    # ------------------------------------------------------------------ HTTP/2 begins

    def _pooled(self, link: Connection | H2Connection) -> Connection | H2Connection:
        """A connection just dialled, pooled if the origin has none alive; the one to use now.

        An HTTP/2 dial that lost a race to another one that can take a stream is closed and
        the other used (Go's ``addConnIfNeeded``); one dialled past the pooled connection's
        stream limit serves its request and closes (``spare``).
        """
        pooled = self._conns.get(link.key)
        if pooled is None or pooled.closed or (isinstance(pooled, H2Connection) and pooled.going_away):
            self._conns[link.key] = link  # one going away closes by itself when its streams end
        elif isinstance(link, H2Connection):
            if isinstance(pooled, H2Connection) and pooled.usable():
                link.shut(abort=True)
                return pooled
            link.spare = True
        return link

    def _release_stream(self, stream: Stream, keep: bool) -> None:
        """An HTTP/2 stream is done; its connection stays pooled unless ``keep`` is False
        (``noConnectionReuse``: a new connection per request), then it closes once idle."""
        stream.shut(abort=False)
        if not keep:
            link = cast(H2Connection, stream.link)
            if self._conns.get(link.key) is link:
                del self._conns[link.key]
            link.spare = True  # closed when its last stream ends
            if not link.streams:
                link.shut(abort=False)

    # ------------------------------------------------------------------ HTTP/2 ends

    def _release(self, conn: Connection | Stream, keep: bool) -> None:
        """Back to the pool after a complete exchange, or closed."""
        if isinstance(conn, Stream):  # HTTP/2, before any of the spare logic below
            self._release_stream(conn, keep)
            return
        conn.busy = False
        conn.fresh = False
        conn.forget()
        key = conn.key
        pooled = self._conns.get(key)
        if keep and not conn.closed:
            if pooled is conn:
                return
            if pooled is None or pooled.closed:
                self._conns[key] = conn
                return
            spares = self._spare.setdefault(key, [])
            if len(spares) < self._max_spare:
                spares.append(conn)
                return
        if pooled is conn:
            del self._conns[key]
        conn.shut(abort=False)

    def _take_spare(self, key: tuple[str, str, int]) -> Connection | None:
        """An idle spare connection to ``key`` still open, or None (the closed ones are let go)."""
        spares = self._spare.get(key)
        while spares:
            conn = spares.pop()
            if conn.usable():
                return conn
            conn.shut(abort=True)
        return None

    def _drop(self, conn: Connection | Stream) -> None:
        """Abort a connection whose state is unknown (failed, timed out, cancelled mid-exchange)."""
        if self._conns.get(conn.key) is conn:
            del self._conns[conn.key]
        conn.shut(abort=True)

    async def close_idle(self) -> None:
        """Close the connections no request is using (k6's ``noVUConnectionReuse``, each iteration)."""
        for key, conn in list(self._conns.items()):
            if not conn.busy:
                del self._conns[key]
                conn.shut(abort=False)
        spares, self._spare = [c for cs in self._spare.values() for c in cs], {}
        for conn in spares:
            conn.shut(abort=False)

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        conns += [c for cs in self._spare.values() for c in cs]
        self._spare = {}
        for conn in conns:
            conn.shut(abort=False)
        if conns:
            await asyncio.sleep(0)  # let the closed sockets' transports finish on this loop


"""ZeroMQ transport: the only surge module that imports ``zmq``.

The coordinator binds a ROUTER socket; every worker connects a DEALER. ROUTER prefixes each
incoming frame with the sender's identity, which is how the coordinator tells workers apart
and answers one of them. Frames are :mod:`surge.common.protocol` messages.

Choices, and why:

* ``ROUTER_MANDATORY``: a send to a worker that has gone away raises instead of being
  silently dropped, so the coordinator learns of it at once.
* ``LINGER`` is bounded: closing never hangs a process on a peer that will not read.
* A frame that does not decode is returned as a :class:`ProtocolError` value, not raised, so
  one bad peer cannot take down a run; the caller logs and counts it.
* CURVE keys (when given) encrypt and authenticate both ends, for runs that leave one machine.
"""

from __future__ import annotations

import zmq
import zmq.asyncio

from surge.common.errors import ProtocolError
from surge.common.protocol import Message, decode, encode

_LINGER_MS = 2000


class PeerGone(Exception):
    """The peer this message was addressed to is not connected (any more)."""


class RouterChannel:
    """The coordinator's end: many workers, addressed by their ZeroMQ identity."""

    def __init__(self, bind: str, *, curve_secret_key: bytes | None = None) -> None:
        self._ctx = zmq.asyncio.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, _LINGER_MS)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if curve_secret_key is not None:
            self._sock.curve_secretkey = curve_secret_key
            self._sock.curve_server = True
        self._sock.bind(bind)
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    async def recv(self) -> tuple[bytes, Message | ProtocolError]:
        frames = await self._sock.recv_multipart()
        if len(frames) != 2:
            return frames[0], ProtocolError(f"expected [identity, frame], got {len(frames)} frames")
        try:
            return frames[0], decode(frames[1])
        except ProtocolError as exc:
            return frames[0], exc

    async def send(self, identity: bytes, msg: Message) -> None:
        try:
            await self._sock.send_multipart([identity, encode(msg)])
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                raise PeerGone(identity.hex()) from None
            raise

    def close(self) -> None:
        self._sock.close()
        self._ctx.term()


class DealerChannel:
    """A worker's end: one coordinator."""

    def __init__(
        self,
        connect: str,
        *,
        curve_server_key: bytes | None = None,
        curve_keypair: tuple[bytes, bytes] | None = None,
    ) -> None:
        self._ctx = zmq.asyncio.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, _LINGER_MS)
        if curve_server_key is not None:
            public, secret = curve_keypair if curve_keypair is not None else zmq.curve_keypair()
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
            self._sock.curve_serverkey = curve_server_key
        self._sock.connect(connect)

    async def recv(self) -> Message | ProtocolError:
        frames = await self._sock.recv_multipart()
        try:
            return decode(frames[-1])
        except ProtocolError as exc:
            return exc

    async def send(self, msg: Message) -> None:
        await self._sock.send_multipart([encode(msg)])

    def close(self) -> None:
        self._sock.close()
        self._ctx.term()


def curve_keypair() -> tuple[bytes, bytes]:
    """A new (public, secret) CURVE key pair, Z85-encoded."""
    public, secret = zmq.curve_keypair()
    return public, secret

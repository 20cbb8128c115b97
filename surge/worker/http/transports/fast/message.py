"""What the fast transport makes of a response: lazily decoded headers, a decompressed body.

The body is decoded (gzip, deflate) only up to the transport's ``max_body_bytes``: a small
gzip can inflate a lot, and past the cap the request fails with k6's 1700. A coding this
client does not request (br, zstd) is returned as received.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from surge.worker.http.errors import BodyTooLargeError

__all__ = ["Headers", "decompress"]

class Headers(Mapping[str, str]):
    """A response's headers, decoded into a case-insensitive multidict only when first read.

    Most load-test scripts never look at headers, so the raw ``(name, value)`` pairs from
    the parser are all a response costs until then.
    """

    __slots__ = ("_multi", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._multi: CIMultiDictProxy[str] | None = None

    def _decoded(self) -> CIMultiDictProxy[str]:
        multi = self._multi
        if multi is None:
            md: CIMultiDict[str] = CIMultiDict()
            for name, value in self._raw:
                md.add(name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
            multi = self._multi = CIMultiDictProxy(md)
        return multi

    def __getitem__(self, key: str) -> str:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._decoded()

    def getall(self, key: str) -> list[str]:
        """Every value of a repeated header (``Set-Cookie``), like multidict's."""
        return self._decoded().getall(key, [])

    def __repr__(self) -> str:
        return f"<Headers {list(self._decoded().items())!r}>"


def decompress(encoding: bytes, body: bytes, limit: int) -> bytes:
    """The decoded body; ``BodyTooLargeError`` past ``limit`` bytes (a small gzip can inflate a lot)."""
    coding = encoding.strip().lower()
    if coding in (b"gzip", b"x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, limit)
    if coding == b"deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, limit)
        except zlib.error:  # servers that send raw deflate without the zlib wrapper
            return _inflate(body, -zlib.MAX_WBITS, limit)
    return body  # identity, or a coding this client does not request (br, zstd): as received


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise BodyTooLargeError(limit)
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")  # as zlib.decompress says it
    return out

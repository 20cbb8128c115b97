"""k6's error classification: every exception aiohttp or httptools can raise has an explicit
rule (meta-tests that walk the libraries), and examples of what each maps to.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import inspect
import pkgutil
import socket
import ssl
import zlib

import aiohttp
import httptools
import pytest
from aiohttp import client_exceptions, http_exceptions
from aiohttp.client_reqrep import ConnectionKey
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from surge.worker.http import ErrorCode, InvalidURLError
from surge.worker.http.errors import dial_error
from surge.worker.http.transports.aiohttp import ERROR_RULES, TRANSPORT_ERRORS, classify_error
from surge.worker.http.transports.fast import ERROR_RULES as FAST_ERROR_RULES
from surge.worker.http.transports.fast import TRANSPORT_ERRORS as FAST_TRANSPORT_ERRORS
from surge.worker.http.transports.fast import DialError, DialTimeoutError, ServerClosedError, TruncatedResponseError
from surge.worker.http.transports.fast import classify_error as fast_classify_error


# ---------------------------------------------------------------------------- error classification

CONN_KEY = ConnectionKey("127.0.0.1", 1, False, True, None, None, None, None)


def _aiohttp_error_classes() -> set[type[BaseException]]:
    """Every ClientError and HttpProcessingError subclass aiohttp defines, found by walking it."""
    found: set[type[BaseException]] = set()
    modules = [aiohttp]
    for info in pkgutil.walk_packages(aiohttp.__path__, "aiohttp."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # optional extras (gunicorn worker, ...)
            continue
    roots = (aiohttp.ClientError, http_exceptions.HttpProcessingError)
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, roots) and obj.__module__.startswith("aiohttp"):
                found.add(obj)
    stack: list[type[BaseException]] = list(roots)
    while stack:
        cls = stack.pop()
        if cls.__module__.startswith("aiohttp"):
            found.add(cls)
        stack.extend(cls.__subclasses__())
    return found


STDLIB_ERRORS: set[type[BaseException]] = {
    TimeoutError,
    asyncio.TimeoutError,
    ValueError,
    OSError,
    ConnectionError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    socket.gaierror,
    socket.herror,
    ssl.SSLError,
    ssl.SSLCertVerificationError,
    ssl.CertificateError,
    ssl.SSLZeroReturnError,
    ssl.SSLWantReadError,
    ssl.SSLWantWriteError,
    ssl.SSLSyscallError,
    ssl.SSLEOFError,
}

# Where GENERIC (1000) is the intended answer: k6 has no more specific code for these.
INTENDED_GENERIC = {
    ValueError,
    aiohttp.ClientError,
    aiohttp.ClientResponseError,
    aiohttp.ContentTypeError,
    aiohttp.WSServerHandshakeError,
    aiohttp.ClientHttpProxyError,
    aiohttp.TooManyRedirects,
    aiohttp.UploadAbortedError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    http_exceptions.HttpProcessingError,
    http_exceptions.BadHttpMessage,
    http_exceptions.HttpBadRequest,
    http_exceptions.PayloadEncodingError,
    http_exceptions.TransferEncodingError,
    http_exceptions.ContentLengthError,
    http_exceptions.LineTooLong,
    http_exceptions.InvalidHeader,
    http_exceptions.BadStatusLine,
    http_exceptions.BadHttpMethod,
    http_exceptions.InvalidURLError,
}


def _instance(cls: type[BaseException]) -> BaseException:
    """A plausible instance of ``cls``, whatever its constructor wants."""
    if issubclass(cls, client_exceptions.UnixClientConnectorError):
        return cls("/tmp/s", CONN_KEY, OSError(errno.ENOENT, "no such file"))
    if issubclass(cls, aiohttp.ClientConnectorCertificateError):
        return cls(CONN_KEY, ssl.SSLCertVerificationError("bad cert"))
    if issubclass(cls, aiohttp.ClientConnectorError):
        return cls(CONN_KEY, OSError(errno.EHOSTUNREACH, "unreachable"))
    if issubclass(cls, aiohttp.ServerFingerprintMismatch):
        return cls(b"a", b"b", "127.0.0.1", 1)
    if issubclass(cls, aiohttp.ClientResponseError):
        info = aiohttp.RequestInfo(
            URL("http://127.0.0.1/"), "GET", CIMultiDictProxy(CIMultiDict()), URL("http://127.0.0.1/")
        )
        return cls(info, (), status=502, message="Bad Gateway")
    if issubclass(cls, aiohttp.InvalidURL):
        return cls("http://")
    if issubclass(cls, http_exceptions.LineTooLong):
        return cls("line", "8190")
    if issubclass(cls, http_exceptions.InvalidHeader):
        return cls(b"X-Bad")
    if issubclass(cls, http_exceptions.BadStatusLine):
        return cls("HTTP/9 x")
    if issubclass(cls, http_exceptions.HttpProcessingError):
        return cls(message="boom")
    return cls("boom")


def test_every_aiohttp_error_has_an_explicit_rule() -> None:
    classes = _aiohttp_error_classes() | STDLIB_ERRORS
    assert aiohttp.ClientConnectorDNSError in classes and http_exceptions.ContentLengthError in classes
    unmapped = sorted(c.__qualname__ for c in classes if c not in ERROR_RULES)
    assert unmapped == []
    for cls in classes:
        code, message = classify_error(_instance(cls))
        assert code in ErrorCode.__members__.values(), cls
        assert isinstance(message, str) and message, cls
        assert (code == ErrorCode.GENERIC) == (cls in INTENDED_GENERIC), cls
        assert isinstance(_instance(cls), TRANSPORT_ERRORS), cls


def test_an_unknown_exception_is_generic_with_its_name() -> None:
    class Odd(Exception):
        pass

    assert classify_error(Odd("x")) == (1000, "Odd: x")
    assert not isinstance(Odd("x"), TRANSPORT_ERRORS)


def _gaierror(num: int) -> socket.gaierror:
    return socket.gaierror(num, "lookup failed")


def _cert_error(code: int) -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_code = code
    err.verify_message = "whatever"
    return err


def _ssl_error(reason: str) -> ssl.SSLError:
    err = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    err.reason = reason
    return err


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (TimeoutError(), 1050),
        (aiohttp.SocketTimeoutError("read"), 1050),
        (aiohttp.ConnectionTimeoutError("dial"), 1211),
        (aiohttp.InvalidUrlClientError("nope"), 1020),
        (aiohttp.NonHttpUrlClientError("ftp://x"), 1020),
        (aiohttp.ClientConnectorError(CONN_KEY, ConnectionRefusedError(errno.ECONNREFUSED, "refused")), 1212),
        (aiohttp.ClientConnectorError(CONN_KEY, OSError(errno.ETIMEDOUT, "timed out")), 1211),
        (aiohttp.ClientConnectorError(CONN_KEY, OSError(errno.EHOSTUNREACH, "no route")), 1213),
        (aiohttp.ClientConnectorError(CONN_KEY, OSError("Multiple exceptions: ...")), 1210),
        (aiohttp.ClientConnectorError(CONN_KEY, ConnectionResetError()), 1220),  # a TLS handshake cut off
        (aiohttp.ClientConnectorDNSError(CONN_KEY, _gaierror(socket.EAI_NONAME)), 1101),
        (aiohttp.ClientConnectorDNSError(CONN_KEY, _gaierror(socket.EAI_AGAIN)), 1100),
        (_gaierror(socket.EAI_NONAME), 1101),
        (client_exceptions.UnixClientConnectorError("/s", CONN_KEY, OSError(errno.ENOENT, "x")), 1010),
        (aiohttp.ClientOSError(errno.ECONNRESET, "reset"), 1220),
        (aiohttp.ClientOSError(errno.EPIPE, "Can not write request body"), 1201),
        (aiohttp.ClientOSError(errno.EIO, "io"), 1202),
        (aiohttp.ClientOSError(), 1200),
        (ConnectionResetError(errno.ECONNRESET, "reset"), 1220),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), 1220),
        (BrokenPipeError(errno.EPIPE, "pipe"), 1201),
        (_chained(aiohttp.ClientConnectionError("Connection lost"), ConnectionResetError(errno.ECONNRESET, "r")), 1220),
        (aiohttp.ClientConnectionError("Connection closed"), 1200),
        (aiohttp.ServerDisconnectedError(), 1000),
        (aiohttp.ClientConnectorCertificateError(CONN_KEY, _cert_error(62)), 1311),
        (aiohttp.ClientConnectorCertificateError(CONN_KEY, _cert_error(20)), 1310),
        (aiohttp.ClientConnectorCertificateError(CONN_KEY, _cert_error(10)), 1300),
        (aiohttp.ClientConnectorSSLError(CONN_KEY, _ssl_error("WRONG_VERSION_NUMBER")), 1301),
        (aiohttp.ClientConnectorSSLError(CONN_KEY, _ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE")), 1300),
        (_cert_error(18), 1310),
        (_chained(aiohttp.ClientPayloadError("bad gzip"), http_exceptions.ContentEncodingError("gzip")), 1701),
        (_chained(aiohttp.ClientPayloadError("truncated"), http_exceptions.ContentLengthError("short")), 1000),
        (_chained(http_exceptions.HttpProcessingError(), http_exceptions.BadStatusLine("x")), 1000),
        (ValueError("Newline or carriage return character detected in HTTP header"), 1000),
    ],
)
def test_classification_examples(exc: BaseException, code: int) -> None:
    assert classify_error(exc)[0] == code


@given(st.integers(min_value=0, max_value=200))
def test_any_errno_maps_to_a_tcp_or_dial_code(num: int) -> None:
    tcp, _ = classify_error(aiohttp.ClientOSError(num, "x"))
    dial, _ = classify_error(aiohttp.ClientConnectorError(CONN_KEY, OSError(num, "x")))
    assert 1200 <= tcp < 1300 and 1200 <= dial < 1300


def test_a_dial_failure_without_text_still_says_what_it_was() -> None:
    assert dial_error(OSError()) == (ErrorCode.TCP_DIAL, "dial: OSError")
    assert dial_error(ConnectionResetError()) == (ErrorCode.TCP_RESET, "connection reset by peer")
    assert fast_classify_error(DialError(ConnectionResetError())) == (1220, "connection reset by peer")


def test_messages_are_low_cardinality() -> None:
    """The error text becomes a metric tag: it must not carry the host or port."""
    a = aiohttp.ClientConnectorError(
        ConnectionKey("127.0.0.1", 1111, False, True, None, None, None, None),
        ConnectionRefusedError(errno.ECONNREFUSED, "r"),
    )
    b = aiohttp.ClientConnectorError(
        ConnectionKey("10.0.0.1", 2222, False, True, None, None, None, None),
        ConnectionRefusedError(errno.ECONNREFUSED, "r"),
    )
    assert classify_error(a) == classify_error(b)


# ---------------------------------------------------------------------------- the fast transport's error rules


def _httptools_error_classes() -> set[type[BaseException]]:
    return {
        obj
        for _, obj in inspect.getmembers(httptools.parser.errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith("httptools")
    }


FAST_ERRORS: set[type[BaseException]] = {
    DialError,
    DialTimeoutError,
    ServerClosedError,
    TruncatedResponseError,
    InvalidURLError,
    zlib.error,
}

FAST_INTENDED_GENERIC = {ValueError, ServerClosedError, TruncatedResponseError}


def _fast_instance(cls: type[BaseException]) -> BaseException:
    if cls is DialError:
        return DialError(OSError(errno.EHOSTUNREACH, "no route"))
    return cls("boom")


def test_every_fast_transport_error_has_an_explicit_rule() -> None:
    httptools_errors = _httptools_error_classes()
    assert httptools.HttpParserError in httptools_errors and httptools.HttpParserUpgrade in httptools_errors
    classes = httptools_errors | FAST_ERRORS | STDLIB_ERRORS
    unmapped = sorted(c.__qualname__ for c in classes if c not in FAST_ERROR_RULES)
    assert unmapped == []
    for cls in classes:
        code, message = fast_classify_error(_fast_instance(cls))
        assert code in ErrorCode.__members__.values(), cls
        assert isinstance(message, str) and message, cls
        generic = cls in FAST_INTENDED_GENERIC or cls in httptools_errors
        assert (code == ErrorCode.GENERIC) == generic, cls
        assert isinstance(_fast_instance(cls), FAST_TRANSPORT_ERRORS), cls


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (DialError(ConnectionRefusedError(errno.ECONNREFUSED, "refused")), 1212, "dial: connection refused"),
        (DialError(OSError(errno.EHOSTUNREACH, "no route")), 1213, None),
        (DialError(OSError("Multiple exceptions: ...")), 1210, None),
        (DialError(socket.gaierror(socket.EAI_NONAME, "x")), 1101, "lookup: no such host"),
        (DialTimeoutError(), 1211, "dial: i/o timeout"),
        (TimeoutError(), 1050, "request timeout"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), 1220, "connection reset by peer"),
        (ServerClosedError(), 1000, "EOF (server closed the connection)"),
        (TruncatedResponseError(), 1000, "unexpected EOF"),
        (httptools.HttpParserInvalidStatusError("bad"), 1000, "malformed HTTP response"),
        (zlib.error("bad"), 1701, "error decompressing response body"),
        (InvalidURLError("x"), 1020, "invalid URL"),
        (_cert_error(62), 1311, "x509: certificate doesn't match hostname"),
    ],
)
def test_fast_classification_examples(exc: BaseException, code: int, message: str | None) -> None:
    got_code, got_message = fast_classify_error(exc)
    assert got_code == code
    assert message is None or got_message == message

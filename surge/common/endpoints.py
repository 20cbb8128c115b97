"""ZeroMQ endpoints as text: parsed, checked, and judged local or not (pure: no zmq, no socket).

libzmq is lenient where a load tester must not be: it takes ``tcp://host:99999`` and binds a
random port. :func:`check_endpoint` refuses that and every other endpoint surge does not use,
before any socket exists, and :func:`is_loopback_endpoint` is the rule behind the coordinator's
refusal to listen beyond this machine without keys.
"""

from __future__ import annotations

import ipaddress
import re


_PORT = re.compile(r"[0-9]{1,5}")
_HOST = re.compile(r"[A-Za-z0-9._*-]+")


def parse_tcp_endpoint(endpoint: str) -> tuple[str, int | None]:
    """``tcp://HOST:PORT`` -> ``(HOST, PORT)``; a port of ``*`` (any free port) gives ``None``.

    HOST is returned without IPv6 brackets (``tcp://[::1]:5557`` -> ``("::1", 5557)``). Raises
    ``ValueError``, naming the endpoint, for anything else: another transport, a missing or
    out-of-range port (1..65535), an empty or odd host, libzmq's ``source;destination`` form.
    """
    if not isinstance(endpoint, str):
        raise ValueError(f"endpoint must be a string, got {type(endpoint).__name__}")
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme != "tcp":
        raise ValueError(f"{endpoint!r}: expected tcp://HOST:PORT")
    if ";" in rest:
        raise ValueError(f"{endpoint!r}: the source;destination form is not supported")
    if rest.startswith("["):
        host, close, after = rest[1:].partition("]")
        if not close or not after.startswith(":"):
            raise ValueError(f"{endpoint!r}: expected tcp://[IPV6]:PORT")
        port_text = after[1:]
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            raise ValueError(f"{endpoint!r}: {host!r} is not an IPv6 address") from None
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            raise ValueError(f"{endpoint!r}: no port; expected tcp://HOST:PORT (PORT 1..65535 or *)")
        if ":" in host:
            raise ValueError(f"{endpoint!r}: write an IPv6 host in brackets, tcp://[{host}]:{port_text}")
        if not _HOST.fullmatch(host):
            raise ValueError(f"{endpoint!r}: {host!r} is not a host name, address, interface or *")
    if port_text == "*":
        return host, None
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{endpoint!r}: port {port_text!r} is not a number in 1..65535 (or * for any free port)")
    return host, int(port_text)


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether ``endpoint`` can only be reached from this machine (so CURVE may be skipped).

    ``ipc://`` and ``inproc://`` are local; ``tcp://`` is local for ``localhost``, 127.0.0.0/8
    and ``::1`` (also as ``::ffff:127.x.x.x``). Conservative: ``*``, ``0.0.0.0``, any other
    host, and interface names (even ``lo``) count as reachable from outside; other transports
    (``pgm``, ``udp``, ``ws``...) too. A malformed endpoint raises ``ValueError``.
    """
    scheme, sep, rest = endpoint.partition("://") if isinstance(endpoint, str) else ("", "", "")
    if sep and scheme in ("ipc", "inproc"):
        if not rest:
            raise ValueError(f"{endpoint!r}: empty {scheme} address")
        return True
    if not sep or scheme != "tcp":
        if sep and re.fullmatch(r"[a-z]+", scheme):
            return False  # another transport: not ours to vouch for
        raise ValueError(f"{endpoint!r}: expected tcp://HOST:PORT, ipc://PATH or inproc://NAME")
    host, _ = parse_tcp_endpoint(endpoint)
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if surge can use it: ``tcp://HOST:PORT`` (PORT 1-65535 or ``*``), ``ipc://PATH``
    or ``inproc://NAME``; else ``ValueError`` saying what was expected."""
    scheme, sep, rest = endpoint.partition("://")
    if sep and scheme in ("ipc", "inproc") and rest:
        return endpoint
    parse_tcp_endpoint(endpoint)
    return endpoint


def parse_listen_address(text: str, *, flag: str, default_host: str = "127.0.0.1",
                         allow_zero: bool = True) -> tuple[str, int]:
    """``PORT``, ``ADDR:PORT`` or ``[IPV6]:PORT`` (an HTTP listener's flag) -> ``(host, port)``.

    The host defaults to loopback; a port of 0 (when allowed) asks the system for a free one.
    Raises ``ValueError`` naming ``flag`` and the form expected.
    """
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host = default_host
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{flag} {text!r}: write an IPv6 address in brackets, e.g. [::1]:{port_text or 'PORT'}")
    if not host:
        host = default_host
    if not port_text.isdigit():
        raise ValueError(f"{flag} {text!r}: expected [ADDR:]PORT, e.g. 5665 or 127.0.0.1:5665")
    port, lowest = int(port_text), 0 if allow_zero else 1
    if not lowest <= port <= 65535:
        free = " (0 picks a free one)" if allow_zero else ""
        raise ValueError(f"{flag} {text!r}: port must be {lowest}..65535{free}, got {port}")
    return host, port

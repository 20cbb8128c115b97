"""Endpoints as text: the port range libzmq does not check, and which endpoints are local."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.common.endpoints import check_endpoint, is_loopback_endpoint, parse_tcp_endpoint




@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("tcp://127.0.0.1:5557", True),
        ("tcp://127.1.2.3:1", True),
        ("tcp://[::1]:5557", True),
        ("tcp://[::ffff:127.0.0.1]:5557", True),
        ("tcp://localhost:5557", True),
        ("tcp://127.0.0.1:*", True),
        ("ipc:///tmp/surge.sock", True),
        ("inproc://surge", True),
        ("tcp://0.0.0.0:5557", False),
        ("tcp://*:5557", False),
        ("tcp://[::]:5557", False),
        ("tcp://10.0.0.5:5557", False),
        ("tcp://jumpbox:5557", False),
        ("tcp://lo:5557", False),  # an interface name: conservative
        ("tcp://128.0.0.1:5557", False),
        ("ws://127.0.0.1:5557", False),
        ("pgm://eth0;239.192.1.1:5555", False),
    ],
)
def test_loopback_endpoints(endpoint: str, local: bool) -> None:
    assert is_loopback_endpoint(endpoint) is local


@pytest.mark.parametrize(
    ("endpoint", "parsed"),
    [
        ("tcp://127.0.0.1:5557", ("127.0.0.1", 5557)),
        ("tcp://*:5557", ("*", 5557)),
        ("tcp://0.0.0.0:*", ("0.0.0.0", None)),
        ("tcp://[::1]:65535", ("::1", 65535)),
        ("tcp://jumpbox.example.com:1", ("jumpbox.example.com", 1)),
    ],
)
def test_tcp_endpoints_parse(endpoint: str, parsed: tuple[str, int | None]) -> None:
    assert parse_tcp_endpoint(endpoint) == parsed


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("tcp://127.0.0.1:99999", "port '99999' is not a number in 1..65535"),
        ("tcp://127.0.0.1:0", "port '0' is not a number in 1..65535"),
        ("tcp://127.0.0.1:", "port '' is not a number"),
        ("tcp://127.0.0.1", "no port"),
        ("tcp://127.0.0.1:55x", "port '55x'"),
        ("tcp://127.0.0.1:٣", "port '٣'"),  # a digit, but not an ASCII one
        ("tcp://:5557", "'' is not a host"),
        ("tcp://::1:5557", "IPv6 host in brackets"),
        ("tcp://[nope]:5557", "not an IPv6 address"),
        ("tcp://[::1]5557", "expected tcp://[IPV6]:PORT"),
        ("tcp://10.0.0.1;10.0.0.2:5557", "source;destination"),
        ("udp://127.0.0.1:5557", "expected tcp://HOST:PORT"),
        ("127.0.0.1:5557", "expected tcp://HOST:PORT"),
        ("", "expected tcp://HOST:PORT"),
    ],
)
def test_bad_tcp_endpoints_are_refused_with_a_reason(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_tcp_endpoint(endpoint)


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:99999", "garbage", "ipc://", "TCP://x:1"])
def test_malformed_endpoints_are_not_called_remote_or_local(endpoint: str) -> None:
    with pytest.raises(ValueError):
        is_loopback_endpoint(endpoint)


_ENDPOINTISH = st.one_of(
    st.text(),
    st.builds(lambda s, h, p: f"{s}{h}:{p}", st.sampled_from(["tcp://", "ipc://", "inproc://", "", "x://"]), st.text(), st.text()),
)


@given(_ENDPOINTISH)
def test_endpoint_helpers_raise_nothing_but_value_error(text: str) -> None:
    for f in (parse_tcp_endpoint, is_loopback_endpoint):
        try:
            f(text)
        except ValueError:
            pass


@given(st.integers(min_value=1, max_value=65535), st.sampled_from(["127.0.0.1", "10.1.2.3", "*", "localhost"]))
def test_every_valid_port_round_trips(port: int, host: str) -> None:
    assert parse_tcp_endpoint(f"tcp://{host}:{port}") == (host, port)




@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5557", "tcp://*:*", "ipc:///tmp/surge.sock", "inproc://x"])
def test_check_endpoint_takes_what_surge_uses(endpoint: str) -> None:
    assert check_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1", "ipc://", "udp://x:1", "x"])
def test_check_endpoint_refuses_the_rest(endpoint: str) -> None:
    with pytest.raises(ValueError):
        check_endpoint(endpoint)


def test_listen_addresses_of_the_http_flags_name_the_flag_and_the_form() -> None:
    from surge.common.endpoints import parse_listen_address

    assert parse_listen_address("9464", flag="--x") == ("127.0.0.1", 9464)
    assert parse_listen_address("[::1]:0", flag="--x") == ("::1", 0)
    assert parse_listen_address("0.0.0.0:80", flag="--x", default_host="::1") == ("0.0.0.0", 80)
    for text, says in (("0", "port must be 1..65535"), ("::1:80", "in brackets"), ("h:", "expected [ADDR:]PORT"),
                       ("70000", "port must be 1..65535")):
        with pytest.raises(ValueError, match=re.escape(f"--x {text!r}: ") + ".*" + re.escape(says)):
            parse_listen_address(text, flag="--x", allow_zero=False)

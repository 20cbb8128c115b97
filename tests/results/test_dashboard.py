"""The live dashboard's server, in process: its address, its stream, its cost per snapshot, its end."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from typing import Any

import aiohttp
import pytest

from surge.common.errors import ExitCode
from surge.common.metrics import CounterSink
from surge.common.endpoints import parse_listen_address
from surge.results.dashboard import Dashboard, DashboardError, is_loopback
from surge.results.live import LiveSnapshot
from surge.results.live_document import LiveDocuments
from surge.results.timeline import Timeline


@pytest.mark.parametrize(("text", "expected"), [
    ("5665", ("127.0.0.1", 5665)),
    ("0", ("127.0.0.1", 0)),
    (":5665", ("127.0.0.1", 5665)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:5665", ("::1", 5665)),
    ("localhost:1", ("localhost", 1)),
])
def test_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text, flag="--dashboard") == expected


@pytest.mark.parametrize(("text", "message"), [("abc", "expected [ADDR:]PORT"), ("1:70000", "0..65535"), ("", "expected")])
def test_bad_addresses_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_listen_address(text, flag="--dashboard")



def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.com")


def _snapshot(elapsed_s: float, requests: float) -> LiveSnapshot:
    tl = Timeline(1.0, 10.0, ["w-0"])
    for k in range(1, int(elapsed_s) + 1):
        tl.add(0, float(k), {"http_reqs": CounterSink(requests)})
    return LiveSnapshot(elapsed_s=elapsed_s, max_duration_s=10.0, series={"http_reqs": CounterSink(requests * elapsed_s)},
                        timeline=tl.data(), verdicts=(), options=None,  # type: ignore[arg-type]
                        workers=("w-0",))


async def _next_event(stream: aiohttp.StreamReader) -> tuple[str, dict[str, Any]]:
    event, data = "", ""
    for _ in range(10):  # bounded: an event is two lines and a blank one
        line = (await asyncio.wait_for(stream.readline(), 30)).decode()
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "\n" and data:
            return event, json.loads(data)
    raise AssertionError("no event")


def test_a_port_in_use_is_an_error_before_anything_else() -> None:
    async def go() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(DashboardError, match=f"--dashboard 127.0.0.1:{port}: cannot listen") as err:
                Dashboard("127.0.0.1", port, title="t")
            assert err.value.exit_code == ExitCode.INVALID_CONFIG

    asyncio.run(go())


def test_clients_share_one_document_per_snapshot_and_get_the_final_one(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[float] = []
    real = LiveDocuments.payload

    def counting(self: LiveDocuments, snapshot: LiveSnapshot) -> str:
        built.append(snapshot.elapsed_s)
        return real(self, snapshot)

    monkeypatch.setattr(LiveDocuments, "payload", counting)

    async def go() -> None:
        board = Dashboard("127.0.0.1", 0, title="t")
        assert board.url.startswith("http://127.0.0.1:") and board.notices == [f"dashboard on {board.url}"]
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(100):  # the server starts on the loop's next turns
                    try:
                        async with http.get(board.url + "data.json") as resp:
                            first = await resp.json()
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
                assert first["live"] and first["timeline"]["t"] == []  # before the first snapshot
                board.update(_snapshot(1.0, 5))  # nobody watching yet: nothing is built ...
                board.update(_snapshot(2.0, 5))
                assert built == []
                a = await http.get(board.url + "events")
                b = await http.get(board.url + "events")
                assert (await _next_event(a.content))[1]["elapsedS"] == 2.0
                assert (await _next_event(b.content))[1]["elapsedS"] == 2.0
                assert built == [2.0]  # ... and then once for both clients
                board.update(_snapshot(3.0, 5))
                ev_a, doc_a = await _next_event(a.content)
                ev_b, doc_b = await _next_event(b.content)
                assert (ev_a, ev_b) == ("message", "message") and doc_a == doc_b
                assert doc_a["timeline"]["t"] == [1.0, 2.0, 3.0]
                assert built == [2.0, 3.0]
                page = await (await http.get(board.url)).text()
                assert 'data-events="/events"' in page and built == [2.0, 3.0]
                board.close(None)  # a run that produced no summary: the last live document, marked finished
                ev, final = await _next_event(a.content)
                assert ev == "final" and final["finished"] and final["elapsedS"] == 3.0
                assert (await asyncio.wait_for(a.content.read(), 30)) == b""  # the stream ends
                assert (await _next_event(b.content))[0] == "final"
                a.close()
                b.close()
        finally:
            await board.aclose()

    asyncio.run(go())

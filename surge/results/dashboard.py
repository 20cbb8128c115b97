"""The live dashboard: the report's page, served by the coordinator while the run goes.

``--dashboard [ADDR:]PORT`` makes a :class:`Dashboard`, a :class:`~surge.results.live.LiveView`.
It serves, on the coordinator's own asyncio loop (aiohttp's server):

- ``/``            the page (:func:`surge.results.html_report.render_html`) with the latest document inlined;
- ``/events``      Server-Sent Events: one ``message`` per new document, then one ``final`` event;
- ``/data.json``   the latest document, for tools and tests.

**Cheap for the coordinator.** :meth:`Dashboard.update` only keeps the snapshot. The document
(and its JSON) is built at most once per snapshot, when the first client asks for it, and
every client gets the same bytes; with no page open, the dashboard costs nothing but the
snapshot the session builds anyway.

**The address.** Loopback (127.0.0.1) by default. Another address is allowed, with a warning:
the dashboard is read-only (it cannot start, stop or change a run) and shows only what the
report shows, but that includes metric names, tag values (URLs, which may hold tokens) and
threshold expressions, to anyone who can reach the port. Refusing outright, as the fleet's
port does without keys, would protect less than it costs: the fleet's port hands out the
scenario and its ``-e`` values; this one does not. Port 0 picks a free port; the URL is printed.

**The bind happens in the constructor**, synchronously, so a port already in use fails the
run with :class:`DashboardError` before any load is sent.

**The end.** :meth:`close` publishes the end-of-test document (the summary's, as the report
file has it) as the ``final`` event; the page shows it and stops listening. surge exits right
after the run, and the dashboard with it: it does not linger (k6 keeps its dashboard until the
process exits, too; surge's process simply exits sooner). For a page to keep, ``--report``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from surge.common.errors import ExitCode, SurgeError
from surge.common.metrics import MetricDef
from surge.results.html_report import render_html, script_json
from surge.results.live import LiveSnapshot
from surge.results.live_document import LiveDocuments
from surge.results.report_data import ReportDataError, report_document, waiting_document



class DashboardError(SurgeError):
    """The dashboard cannot listen where it was asked to (a bad address, a port in use)."""

    exit_code = ExitCode.INVALID_CONFIG


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DashboardError(f"--dashboard {host}:{port}: cannot resolve {host!r} ({exc.strerror})",
                             hint="give an IP address of this machine, e.g. 127.0.0.1:5665") from None
    family, type_, proto, _, addr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        # SO_REUSEADDR: a dashboard of the previous run in TIME_WAIT does not block this one;
        # a port another process listens on still fails to bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise DashboardError(f"--dashboard {host}:{port}: cannot listen ({exc.strerror or exc})",
                             hint="pick another port (0 picks a free one)") from None
    sock.setblocking(False)
    return sock


class Dashboard:
    """The live dashboard of one run (see the module docstring). Construct it inside the running loop."""

    def __init__(self, host: str, port: int, *, title: str, interval_s: float = 1.0,
                 metric_defs: Mapping[str, MetricDef] | None = None) -> None:
        self.title = title
        self._sock = _bind(host, port)
        bound = self._sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"http://{shown}:{bound[1]}/"
        self.notices: list[str] = [f"dashboard on {self.url}"]
        if not is_loopback(host):
            self.notices.append(
                f"warning: the dashboard listens on {host}, beyond loopback: anyone who reaches it sees the run's "
                "metric names, tag values (URLs) and thresholds (it is read-only)")
        self._snapshot: LiveSnapshot | None = None  # the newest, not yet made a document
        self._documents = LiveDocuments(title, metric_defs)
        # the current document as script-safe JSON, built on first demand after each snapshot
        self._payload = script_json(waiting_document(title=title, interval_s=interval_s))
        self._version = 0
        self._final = False
        self._changed = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/events", self._events)
        app.router.add_get("/data.json", self._data)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._spawn(self._start())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    # ------------------------------------------------------------------ LiveView

    def update(self, snapshot: LiveSnapshot) -> None:
        if self._final:
            return
        self._snapshot = snapshot
        self._publish()

    def close(self, summary: Mapping[str, Any] | None) -> None:
        """Publish the end-of-test document as the ``final`` event, then stop serving."""
        if self._final:
            return
        doc: dict[str, Any] | None = None
        if summary is not None:
            try:
                doc = report_document(summary, title=self.title)
            except ReportDataError:
                doc = None  # a summary without a timeline (cannot happen from a run): keep the live one
        if doc is None:
            doc = json.loads(self._current_payload())
        doc["live"] = True
        doc["finished"] = True
        self._snapshot = None
        self._final = True
        self._publish()
        self._payload = script_json(doc)  # now: the loop may be about to close
        self._spawn(self._stop())

    async def _stop(self) -> None:
        await asyncio.sleep(0)  # let every open stream send the final event first
        await self._runner.cleanup()

    async def aclose(self) -> None:
        """Stop serving (for callers that own the loop's lifetime, e.g. tests)."""
        await self._runner.cleanup()

    # ------------------------------------------------------------------ documents

    def _publish(self) -> None:
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _current_payload(self) -> str:
        if self._snapshot is not None:
            self._payload = self._documents.payload(self._snapshot)
            self._snapshot = None
        return self._payload

    # ------------------------------------------------------------------ handlers

    async def _page(self, request: web.Request) -> web.Response:
        payload = self._current_payload()
        page = render_html({"title": self.title}, events_url="/events", document=payload)
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _data(self, request: web.Request) -> web.Response:
        return web.Response(text=self._current_payload(), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await resp.prepare(request)
        seen = -1
        try:
            while True:
                if seen != self._version:
                    seen = self._version
                    final = self._final
                    event = "final" if final else "message"
                    # script_json has no line breaks (U+2028/9 escaped too), so one data: line holds it
                    await resp.write(f"event: {event}\ndata: {self._current_payload()}\n\n".encode())
                    if final:
                        break
                    continue  # a document published during the write is sent before waiting
                await self._changed.wait()
        except asyncio.CancelledError:
            if self._final and seen != self._version:
                # The loop is shutting down right after close(): send the final document on the way out.
                try:
                    await resp.write(f"event: final\ndata: {self._current_payload()}\n\n".encode())
                except (ConnectionError, RuntimeError):
                    pass
            raise
        except (ConnectionError, RuntimeError):
            pass  # the page went away
        return resp

"""``--prometheus [ADDR:]PORT``: the live view that serves the run's metrics for Prometheus to scrape.

Served by prometheus_client's own HTTP server on a daemon thread, from a registry of this run's
alone (:class:`~surge.results.prometheus.SnapshotCollector`). A thread rather than an aiohttp app
on the coordinator's loop: a scrape renders while the loop goes on with the fleet, and a slow or
stuck scraper holds a server thread, never the loop. ``update`` (on the loop, once a second) only
swaps a reference.

Lifetime: the socket is bound when the view is made, before any load, so a port in use ends the
run at once (exit 104) with nothing sent to the workers; it is closed when the run ends, summary
written or not. Prometheus keeps what it scraped last, which is up to one scrape interval (plus
the second between snapshots) older than the end-of-test summary; the summary export is the
record of the whole run. No lingering: a finished run does not hold the port or the process.

``ADDR`` defaults to 127.0.0.1. Any address may be given (``0.0.0.0``, ``[::]``): the endpoint
only reads the run's metrics, tags and threshold sources, and never takes input.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from surge.common.errors import ExitCode, SurgeError
from surge.common.metrics import MetricDef
from surge.results.live import LiveSnapshot
from surge.results.prometheus import SnapshotCollector



class PrometheusError(SurgeError):
    """The endpoint cannot be served: a bad ``[ADDR:]PORT`` or an address that cannot be bound."""

    exit_code = ExitCode.INVALID_CONFIG


class PrometheusView:
    """A :class:`~surge.results.live.LiveView` serving ``http://ADDR:PORT/metrics`` while the run goes."""

    def __init__(self, host: str, port: int, metric_defs: Mapping[str, MetricDef]) -> None:
        self.collector = SnapshotCollector(metric_defs)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise PrometheusError(
                f"cannot serve --prometheus on {where}: {exc.strerror or exc}",
                hint="pick another port (another run or exporter may hold this one), or stop what listens there",
            ) from None
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.host, self.port = host, int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def update(self, snapshot: LiveSnapshot) -> None:
        self.collector.set(snapshot)

    def close(self, summary: Mapping[str, Any] | None) -> None:
        self._server.shutdown()  # returns once the serving loop has stopped
        self._server.server_close()
        self._thread.join(timeout=5.0)

"""The echo service's Prometheus metrics, served at ``/metrics`` (``echo.views.metrics``).

Connection events (accepted, refused, closed, too big, protocol errors, timeouts, HTTP
refusals) are ``prometheus_client`` counters in ``project.events``, counted as they happen, by
the servers' adjustments and the application alike; this module serves them.

Traffic is not counted per message here: each connection already keeps its own counters
(``echo.connections.TrafficCounts``), and ``TrafficCollector`` sums them, with those of
connections that have closed, when ``/metrics`` is scraped. A message costs nothing more with
metrics than without.

Each process has its own registry; with one process per core behind a proxy, each is scraped
on its own port (docs/deployment.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from echo.connections import open_connections
from project.events import REGISTRY

ProcessCollector(registry=REGISTRY)


class TrafficCollector(Collector):
    """Open connections, and messages and bytes each way by type, summed when scraped."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "echo_connections_open", "WebSocket connections open now.", open_connections.count
        )
        totals = open_connections.traffic()
        for direction, verb in (("in", "received"), ("out", "sent")):
            messages = CounterMetricFamily(
                f"echo_messages_{verb}", f"WebSocket messages {verb}, by type.", labels=["type"]
            )
            payload = CounterMetricFamily(
                f"echo_bytes_{verb}",
                f"Payload bytes of the WebSocket messages {verb}, by type.",
                labels=["type"],
            )
            for kind in ("text", "binary"):
                messages.add_metric([kind], totals[f"{kind}_{direction}"])
                payload.add_metric([kind], totals[f"{kind}_bytes_{direction}"])
            yield messages
            yield payload


REGISTRY.register(TrafficCollector())


def exposition() -> bytes:
    """The metrics in Prometheus' text format."""
    return generate_latest(REGISTRY)

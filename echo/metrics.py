"""The echo service's Prometheus metrics, served at ``/metrics`` (``echo.views.metrics``).

Connection events (accepted, refused, closed) are ``prometheus_client`` counters, counted as
they happen. Traffic is not counted per message here: each connection already keeps its own
counters (``echo.connections.TrafficCounts``), and ``TrafficCollector`` sums them, with those of
connections that have closed, when ``/metrics`` is scraped. A message costs nothing more with
metrics than without.

Each process has its own registry; with one process per core behind a proxy, each is scraped
on its own port (docs/deployment.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from echo.connections import open_connections

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

ACCEPTED = Counter(
    "echo_connections_accepted",
    "WebSocket connections accepted (the echo subprotocol negotiated).",
    registry=REGISTRY,
)
REFUSED = Counter(
    "echo_connections_refused",
    "WebSocket handshakes refused, or connections closed at once, by reason.",
    ["reason"],
    registry=REGISTRY,
)
CLOSED = Counter(
    "echo_connections_closed",
    "Accepted WebSocket connections that have ended, by close code "
    "(other: a code an application chose, 3000-4999).",
    ["code"],
    registry=REGISTRY,
)

# Labels take only values the project chose, so a client can add no series, and each series
# exists from the start. A reason is one the service refuses a connection for.
REFUSAL_REASONS = ("subprotocol_missing", "foreign_origin", "unknown_path", "capacity")
# A close code is one RFC 6455 (section 7.4.1) or the IANA registry defines that a connection
# can end with here: 1005 and 1006 for a close without a code and a connection lost without
# one, no 1004 or 1014 (a protocol error, 1002) and no 1015 (TLS). Any other code is a
# client's choice (an application's 3000-4999), counted as OTHER_CLOSE_CODE.
CLOSE_CODES = (1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013)
OTHER_CLOSE_CODE = "other"
for reason in REFUSAL_REASONS:
    REFUSED.labels(reason=reason)
for code in (*map(str, CLOSE_CODES), OTHER_CLOSE_CODE):
    CLOSED.labels(code=code)


def refused(reason: str) -> None:
    REFUSED.labels(reason=reason).inc()


def closed(code: int) -> None:
    CLOSED.labels(code=str(code) if code in CLOSE_CODES else OTHER_CLOSE_CODE).inc()


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

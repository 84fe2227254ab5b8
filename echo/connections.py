"""The echo WebSockets of this process: what each one carried, and which are open (read by the
connection cap, /healthz and /metrics)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, fields


@dataclass(slots=True, eq=False)
class TrafficCounts:
    """What one connection carried, by direction and message type."""

    opened_at: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    text_in: int = 0
    text_bytes_in: int = 0
    binary_in: int = 0
    binary_bytes_in: int = 0
    text_out: int = 0
    text_bytes_out: int = 0
    binary_out: int = 0
    binary_bytes_out: int = 0

    @property
    def messages_in(self) -> int:
        return self.text_in + self.binary_in

    @property
    def bytes_in(self) -> int:
        return self.text_bytes_in + self.binary_bytes_in

    @property
    def messages_out(self) -> int:
        return self.text_out + self.binary_out

    @property
    def bytes_out(self) -> int:
        return self.text_bytes_out + self.binary_bytes_out


# The counters of TrafficCounts, which /metrics sums over every connection.
TRAFFIC_FIELDS = tuple(
    counter.name for counter in fields(TrafficCounts) if counter.name != "opened_at"
)


class OpenConnections:
    """The open connections of this process (every ASGI server here runs one event loop per
    process), and the traffic of those that have closed.

    Connections count their own traffic; totals are summed only when asked for (a scrape of
    /metrics), so a message costs nothing more than the connection's own counters.
    """

    def __init__(self) -> None:
        self.open: set[TrafficCounts] = set()
        self.finished = dict.fromkeys(TRAFFIC_FIELDS, 0)

    @property
    def count(self) -> int:
        return len(self.open)

    def opened(self, counts: TrafficCounts) -> None:
        self.open.add(counts)

    def closed(self, counts: TrafficCounts) -> None:
        self.open.discard(counts)
        for name in TRAFFIC_FIELDS:
            self.finished[name] += getattr(counts, name)

    def traffic(self) -> dict[str, int]:
        """Everything carried so far, by the names of ``TrafficCounts``' fields."""
        totals = dict(self.finished)
        for counts in self.open:
            for name in TRAFFIC_FIELDS:
                totals[name] += getattr(counts, name)
        return totals


open_connections = OpenConnections()

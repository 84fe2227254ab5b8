"""How many echo WebSockets this process has open: read by the connection cap and /healthz."""

from __future__ import annotations


class OpenConnections:
    """A per-process count; every ASGI server here runs one event loop per process."""

    def __init__(self) -> None:
        self.count = 0

    def opened(self) -> None:
        self.count += 1

    def closed(self) -> None:
        self.count -= 1


open_connections = OpenConnections()

"""The echo WebSockets of this process: how many are open (read by the connection cap and
/healthz), and how their clients are named in the log."""

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


def describe_client(client: list[object] | tuple[object, ...] | None) -> str:
    """ASGI gives the peer as ``[host, port]``, or nothing at all for a unix socket."""
    if not client:
        return "unknown"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

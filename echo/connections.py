"""The echo WebSockets of this process: how many are open (read by the connection cap and
/healthz), how their clients are named in the log, and what they are told when it stops.

Nothing here imports Django, so the server adjustments in ``project/`` can use it before the
application is loaded.
"""

from __future__ import annotations

# The reason of the 1001 close, and the body of the 503 for handshakes, when the process shuts
# down; the same under every server.
SHUTDOWN_REASON = "server shutting down"


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

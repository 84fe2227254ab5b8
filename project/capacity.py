"""The default connection cap, derived from what this machine lets one process open."""

from __future__ import annotations

import resource

# File descriptors kept back for listening sockets, log files, HTTP requests and the runtime.
RESERVED_DESCRIPTORS = 100
# Above this, one process's CPU, not its descriptors, is what runs out first.
CEILING = 10_000


def default_max_connections() -> int:
    """Each WebSocket holds one file descriptor, so the open-file limit bounds the cap."""
    soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY:
        return CEILING
    return max(1, min(CEILING, soft_limit - RESERVED_DESCRIPTORS))

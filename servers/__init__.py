"""How the project is served: its adjustments to the ASGI servers it supports, and how to start
each one.

``servers.daphne`` holds ``EchoServer``, daphne (with autobahn and Twisted beneath it) adjusted,
which ``manage.py runserver`` serves with, and the ``daphne`` command too once
``servers.daphne_command`` tells it to. ``servers.uvicorn`` holds the protocol classes uvicorn
loads with its ``--http`` and ``--ws`` flags. ``servers.commands`` has each server's command
line, and ``servers.serve`` runs one as the container's process. Each adjustment is imported
only by the process whose server it adjusts. Nothing here imports the echo app: these are
fixes to the servers, whatever they serve. Their log lines name clients and quote them as the
application's do (``project.logfields``). docs/upstream.md lists the defect behind each
adjustment.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from project.logfields import Client, escaped, peer_name

logger = logging.getLogger(__name__)

# The reason of the 1001 close, and the body of the 503 for handshakes, when the process shuts
# down; the same under every server.
SHUTDOWN_REASON = "server shutting down"
# After the server's own close frame, how long a client has to answer it before TCP ends.
CLOSE_TIMEOUT = 5.0
# After a protocol error, how long the application has to answer the messages that came before
# it; then the close frame goes out whether it has or not.
FAILURE_GRACE = 1.0


# permessage-deflate (RFC 7692) for a server holding many connections, as the websockets
# library chooses: a 12-bit window (4 KiB, against zlib's 32) in each direction the server may
# choose, and zlib memory level 5 (against 8).
COMPRESSION_WINDOW_BITS = 12
COMPRESSION_MEMORY_LEVEL = 5

# The reason of a 1009 close, under every server.
TOO_BIG_REASON = "message too big"


def compressed_size_bound(size: int) -> int:
    """The most bytes a compressed message of ``size`` inflated bytes may take on the wire.

    The limit counts inflated bytes, but incompressible data grows a little when deflated, so a
    message of exactly the limit arrives as a frame somewhat larger than the limit. This is
    zlib's ``deflateBound`` for any window and memory level (fixed Huffman blocks, about 13%
    over), with room for the flush marker: nothing a deflate encoder makes of ``size`` bytes is
    larger, and the wire size of a compressed message stays bounded.
    """
    return size + (size >> 3) + (size >> 8) + (size >> 9) + 64


def log_http_refused(client: Client, status: HTTPStatus) -> None:
    """A request the server refuses itself, before any application sees it: the client's
    doing, so one INFO line (as ``project.log_filters`` makes of the application's refusals)."""
    logger.info(
        "event=http_refused client=%s status=%d reason=%s",
        peer_name(client),
        status.value,
        status.phrase.lower().replace(" ", "_").replace("-", "_"),
    )


def log_refused_handshake(client: Client, status: int, detail: str) -> None:
    """A WebSocket handshake the server refuses on its own (400, 426): the client's doing."""
    logger.info(
        "event=refused client=%s reason=invalid_handshake status=%d detail=%s",
        peer_name(client),
        status,
        escaped(detail),
    )


def log_protocol_error(client: Client, code: int, detail: str) -> None:
    """A connection the server fails for the client's error (1002, 1007); the close follows."""
    logger.info(
        "event=protocol_error client=%s code=%d detail=%s",
        peer_name(client),
        code,
        escaped(detail),
    )


def log_too_big(client: Client, size: int | None, limit: int) -> None:
    """A message refused with 1009. ``size`` is None where it is not known: a compressed message
    is inflated only up to the limit, so how far past it the whole would go is never computed."""
    logger.info(
        "event=too_big client=%s size=%s limit=%d",
        peer_name(client),
        "unknown" if size is None else size,
        limit,
    )


def log_ping_timeout(client: Client, timeout: float | None) -> None:
    logger.info("event=ping_timeout client=%s timeout=%s", peer_name(client), timeout)


def plain_response(status: HTTPStatus) -> bytes:
    """A complete HTTP/1.1 response refusing a request, for a server to write and then close."""
    body = f"{status.phrase}.\n".encode()
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nConnection: close\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

"""How the project is served: its adjustments to the ASGI servers it supports, and how to start
each one.

``servers.daphne`` holds ``EchoServer``, daphne (with autobahn and Twisted beneath it) adjusted,
which ``manage.py runserver`` serves with, and the ``daphne`` command too once
``servers.daphne_command`` tells it to. ``servers.uvicorn`` holds the protocol classes uvicorn
loads with its ``--http`` and ``--ws`` flags. ``servers.commands`` has each server's command
line, and ``servers.serve`` runs one as the container's process. Each adjustment is imported
only by the process whose server it adjusts. Nothing here imports the echo app: these are
fixes to the servers, whatever they serve. Their log lines and counters are the application's
own (``project.events``), and name each connection as the application does
(``project.connection``): the server gives each connection its id, and hands it to the
application in the scope. docs/upstream.md lists the defect behind each adjustment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from project import events
from project.connection import Connection
from project.connection import new_connection_id as new_connection_id
from project.connection import with_connection_id as with_connection_id
from project.logfields import Client as Client
from project.logfields import peer_name as peer_name
from project.proxy import Headers, forwarded_client

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


def connection(connection_id: str, peer: Client, headers: Any = ()) -> Connection:
    """A connection as every log line names it, from what a server knows of it: the id it
    gave it, the socket's peer, and the request's headers once they are read (autobahn's dict
    of names to values, websockets' ``Headers``, or ASGI's byte pairs): the same as the
    application calls it (``project.connection.scope_connection``)."""
    if hasattr(headers, "raw_items"):
        headers = headers.raw_items()
    elif hasattr(headers, "items"):
        headers = headers.items()
    return Connection(peer_name(forwarded_client(peer, ascii_headers(headers))), connection_id)


def ascii_headers(headers: Iterable[tuple[bytes | str, bytes | str]]) -> Headers:
    """Headers as ASGI has them: lower-case names, values as bytes (Latin-1)."""
    return [
        (
            (name if isinstance(name, bytes) else name.encode("latin-1")).lower(),
            value if isinstance(value, bytes) else value.encode("latin-1"),
        )
        for name, value in headers
    ]


def log_http_refused(connection: Connection, status: HTTPStatus) -> None:
    """A request the server refuses itself, before any application sees it."""
    events.http_refused(logger, connection, status)


def log_refused_handshake(connection: Connection, status: int, detail: str) -> None:
    """A WebSocket handshake the server refuses on its own (400, 426): the client's doing."""
    events.refused_handshake(logger, connection, status, detail)


def log_protocol_error(connection: Connection, code: int, detail: str) -> None:
    """A connection the server fails for the client's error (1002, 1007); the close follows."""
    events.protocol_error(logger, connection, code, detail)


def log_too_big(connection: Connection, size: int | None, limit: int) -> None:
    """A message refused with 1009. ``size`` is None where it is not known: a compressed message
    is inflated only up to the limit, so how far past it the whole would go is never computed."""
    events.too_big(logger, connection, size, limit)


def log_ping_timeout(connection: Connection, timeout: float | None) -> None:
    events.timeout(logger, connection, "ping", timeout)


def log_handshake_timeout(connection: Connection, timeout: float) -> None:
    events.timeout(logger, connection, "handshake", timeout)


def plain_response(status: HTTPStatus) -> bytes:
    """A complete HTTP/1.1 response refusing a request, for a server to write and then close."""
    body = f"{status.phrase}.\n".encode()
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nConnection: close\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

"""The ``/echo`` WebSocket consumer: every message goes back to its sender unchanged.

``EchoConsumer`` is the consumer of Channels' tutorial: it accepts clients that offer the
``echo`` subprotocol (any other handshake is refused with HTTP 403) and sends text back as text
and binary as binary. The ASGI server reassembles fragmented messages and answers pings before
anything reaches it.

What every connection here shares is not in the consumer but in pieces wrapped around it, each
an ASGI middleware in a module of its own that works with any consumer:
``echo.connection_log`` (log lines, traffic and connection counters), ``echo.message_size``
(1009 for a message over the limit), ``echo.idle`` (1000 after a silence) and
``echo.capacity`` (1013 beyond the connection limit). ``with_shared_concerns`` applies them;
``/echo`` serves ``FastEchoConsumer``, the same consumer on ``FastWebsocketConsumer``, which
delivers messages with less overhead and changes nothing else (``echo.fastpath``).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from echo.capacity import ConnectionLimit
from echo.connection_log import ConnectionLog
from echo.fastpath import FastWebsocketConsumer
from echo.idle import IdleTimeout
from echo.message_size import MessageSizeLimit
from project import events
from project.connection import scope_connection
from project.logfields import escaped

logger = logging.getLogger(__name__)

SUBPROTOCOL = "echo"


class EchoConsumer(AsyncWebsocketConsumer):
    """Echoes each message back on the connection it came from."""

    async def connect(self) -> None:
        offered = self.scope.get("subprotocols", [])
        if SUBPROTOCOL not in offered:
            connection = scope_connection(self.scope)
            offers = escaped(",".join(offered)) or "-"
            events.refused(logger, connection, "subprotocol_missing", "offered=%s", offers)
            await self.close()
            return
        await self.accept(subprotocol=SUBPROTOCOL)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class FastEchoConsumer(FastWebsocketConsumer, EchoConsumer):
    """What ``/echo`` serves: ``EchoConsumer`` on the fast path (``echo/fastpath.py``).

    It changes how fast messages reach ``EchoConsumer``, not what it does with them; the
    consumer tests run against both.
    """


def with_shared_concerns(application: Any) -> Any:
    """A WebSocket application with what every echo connection shares, outermost first: the
    log and counts (which see every close the others send), the message size limit, the idle
    timeout and the connection limit."""
    return ConnectionLog(MessageSizeLimit(IdleTimeout(ConnectionLimit(application))))


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """The last WebSocket route: anything that reaches it asked for a path we do not serve."""

    async def connect(self) -> None:
        path = escaped(self.scope["path"])
        events.refused(logger, scope_connection(self.scope), "unknown_path", "path=%s", path)
        await self.close()

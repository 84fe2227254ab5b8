"""``ConnectionLog``: ASGI middleware that logs and counts each WebSocket connection's life.

Wrapped around any WebSocket consumer (``ConnectionLog(MyConsumer.as_asgi())``), it writes
``event=accepted`` when the consumer accepts, ``event=message`` at DEBUG for each message,
and ``event=closed`` with the close code, the duration and the traffic each way when the
connection has ended. Each connection counts its own traffic (``echo.connections``); /metrics
sums it when scraped (``echo.metrics``), along with the accepted and closed counters, which
``project.events`` keeps with the lines.

The close is logged and counted once, from the done callback of the connection's task, however
the connection ends: the server may cancel the task, or a send raise, without any disconnect.
A connection that is closed in the same step as it is accepted (``echo.capacity`` refusing it)
is not counted as accepted, but its end is logged like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import markcoroutinefunction

from echo.connections import TrafficCounts, open_connections
from project import events
from project.connection import Connection, scope_connection
from project.logfields import escaped

logger = logging.getLogger("echo.consumers")

Message = dict[str, Any]
# What the log says of a connection that ended without the server reporting a close code
# (RFC 6455's "abnormal closure", which servers report for a lost connection too).
CLOSE_ABNORMAL = 1006
PREVIEW_CHARS = 32


def preview(text_data: str | None, bytes_data: bytes | None) -> str:
    """A short, log-safe glimpse of a message; whole payloads never reach the log."""
    if text_data is not None:
        return escaped(text_data[:PREVIEW_CHARS])
    assert bytes_data is not None
    return bytes_data[: PREVIEW_CHARS // 2].hex()


class ConnectionLog:
    """Logs and counts the connections of the WebSocket application it wraps."""

    def __init__(self, application: Any) -> None:
        self.application = application

    # Hands back the application's own coroutine instead of awaiting it in one of this piece's,
    # so that no frame of this piece stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: Message, receive: Any, send: Any) -> Awaitable[None]:
        if scope["type"] != "websocket":
            return self.application(scope, receive, send)  # type: ignore[no-any-return]
        connection = LoggedConnection(scope, receive, send)
        return self.application(scope, connection.receive, connection.send)  # type: ignore[no-any-return]


class LoggedConnection:
    """One connection's counts and log lines, between the server and the application."""

    __slots__ = (
        "accepting",
        "close_code",
        "connection",
        "counting",
        "counts",
        "log_messages",
        "server_receive",
        "server_send",
        "subprotocol",
    )

    def __init__(self, scope: Message, receive: Any, send: Any) -> None:
        self.connection: Connection = scope_connection(scope)
        self.server_receive = receive
        self.server_send = send
        self.counts: TrafficCounts | None = None
        self.close_code: int | None = None
        # Between the accept and the application's next receive(): still closable at once.
        self.accepting = False
        # Accepted, and no close has gone out: what arrives is counted.
        self.counting = False
        self.log_messages = False
        self.subprotocol: str | None = None

    async def receive(self) -> Message:
        if self.accepting:
            self.opened()
        message: Message = await self.server_receive()
        if message["type"] == "websocket.receive":
            if self.counting:
                text = message.get("text")
                counts = self.counts
                if text is not None:
                    # Size on the wire: encoding ASCII (nearly every text message) would only
                    # copy it.
                    size = len(text) if text.isascii() else len(text.encode("utf-8"))
                    counts.text_in += 1
                    counts.text_bytes_in += size
                else:
                    size = len(message["bytes"])
                    counts.binary_in += 1
                    counts.binary_bytes_in += size
                if self.log_messages:
                    self.log_message(text, message.get("bytes"), size)
        elif message["type"] == "websocket.disconnect":
            self.close_code = message.get("code")
        return message

    def log_message(self, text: str | None, data: bytes | None, size: int) -> None:
        logger.debug(
            "event=message client=%s type=%s size=%d preview=%s conn=%s",
            self.connection.client,
            "text" if text is not None else "binary",
            size,
            preview(text, data),
            self.connection.id,
        )

    def send(self, message: Message) -> Any:
        # A plain function: a message out costs one call, counted as it is handed to the server
        # (a send the server fails ends the connection, whose task then ends with the error).
        kind = message["type"]
        if kind == "websocket.send":
            counts = self.counts
            if counts is not None:
                text = message.get("text")
                if text is not None:
                    counts.text_out += 1
                    counts.text_bytes_out += (
                        len(text) if text.isascii() else len(text.encode("utf-8"))
                    )
                else:
                    counts.binary_out += 1
                    counts.binary_bytes_out += len(message["bytes"])
            return self.server_send(message)
        if kind == "websocket.accept":
            return self.accept(message)
        if kind == "websocket.close":
            self.counting = False
            self.accepting = False
        return self.server_send(message)

    async def accept(self, message: Message) -> None:
        await self.server_send(message)
        self.accepted(message.get("subprotocol"))

    def accepted(self, subprotocol: str | None) -> None:
        """The connection is open from here: its end is logged when its task ends."""
        self.subprotocol = subprotocol
        self.counts = TrafficCounts()
        self.counting = True
        self.accepting = True
        task = asyncio.current_task()
        assert task is not None
        task.add_done_callback(self.release)

    def opened(self) -> None:
        """Accepted and not closed at once: counted as open and accepted."""
        self.accepting = False
        assert self.counts is not None
        open_connections.opened(self.counts)
        self.log_messages = logger.isEnabledFor(logging.DEBUG)
        events.accepted(logger, self.connection, self.subprotocol)

    def release(self, _: asyncio.Task[None]) -> None:
        """The end of an accepted connection: its traffic joins the totals, and its close is
        counted and logged, with the code the server reported, or 1006."""
        counts = self.counts
        assert counts is not None
        open_connections.closed(counts)
        events.closed(
            logger,
            self.connection,
            CLOSE_ABNORMAL if self.close_code is None else self.close_code,
            asyncio.get_running_loop().time() - counts.opened_at,
            (counts.messages_in, counts.bytes_in, counts.messages_out, counts.bytes_out),
        )

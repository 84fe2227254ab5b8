"""``ConnectionLimit``: ASGI middleware that holds a process to ECHO_MAX_CONNECTIONS open
WebSockets, closing each one over the limit with 1013 (try again later) as soon as it is
accepted.

Wrap any WebSocket consumer in it (``ConnectionLimit(MyConsumer.as_asgi())``). The refusal
comes after the accept because 1013 is a close code: a client told "try again later" retries,
where an HTTP error on the handshake would look like a broken server. A connection counts from
its accept until its task ends, however it ends; ``open_count()`` is what /healthz reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.conf import settings

from project import events
from project.connection import scope_connection

logger = logging.getLogger("echo.consumers")

Message = dict[str, Any]
CLOSE_TRY_AGAIN_LATER = 1013
AT_CAPACITY_REASON = "server at connection limit, try again later"

# The connections admitted under the limit, by their tasks (every ASGI server here runs one
# event loop per process).
admitted: set[asyncio.Task[Any]] = set()


def open_count() -> int:
    """The WebSockets of this process accepted under the limit and not yet ended."""
    return len(admitted)


class ConnectionLimit:
    """Closes with 1013 the connections of the application it wraps beyond the limit."""

    def __init__(self, application: Any) -> None:
        self.application = application

    # Hands back the application's own coroutine instead of awaiting it in one of this piece's,
    # so that no frame of this piece stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: Message, receive: Any, send: Any) -> Awaitable[None]:
        if scope["type"] != "websocket":
            return self.application(scope, receive, send)  # type: ignore[no-any-return]
        connection = LimitedConnection(scope, receive, send)
        return self.application(scope, connection.receive, connection.send)  # type: ignore[no-any-return]


class LimitedConnection:
    """One connection's place under the limit, between the server and the application."""

    __slots__ = ("refused", "scope", "server_receive", "server_send")

    def __init__(self, scope: Message, receive: Any, send: Any) -> None:
        self.scope = scope
        self.server_receive = receive
        self.server_send = send
        self.refused = False

    def receive(self) -> Any:
        # A plain function: an admitted connection's messages pass at the cost of one call.
        if self.refused:
            return self.until_disconnect()
        return self.server_receive()

    async def until_disconnect(self) -> Message:
        """What a refused connection's application hears: only its end."""
        while True:
            message: Message = await self.server_receive()
            if message["type"] != "websocket.receive":
                return message

    def send(self, message: Message) -> Any:
        if message["type"] == "websocket.accept":
            return self.accept(message)
        return self.server_send(message)

    async def accept(self, message: Message) -> None:
        await self.server_send(message)
        limit = settings.ECHO_MAX_CONNECTIONS
        if len(admitted) >= limit:
            events.refused(
                logger,
                scope_connection(self.scope),
                "capacity",
                "open=%d limit=%d",
                len(admitted),
                limit,
            )
            self.refused = True
            await self.server_send(
                {
                    "type": "websocket.close",
                    "code": CLOSE_TRY_AGAIN_LATER,
                    "reason": AT_CAPACITY_REASON,
                }
            )
            return
        task = asyncio.current_task()
        assert task is not None
        admitted.add(task)
        task.add_done_callback(admitted.discard)

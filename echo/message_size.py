"""``MessageSizeLimit``: ASGI middleware that closes a WebSocket with 1009 (message too big) when
it receives a message over ECHO_MAX_MESSAGE_SIZE bytes (UTF-8 bytes for text).

The project's adjusted servers (``servers/``) refuse such a message before it reaches the
application; this is the same limit for an application served by a stock server, which hands
it on whole, and stands aside (costing nothing per message) where the server says it enforces
the limit (``project.connection.MESSAGE_SIZE_EXTENSION``). Wrap any WebSocket consumer in it
(``MessageSizeLimit(MyConsumer.as_asgi())``).
The oversized message is not passed on, nor is anything that arrives after a close has gone
out: the close frame is the server's last word.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.conf import settings

from project import events
from project.connection import MESSAGE_SIZE_EXTENSION, scope_connection

logger = logging.getLogger("echo.consumers")

Message = dict[str, Any]
CLOSE_MESSAGE_TOO_BIG = 1009
TOO_BIG_REASON = "message too big"


class MessageSizeLimit:
    """Closes with 1009 a connection of the application it wraps that sends too big a message."""

    def __init__(self, application: Any) -> None:
        self.application = application

    # Hands back the application's own coroutine instead of awaiting it in one of this piece's,
    # so that no frame of this piece stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: Message, receive: Any, send: Any) -> Awaitable[None]:
        # The project's servers refuse such messages before they arrive, and say so.
        enforced = (scope.get("extensions") or {}).get(MESSAGE_SIZE_EXTENSION)
        if scope["type"] != "websocket" or (
            enforced is not None and enforced["bytes"] <= settings.ECHO_MAX_MESSAGE_SIZE
        ):
            return self.application(scope, receive, send)  # type: ignore[no-any-return]
        connection = SizeLimitedConnection(scope, receive, send)
        return self.application(scope, connection.receive, connection.send)  # type: ignore[no-any-return]


class SizeLimitedConnection:
    """One connection's size check, between the server and the application."""

    __slots__ = ("closing", "limit", "scope", "server_receive", "server_send")

    def __init__(self, scope: Message, receive: Any, send: Any) -> None:
        self.scope = scope
        # Read once per connection rather than once per message.
        self.limit: int = settings.ECHO_MAX_MESSAGE_SIZE
        self.server_receive = receive
        self.server_send = send
        self.closing = False

    async def receive(self) -> Message:
        while True:
            message: Message = await self.server_receive()
            if message["type"] != "websocket.receive":
                return message
            if self.closing:
                continue
            text = message.get("text")
            if text is not None:
                # Size on the wire: encoding ASCII (nearly every text message) would only copy it.
                size = len(text) if text.isascii() else len(text.encode("utf-8"))
            else:
                size = len(message.get("bytes") or b"")
            if size <= self.limit:
                return message
            events.too_big(
                logger,
                scope_connection(self.scope),
                size,
                self.limit,
                "text" if text is not None else "binary",
            )
            self.closing = True
            await self.server_send(
                {
                    "type": "websocket.close",
                    "code": CLOSE_MESSAGE_TOO_BIG,
                    "reason": TOO_BIG_REASON,
                }
            )

    def send(self, message: Message) -> Any:
        # A plain function: a message out costs one call. Any close, ours or another's, is the
        # last word, and nothing that arrives after it is checked or passed on.
        if message["type"] == "websocket.close":
            self.closing = True
        return self.server_send(message)

"""``SubprotocolRequired``: ASGI middleware that refuses, with HTTP 403, a WebSocket handshake
not offering the subprotocol the application speaks, and logs and counts the refusal.

The consumer it wraps checks the subprotocol too, as Channels' tutorial does, so it refuses such
a client on its own wherever it is copied; wrapped in this, it never sees one, and the refusal
gets its ``event=refused reason=subprotocol_missing`` line (with what the client offered) and
its count in /metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import markcoroutinefunction

from project import events
from project.connection import scope_connection
from project.logfields import escaped

logger = logging.getLogger("echo.consumers")

Message = dict[str, Any]


class SubprotocolRequired:
    """Lets through to the application only the WebSocket handshakes that offer
    ``subprotocol``."""

    def __init__(self, application: Any, subprotocol: str) -> None:
        self.application = application
        self.subprotocol = subprotocol

    # Hands back the application's own coroutine instead of awaiting it in one of this piece's,
    # so that no frame of this piece stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: Message, receive: Any, send: Any) -> Awaitable[None]:
        if scope["type"] != "websocket" or self.subprotocol in scope.get("subprotocols", []):
            return self.application(scope, receive, send)  # type: ignore[no-any-return]
        return self.refuse(scope, receive, send)

    async def refuse(self, scope: Message, receive: Any, send: Any) -> None:
        offered = scope.get("subprotocols", [])
        await receive()  # websocket.connect
        offers = escaped(",".join(offered)) or "-"
        events.refused(
            logger, scope_connection(scope), "subprotocol_missing", "offered=%s", offers
        )
        await send({"type": "websocket.close"})

"""The last WebSocket route of ``project/asgi.py``: a path the service does not serve."""

from __future__ import annotations

import logging

from channels.generic.websocket import AsyncWebsocketConsumer

from project import events
from project.connection import scope_connection
from project.logfields import escaped

logger = logging.getLogger("echo.consumers")


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Refuses, with HTTP 403, whatever reaches it: it asked for a path we do not serve."""

    async def connect(self) -> None:
        path = escaped(self.scope["path"])
        events.refused(logger, scope_connection(self.scope), "unknown_path", "path=%s", path)
        await self.close()

"""Which browser pages may open a WebSocket here: the check ``asgi.py`` wraps around the routes.

Browsers always send ``Origin``, so a page on a foreign site is refused (HTTP 403) before it can
use a visitor's browser against this server. Command-line tools and SDKs send no ``Origin`` at
all; Channels' ``AllowedHostsOriginValidator`` would refuse them too, which is wrong for a
service meant to be called from any WebSocket client, so a missing header is accepted here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlparse

from asgiref.sync import markcoroutinefunction
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

from project import events
from project.connection import scope_connection
from project.logfields import escaped

logger = logging.getLogger("echo.handshake")


class BrowserOriginValidator(OriginValidator):
    """Refuses a browser from a host outside ALLOWED_HOSTS; accepts clients without Origin."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, settings.ALLOWED_HOSTS)

    # Hands back the application's own coroutine instead of awaiting it in one of its own, so
    # that no frame of this middleware stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        # What Channels' __call__ does, reading Origin as it does (the last such line), so that
        # the refusal is logged where the scope can name the client.
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin-1")
        if origin is None or self.validate_origin(urlparse(origin)):
            return self.application(scope, receive, send)  # type: ignore[no-any-return]
        connection = scope_connection(scope)
        events.refused(logger, connection, "foreign_origin", "origin=%s", escaped(origin))
        return WebsocketDenier()(scope, receive, send)

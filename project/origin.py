"""Which browser pages may open a WebSocket here: the check ``asgi.py`` wraps around the routes.

Browsers always send ``Origin``, so a page on a foreign site is refused (HTTP 403) before it can
use a visitor's browser against this server. Command-line tools and SDKs send no ``Origin`` at
all; Channels' ``AllowedHostsOriginValidator`` would refuse them too, which is wrong for a
service meant to be called from any WebSocket client, so a missing header is accepted here.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings

from echo import metrics

logger = logging.getLogger("echo.handshake")


class BrowserOriginValidator(OriginValidator):
    """Refuses a browser from a host outside ALLOWED_HOSTS; accepts clients without Origin."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        if self.validate_origin(parsed_origin):
            return True
        logger.info("event=refused reason=foreign_origin origin=%s", parsed_origin.geturl())
        metrics.refused("foreign_origin")
        return False

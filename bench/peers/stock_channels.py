"""The Channels tutorial's way to echo: a plain AsyncWebsocketConsumer with default dispatch.

It runs in this project's Django settings, and under the ``daphne`` command on the project's
daphne server as ``project.asgi`` does, so the only difference from the project's own
``EchoConsumer`` is the consumer code and what the project does around it.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from servers.daphne_command import serve_with_echo_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_application = get_asgi_application()
serve_with_echo_server()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class StockEchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept(subprotocol="echo")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_application,
        "websocket": URLRouter([path("echo", StockEchoConsumer.as_asgi())]),
    }
)

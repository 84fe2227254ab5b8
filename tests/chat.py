"""The chat room of Channels' tutorial (part 3, "Rewrite Chat Server as Asynchronous"), on the
fast path: its ``ChatConsumer`` and route as the tutorial writes them, but for the base class,
``FastWebsocketConsumer`` in place of ``AsyncWebsocketConsumer``, and type hints.

It is what a Channels user most often writes on a channel layer: every member of a room joins
the room's group, and each message a member sends goes to the whole group. The live tests
(``tests/test_chat.py``) serve it as ``tests.chat_asgi:application``, beside nothing of the
service's own routes, and the benchmark's W6 measures it against the same consumer on
``AsyncWebsocketConsumer`` (``bench/peers/stock_chat.py``).
"""

from __future__ import annotations

import json
from typing import Any

from django.urls import re_path

from echo.fastpath import FastWebsocketConsumer

ROOM_ROUTE = r"ws/chat/(?P<room_name>\w+)/$"


class ChatConsumer(FastWebsocketConsumer):
    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"

        await self.channel_layer.group_add(self.room_group_name, self.channel_name)

        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str) -> None:
        text_data_json = json.loads(text_data)
        message = text_data_json["message"]

        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        message = event["message"]

        await self.send(text_data=json.dumps({"message": message}))


websocket_urlpatterns = [
    re_path(ROOM_ROUTE, ChatConsumer.as_asgi()),
]

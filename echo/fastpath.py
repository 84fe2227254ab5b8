"""``FastWebsocketConsumer``: ``AsyncWebsocketConsumer`` with less overhead per message.

Derive a consumer from it instead of ``AsyncWebsocketConsumer`` (or put it first among the bases
of an existing consumer's subclass) and nothing about the consumer changes but its speed. For each
connection it checks what Channels' own loop is there for:

* with a channel layer configured, the consumer has a second input (group messages) that Channels
  multiplexes with the client;
* with a database configured, Channels closes stale database connections before every handler.

When either is configured, the connection runs on Channels' own loop, unchanged. Otherwise there
is one input, the client, and nothing to close, so the loop awaits the client directly (Channels
starts a task and an ``asyncio.wait`` per message), skips ``aclose_old_connections()`` (a
thread-pool hop per message), and hands messages to the server without the extra
``AsyncConsumer.send`` hop; unless a subclass overrides ``websocket_receive``, a message goes
straight to ``receive()`` as Channels' ``websocket_receive`` would pass it. Every handler a
subclass overrides, ``websocket_receive`` and ``dispatch`` included, is still called as Channels
calls it.
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

Message = dict[str, Any]
# What Django puts in DATABASES for a project that configures none.
NO_DATABASE = "django.db.backends.dummy"


def uses_database() -> bool:
    return any(
        database.get("ENGINE", NO_DATABASE) != NO_DATABASE
        for database in settings.DATABASES.values()
    )


class FastWebsocketConsumer(AsyncWebsocketConsumer):
    """An ``AsyncWebsocketConsumer`` that skips Channels' per-message overhead when it can."""

    # Whether Channels' own loop can be skipped; __call__ turns it off, for the one connection,
    # when a channel layer or a database needs that loop (kept off the instance otherwise, which
    # saves a little memory on every idle connection).
    fast_path = True
    # Set per class: whether websocket_receive is Channels' own, which only unpacks a message
    # for receive().
    stock_websocket_receive = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.stock_websocket_receive = (
            cls.websocket_receive is AsyncWebsocketConsumer.websocket_receive
        )

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if get_channel_layer(self.channel_layer_alias) is not None or uses_database():
            self.fast_path = False
            await super().__call__(scope, receive, send)
            return
        # What AsyncConsumer.__call__ sets up when there is no channel layer.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: Message) -> None:
        if not self.fast_path:
            await super().dispatch(message)
            return
        if message["type"] == "websocket.receive" and self.stock_websocket_receive:
            # What Channels' websocket_receive() does, one coroutine sooner.
            text = message.get("text")
            if text is not None:
                await self.receive(text_data=text)
            else:
                await self.receive(bytes_data=message["bytes"])
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """``AsyncWebsocketConsumer.send``, handing the message to the server itself."""
        if not self.fast_path:
            await super().send(text_data, bytes_data, close)
            return
        if text_data is not None:
            await self.base_send({"type": "websocket.send", "text": text_data})
        elif bytes_data is not None:
            await self.base_send({"type": "websocket.send", "bytes": bytes_data})
        else:
            raise ValueError("You must pass one of bytes_data or text_data")
        if close:
            await self.close(close)

"""The ``/echo`` WebSocket consumer: every message goes back to its sender unchanged.

``EchoConsumer`` is the consumer of Channels' tutorial: it accepts clients that offer the
``echo`` subprotocol (any other handshake is refused with HTTP 403) and sends text back as text
and binary as binary. The ASGI server reassembles fragmented messages and answers pings before
anything reaches it. It needs nothing but Channels, so it can be copied as it is.

What every connection here shares is not in the consumer but in pieces wrapped around it in
``echo/routing.py``, each an ASGI middleware in a module of its own that works with any
consumer; ``/echo`` serves this consumer on ``FastWebsocketConsumer`` (``echo.fastpath``),
which delivers messages with less overhead and changes nothing else.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

SUBPROTOCOL = "echo"


class EchoConsumer(AsyncWebsocketConsumer):
    """Echoes each message back on the connection it came from."""

    async def connect(self) -> None:
        if SUBPROTOCOL not in self.scope.get("subprotocols", []):
            await self.close()
            return
        await self.accept(subprotocol=SUBPROTOCOL)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)

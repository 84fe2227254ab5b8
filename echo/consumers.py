"""The ``/echo`` WebSocket consumer: every message goes back to its sender unchanged.

This is the Channels counterpart of the Perfect example's ``EchoHandler``: the handshake is
accepted only for clients that offer the ``echo`` subprotocol, text comes back as text and
binary as binary, and an optional idle timeout closes silent connections. The ASGI server
reassembles fragmented messages and answers pings before anything reaches this module.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from echo.connections import describe_client, open_connections
from echo.idle import IdleTimer

logger = logging.getLogger(__name__)

SUBPROTOCOL = "echo"

# RFC 6455 section 7.4.1 close codes this consumer sends.
CLOSE_NORMAL = 1000
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013

IDLE_REASON = "idle timeout"
TOO_BIG_REASON = "message too big"
AT_CAPACITY_REASON = "server at connection limit, try again later"
PREVIEW_CHARS = 32


@dataclass(slots=True)
class TrafficCounts:
    """What one connection carried, reported when it closes."""

    opened_at: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0


def preview(text_data: str | None, bytes_data: bytes | None) -> str:
    """A short, log-safe glimpse of a message; whole payloads never reach the log."""
    if text_data is not None:
        return repr(text_data[:PREVIEW_CHARS])
    assert bytes_data is not None
    return bytes_data[: PREVIEW_CHARS // 2].hex()


class EchoConsumer(AsyncWebsocketConsumer):
    """Echoes each message back on the connection it came from."""

    client = "unknown"
    counts: TrafficCounts | None = None
    idle_timer: IdleTimer | None = None
    idle_close: asyncio.Task[None] | None = None
    closing = False
    max_message_size = 0
    log_messages = False

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        """Channels' consumer loop for a consumer with no channel layer: one input, no tasks.

        Channels multiplexes the client and a channel layer with a new task and an
        ``asyncio.wait`` per message; with the client as the only input, awaiting it directly
        does the same work for a fraction of the cost.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            self.release()

    def release(self) -> None:
        """Here, not in disconnect(), which is skipped when the server cancels the application:
        no timer, task or count may outlive the connection."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.idle_close is not None and not self.idle_close.done():
            self.idle_close.cancel()
        if self.counts is not None:
            open_connections.closed()

    async def dispatch(self, message: dict[str, object]) -> None:
        """Channels' dispatch, minus its ``aclose_old_connections()`` before every message.

        That call closes stale database connections through a thread-pool hop; this consumer
        never touches a database, and the hop was over a third of the cost of an echo. Messages
        go straight to ``receive()``, without building a handler name or passing through
        ``websocket_receive()``.
        """
        if message["type"] == "websocket.receive":
            await self.receive(message.get("text"), message.get("bytes"))
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
        """Channels' ``send()``, handing the message to the server itself.

        Channels' version passes each message on through ``AsyncConsumer.send()``, one more
        coroutine per echo for nothing this consumer uses; together with ``websocket_receive()``
        that was a fifth of the consumer's time per message.
        """
        if text_data is not None:
            await self.base_send({"type": "websocket.send", "text": text_data})
        elif bytes_data is not None:
            await self.base_send({"type": "websocket.send", "bytes": bytes_data})
        else:
            raise ValueError("You must pass one of bytes_data or text_data")
        if close:
            await self.close(close)

    async def connect(self) -> None:
        self.client = describe_client(self.scope.get("client"))
        offered = self.scope.get("subprotocols", [])
        if SUBPROTOCOL not in offered:
            logger.info(
                "event=refused client=%s reason=subprotocol_missing offered=%s",
                self.client,
                ",".join(offered) or "-",
            )
            await self.close()
            return
        await self.accept(subprotocol=SUBPROTOCOL)
        if open_connections.count >= settings.ECHO_MAX_CONNECTIONS:
            logger.warning(
                "event=refused client=%s reason=capacity open=%d limit=%d",
                self.client,
                open_connections.count,
                settings.ECHO_MAX_CONNECTIONS,
            )
            await self.close_with(CLOSE_TRY_AGAIN_LATER, AT_CAPACITY_REASON)
            return
        open_connections.opened()
        # Read once per connection rather than once per message.
        self.max_message_size = settings.ECHO_MAX_MESSAGE_SIZE
        self.log_messages = logger.isEnabledFor(logging.DEBUG)
        self.counts = TrafficCounts()
        if settings.ECHO_IDLE_TIMEOUT is not None:
            self.idle_timer = IdleTimer(settings.ECHO_IDLE_TIMEOUT, self.on_idle)
        logger.info("event=accepted client=%s subprotocol=%s", self.client, SUBPROTOCOL)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        counts = self.counts
        if self.closing or counts is None:
            return
        if self.idle_timer is not None:
            self.idle_timer.touch()
        if text_data is not None:
            kind = "text"
            # Size on the wire: encoding ASCII (nearly every text message) would only copy it.
            size = len(text_data) if text_data.isascii() else len(text_data.encode("utf-8"))
        else:
            kind = "binary"
            size = len(bytes_data or b"")
        counts.messages_in += 1
        counts.bytes_in += size
        if self.log_messages:
            logger.debug(
                "event=message client=%s type=%s size=%d preview=%s",
                self.client,
                kind,
                size,
                preview(text_data, bytes_data),
            )
        if size > self.max_message_size:
            logger.info(
                "event=too_big client=%s type=%s size=%d limit=%d",
                self.client,
                kind,
                size,
                self.max_message_size,
            )
            await self.close_with(CLOSE_MESSAGE_TOO_BIG, TOO_BIG_REASON)
            return
        await self.send(text_data=text_data, bytes_data=bytes_data)
        counts.messages_out += 1
        counts.bytes_out += size

    async def disconnect(self, code: int) -> None:
        if self.counts is None:
            return
        counts = self.counts
        logger.info(
            "event=closed client=%s code=%s duration=%.3f messages_in=%d bytes_in=%d "
            "messages_out=%d bytes_out=%d",
            self.client,
            code,
            asyncio.get_running_loop().time() - counts.opened_at,
            counts.messages_in,
            counts.bytes_in,
            counts.messages_out,
            counts.bytes_out,
        )

    def on_idle(self) -> None:
        logger.info(
            "event=idle_timeout client=%s timeout=%s", self.client, settings.ECHO_IDLE_TIMEOUT
        )
        self.idle_close = asyncio.ensure_future(self.close_with(CLOSE_NORMAL, IDLE_REASON))

    async def close_with(self, code: int, reason: str) -> None:
        """Close once; messages still in flight after our close frame are not echoed."""
        if not self.closing:
            self.closing = True
            await self.close(code=code, reason=reason)

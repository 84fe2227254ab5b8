"""The ``/echo`` WebSocket consumer: every message goes back to its sender unchanged.

This is the Channels counterpart of the Perfect example's ``EchoHandler``: the handshake is
accepted only for clients that offer the ``echo`` subprotocol, text comes back as text and
binary as binary, and an optional idle timeout closes silent connections. The ASGI server
reassembles fragmented messages and answers pings before anything reaches this module.

``EchoConsumer`` is a plain ``AsyncWebsocketConsumer``, in the shape of Channels' tutorial.
``/echo`` serves ``FastEchoConsumer``: the same consumer on ``FastWebsocketConsumer``, which
delivers messages with less overhead and changes nothing else.
"""

from __future__ import annotations

import asyncio
import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from echo import metrics
from echo.connections import TrafficCounts, open_connections
from echo.fastpath import FastWebsocketConsumer
from echo.idle import IdleTimer
from project.logfields import escaped, peer_name

logger = logging.getLogger(__name__)

SUBPROTOCOL = "echo"

# RFC 6455 section 7.4.1 close codes this consumer sends.
CLOSE_NORMAL = 1000
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
# What the log says of a connection that ended without the server reporting a close code
# (RFC 6455's "abnormal closure", which servers report for a lost connection too).
CLOSE_ABNORMAL = 1006

IDLE_REASON = "idle timeout"
TOO_BIG_REASON = "message too big"
AT_CAPACITY_REASON = "server at connection limit, try again later"
PREVIEW_CHARS = 32


def preview(text_data: str | None, bytes_data: bytes | None) -> str:
    """A short, log-safe glimpse of a message; whole payloads never reach the log."""
    if text_data is not None:
        return escaped(text_data[:PREVIEW_CHARS])
    assert bytes_data is not None
    return bytes_data[: PREVIEW_CHARS // 2].hex()


class EchoConsumer(AsyncWebsocketConsumer):
    """Echoes each message back on the connection it came from."""

    client = "unknown"
    counts: TrafficCounts | None = None
    close_code: int | None = None
    idle_timer: IdleTimer | None = None
    idle_close: asyncio.Task[None] | None = None
    closing = False
    max_message_size = 0
    log_messages = False

    async def connect(self) -> None:
        self.client = peer_name(self.scope.get("client"))
        offered = self.scope.get("subprotocols", [])
        if SUBPROTOCOL not in offered:
            logger.info(
                "event=refused client=%s reason=subprotocol_missing offered=%s",
                self.client,
                escaped(",".join(offered)) or "-",
            )
            metrics.refused("subprotocol_missing")
            await self.close()
            return
        await self.accept(subprotocol=SUBPROTOCOL)
        # Open from here on, so released, and logged as closed, once, when the connection's task
        # ends, however it ends: the server may cancel it, or a send raise, without a
        # disconnect(), and no timer or count may outlive the connection.
        self.counts = TrafficCounts()
        current_task = asyncio.current_task()
        assert current_task is not None
        current_task.add_done_callback(self.release)
        if open_connections.count >= settings.ECHO_MAX_CONNECTIONS:
            logger.warning(
                "event=refused client=%s reason=capacity open=%d limit=%d",
                self.client,
                open_connections.count,
                settings.ECHO_MAX_CONNECTIONS,
            )
            metrics.refused("capacity")
            await self.close_with(CLOSE_TRY_AGAIN_LATER, AT_CAPACITY_REASON)
            return
        open_connections.opened(self.counts)
        metrics.ACCEPTED.inc()
        # Read once per connection rather than once per message.
        self.max_message_size = settings.ECHO_MAX_MESSAGE_SIZE
        self.log_messages = logger.isEnabledFor(logging.DEBUG)
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
            counts.text_in += 1
            counts.text_bytes_in += size
        else:
            kind = "binary"
            size = len(bytes_data or b"")
            counts.binary_in += 1
            counts.binary_bytes_in += size
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
        if text_data is not None:
            counts.text_out += 1
            counts.text_bytes_out += size
        else:
            counts.binary_out += 1
            counts.binary_bytes_out += size

    async def disconnect(self, code: int) -> None:
        # The server's word on how the connection ended, logged when it has ended (release).
        self.close_code = code

    def release(self, _: asyncio.Task[None]) -> None:
        """The end of an open connection: its timers stop, its traffic joins the totals, and
        its close is counted and logged, with the code the server reported, or 1006."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.idle_close is not None and not self.idle_close.done():
            self.idle_close.cancel()
        counts = self.counts
        assert counts is not None
        open_connections.closed(counts)
        code = CLOSE_ABNORMAL if self.close_code is None else self.close_code
        metrics.closed(code)
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
        self.idle_close.add_done_callback(self.idle_close_done)

    def idle_close_done(self, idle_close: asyncio.Task[None]) -> None:
        """Takes the error of an idle close the server could not send, which asyncio would log
        as an ERROR ("Task exception was never retrieved") whenever the task is collected.

        ASGI servers raise an OSError for a connection that has gone: nothing is left to close,
        and its end is logged when its task ends. Any other error is a defect, reported as such.
        """
        if idle_close.cancelled():
            return
        error = idle_close.exception()
        if error is not None and not isinstance(error, OSError):
            asyncio.get_running_loop().call_exception_handler(
                {"message": "idle close failed", "exception": error, "task": idle_close}
            )

    async def close_with(self, code: int, reason: str) -> None:
        """Close once; messages still in flight after our close frame are not echoed."""
        if not self.closing:
            self.closing = True
            await self.close(code=code, reason=reason)


class FastEchoConsumer(FastWebsocketConsumer, EchoConsumer):
    """What ``/echo`` serves: ``EchoConsumer`` on the fast path (``echo/fastpath.py``).

    It changes how fast messages reach ``EchoConsumer``, not what it does with them; the
    consumer tests run against both.
    """


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """The last WebSocket route: anything that reaches it asked for a path we do not serve."""

    async def connect(self) -> None:
        logger.info(
            "event=refused client=%s reason=unknown_path path=%s",
            peer_name(self.scope.get("client")),
            escaped(self.scope["path"]),
        )
        metrics.refused("unknown_path")
        await self.close()

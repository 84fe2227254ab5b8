"""``IdleTimeout``: ASGI middleware that closes a WebSocket which has received nothing for
ECHO_IDLE_TIMEOUT seconds, with 1000 and the reason ``idle timeout``.

Wrap any WebSocket consumer in it (``IdleTimeout(MyConsumer.as_asgi())``); with the setting
unset it changes nothing. The timer starts when the application accepts and stops when any
close goes out or the connection's task ends, so no timer outlives its connection. Messages
that arrive after the idle close are not passed on: the close frame is the last word.

``IdleTimer`` keeps one ``asyncio.TimerHandle`` per connection and re-arms it lazily when it
fires early, so a busy connection pays one float store per message instead of a cancel and a
reschedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.conf import settings

from project import events
from project.connection import scope_connection

logger = logging.getLogger("echo.consumers")

Message = dict[str, Any]
CLOSE_NORMAL = 1000
IDLE_REASON = "idle timeout"


class IdleTimer:
    """Calls ``on_idle`` once when ``touch()`` has not been called for ``timeout`` seconds."""

    def __init__(self, timeout: float, on_idle: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._time = self._loop.time
        self._timeout = timeout
        self._on_idle = on_idle
        self._last_activity = self._loop.time()
        self._handle = self._loop.call_later(timeout, self._expire)

    def touch(self) -> None:
        self._last_activity = self._time()

    def cancel(self) -> None:
        self._handle.cancel()

    def _expire(self) -> None:
        remaining = self._last_activity + self._timeout - self._loop.time()
        if remaining > 0:
            self._handle = self._loop.call_later(remaining, self._expire)
        else:
            self._on_idle()


class IdleTimeout:
    """Closes the connections of the WebSocket application it wraps once they go silent."""

    def __init__(self, application: Any) -> None:
        self.application = application

    # Hands back the application's own coroutine instead of awaiting it in one of this piece's,
    # so that no frame of this piece stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: Message, receive: Any, send: Any) -> Awaitable[None]:
        timeout = settings.ECHO_IDLE_TIMEOUT
        if scope["type"] != "websocket" or timeout is None:
            return self.application(scope, receive, send)  # type: ignore[no-any-return]
        connection = IdleConnection(scope, timeout, receive, send)
        return self.application(scope, connection.receive, connection.send)  # type: ignore[no-any-return]


class IdleConnection:
    """One connection's idle timer, between the server and the application."""

    __slots__ = (
        "closing",
        "idle_close",
        "scope",
        "server_receive",
        "server_send",
        "timeout",
        "timer",
    )

    def __init__(self, scope: Message, timeout: float, receive: Any, send: Any) -> None:
        self.scope = scope
        self.timeout = timeout
        self.server_receive = receive
        self.server_send = send
        self.timer: IdleTimer | None = None
        self.idle_close: asyncio.Future[None] | None = None
        self.closing = False

    def receive(self) -> Any:
        # A plain function: the clock restarts each time the application is ready for the next
        # message, so silence is what the timer measures, however long a message took.
        if self.closing:
            return self.until_disconnect()
        if self.timer is not None:
            self.timer.touch()
        return self.server_receive()

    async def until_disconnect(self) -> Message:
        """What the application hears after the idle close: only its end."""
        while True:
            message: Message = await self.server_receive()
            if message["type"] != "websocket.receive":
                return message

    def send(self, message: Message) -> Any:
        # A plain function: a message out costs one call.
        kind = message["type"]
        if kind == "websocket.send":
            # A message the application took just before the idle close: its answer would
            # follow the close frame.
            return self.server_send(message) if not self.closing else dropped()
        if kind == "websocket.accept":
            return self.accept(message)
        if kind == "websocket.close":
            self.closing = True
            if self.timer is not None:
                self.timer.cancel()
        return self.server_send(message)

    async def accept(self, message: Message) -> None:
        await self.server_send(message)
        if not self.closing:
            self.timer = IdleTimer(self.timeout, self.on_idle)
            task = asyncio.current_task()
            assert task is not None
            task.add_done_callback(self.release)

    def release(self, _: asyncio.Task[None]) -> None:
        """The connection's task has ended: neither its timer nor its idle close may outlive it."""
        if self.timer is not None:
            self.timer.cancel()
        if self.idle_close is not None and not self.idle_close.done():
            self.idle_close.cancel()

    def on_idle(self) -> None:
        events.timeout(logger, scope_connection(self.scope), "idle", self.timeout)
        self.closing = True
        self.idle_close = asyncio.ensure_future(self.close())
        self.idle_close.add_done_callback(idle_close_done)

    async def close(self) -> None:
        await self.server_send(
            {"type": "websocket.close", "code": CLOSE_NORMAL, "reason": IDLE_REASON}
        )


async def dropped() -> None:
    """A send that goes nowhere."""


def idle_close_done(idle_close: asyncio.Future[None]) -> None:
    """Takes the error of an idle close the server could not send, which asyncio would log as
    an ERROR ("Task exception was never retrieved") whenever the task is collected.

    ASGI servers raise an OSError for a connection that has gone: nothing is left to close, and
    its end is logged when its task ends. Any other error is a defect, reported as such.
    """
    if idle_close.cancelled():
        return
    error = idle_close.exception()
    if error is not None and not isinstance(error, OSError):
        asyncio.get_running_loop().call_exception_handler(
            {"message": "idle close failed", "exception": error, "task": idle_close}
        )

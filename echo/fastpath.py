"""``FastWebsocketConsumer``: ``AsyncWebsocketConsumer`` that pays Channels' per-message costs only
when something needs them.

Derive a consumer from it instead of ``AsyncWebsocketConsumer`` (or put it first among the bases
of an existing consumer's subclass) and nothing about the consumer changes but its speed, with or
without a database or a channel layer. Channels' loop (``AsyncConsumer.__call__`` and
``dispatch``) pays two things for every message:

* ``aclose_old_connections()`` before every handler: a hop to a worker thread, to run Django's
  ``close_old_connections()`` there, so that no handler reuses a database connection that is
  past ``CONN_MAX_AGE``, had errors, was left out of autocommit or is due a health check. Here
  the hop is taken when a connection that clean-up can reach is in one of those states
  (``is_due_closing`` reads them as Django's ``close_if_unusable_or_obsolete()`` does), and
  skipped when the clean-up would do nothing: a message whose handling touched no database
  costs no hop.
* With a channel layer, ``await_many_dispatch()``: a new task and an ``asyncio.wait`` for every
  message, to multiplex the client with the layer. Here each input has one reader task for the
  life of the connection (``dispatch_from``). Handlers still run one at a time in the
  consumer's own task, and each input's messages arrive in order.

Without a layer the loop awaits the client directly. A ``websocket.receive`` goes straight to
``receive()`` unless a subclass overrides ``websocket_receive``, and ``send()`` hands its message
to the server without the extra ``AsyncConsumer.send`` call. Every handler a subclass overrides,
``websocket_receive`` and ``dispatch`` included, is called as Channels calls it.

This re-implements the loop of one Channels release, ``CHANNELS_RELEASE``; under another, the
consumer runs on Channels' own loop. The first connection of a process logs which it is, and
why (``event=fast_path``, logger ``echo.fastpath``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import channels
from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
STOCK_WEBSOCKET_RECEIVE = AsyncWebsocketConsumer.websocket_receive

# The Channels release (major, minor) whose consumer loop this re-implements.
CHANNELS_RELEASE = (4, 3)


def release(version: str) -> tuple[int, ...]:
    """The (major, minor) of a version such as ``4.3.2`` or ``5.0a1``."""
    return tuple(int(number) for number in re.findall(r"\d+", version)[:2])


RELEASE_MATCHES = release(channels.__version__) == CHANNELS_RELEASE

# Every database connection Django opens, with the thread it belongs to. Channels' clean-up runs
# in a worker thread and reaches that thread's connections only; one opened on the event loop's
# thread (by start-up checks) is out of its reach, and left out here too.
opened_connections: weakref.WeakKeyDictionary[BaseDatabaseWrapper, int] = (
    weakref.WeakKeyDictionary()
)
opened_connections_lock = threading.Lock()
# Until Django opens a first connection there is nothing to clean up, and a message pays for no
# check at all.
connection_opened = False


def remember_connection(sender: type, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    global connection_opened
    with opened_connections_lock:
        opened_connections[connection] = threading.get_ident()
    connection_opened = True


connection_created.connect(remember_connection, dispatch_uid=__name__)


def is_due_closing(connection: BaseDatabaseWrapper) -> bool:
    """Whether Django's ``close_if_unusable_or_obsolete()`` would close this connection, or have
    it health-checked before its next use: the conditions that method tests."""
    if connection.connection is None:
        return False
    return bool(
        connection.autocommit != connection.settings_dict["AUTOCOMMIT"]
        or connection.errors_occurred
        or (connection.close_at is not None and time.monotonic() >= connection.close_at)
        or (connection.health_check_enabled and connection.health_check_done)
    )


def clean_up_needed() -> bool:
    """Whether Channels' ``aclose_old_connections()`` would change anything before a handler.
    Like that clean-up, this is a check before the handler, not before each of its queries: the
    handlers of other connections share the worker thread, and its connections, in between."""
    loop_thread = threading.get_ident()
    with opened_connections_lock:
        opened = list(opened_connections.items())
    return any(
        thread != loop_thread and is_due_closing(connection) for connection, thread in opened
    )


async def dispatch_from(
    inputs: Sequence[Receive], dispatch: Callable[[Message], Awaitable[None]]
) -> None:
    """Hand the messages of several inputs to ``dispatch``, one at a time, each input's in its
    order, as Channels' ``await_many_dispatch()`` does, with one reader task per input instead
    of a new task per message. An input reads its next message once its last one has been
    dispatched, so none reads ahead further than under Channels; an input that fails ends the
    loop with its error."""
    loop = asyncio.get_running_loop()
    arrived: deque[tuple[Message | BaseException, asyncio.Future[None]]] = deque()
    wakeup: asyncio.Future[None] | None = None

    def hand_over(outcome: Message | BaseException, dispatched: asyncio.Future[None]) -> None:
        arrived.append((outcome, dispatched))
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def read(receive: Receive) -> None:
        while True:
            dispatched: asyncio.Future[None] = loop.create_future()
            try:
                message = await receive()
            except BaseException as error:
                hand_over(error, dispatched)
                if isinstance(error, asyncio.CancelledError):
                    raise
                return
            hand_over(message, dispatched)
            await dispatched

    readers = [asyncio.ensure_future(read(receive)) for receive in inputs]
    try:
        while True:
            while not arrived:
                wakeup = loop.create_future()
                await wakeup
            outcome, dispatched = arrived.popleft()
            if isinstance(outcome, BaseException):
                raise outcome
            await dispatch(outcome)
            dispatched.set_result(None)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.wait(readers)


announced = False


def announce(consumer: FastWebsocketConsumer) -> None:
    """Log, once per process, whether connections take the fast path, and if not why."""
    global announced
    if announced:
        return
    announced = True
    consumer_name = f"{type(consumer).__module__}.{type(consumer).__qualname__}"
    if not RELEASE_MATCHES:
        logger.info(
            "event=fast_path taken=no reason=channels_release channels=%s written_for=%s "
            "consumer=%s",
            channels.__version__,
            ".".join(map(str, CHANNELS_RELEASE)),
            consumer_name,
        )
        return
    layer = consumer.channel_layer
    logger.info(
        "event=fast_path taken=yes channel_layer=%s consumer=%s",
        "none" if layer is None else f"{type(layer).__module__}.{type(layer).__qualname__}",
        consumer_name,
    )


class FastWebsocketConsumer(AsyncWebsocketConsumer):
    """An ``AsyncWebsocketConsumer`` that skips Channels' per-message overhead where nothing
    needs it."""

    async def __call__(self, scope: Message, receive: Receive, send: Any) -> None:
        if not RELEASE_MATCHES:
            announce(self)
            await super().__call__(scope, receive, send)
            return
        # What AsyncConsumer.__call__ sets up.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        announce(self)
        try:
            if self.channel_layer is None:
                while True:
                    await self.dispatch(await receive())
            else:
                self.channel_name = await self.channel_layer.new_channel()
                self.channel_receive = partial(self.channel_layer.receive, self.channel_name)
                await dispatch_from((receive, self.channel_receive), self.dispatch)
        except StopConsumer:
            pass

    async def dispatch(self, message: Message) -> None:
        if not RELEASE_MATCHES:
            await super().dispatch(message)
            return
        # Channels' websocket_receive() only unpacks a message for receive(); looked up for each
        # message, as Channels does, so that one set on the class or the instance later is called.
        if (
            message.get("type") == "websocket.receive"
            and getattr(self.websocket_receive, "__func__", None) is STOCK_WEBSOCKET_RECEIVE
        ):
            if connection_opened and clean_up_needed():
                await aclose_old_connections()
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
        if connection_opened and clean_up_needed():
            await aclose_old_connections()
        await handler(message)

    async def send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """``AsyncWebsocketConsumer.send``, handing the message to the server itself."""
        if not RELEASE_MATCHES:
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

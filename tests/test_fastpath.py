"""``FastWebsocketConsumer`` as a reusable piece: Channels' contract kept, its overhead dropped
only where nothing needs it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from channels import consumer as channels_consumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing.websocket import WebsocketCommunicator
from pytest_django import Settings

from echo.fastpath import FastWebsocketConsumer
from tests.timing import bound

MESSAGES = 50


class Announcer(FastWebsocketConsumer):
    """A consumer in a group, as a chat room would be, that also echoes its client."""

    groups = ["listeners"]  # noqa: RUF012  (Channels' own attribute, a list by its contract)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)

    async def announce(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class FastEcho(FastWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class StockEcho(AsyncWebsocketConsumer):
    """The same echo on Channels' own loop, for comparison."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class ShoutingReceiver(FastWebsocketConsumer):
    """Overrides ``websocket_receive``, a hook Channels documents for subclasses."""

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"].upper())


async def open_connection(consumer: type[AsyncWebsocketConsumer]) -> WebsocketCommunicator:
    client = WebsocketCommunicator(consumer.as_asgi(), "/")
    connected, _ = await client.connect(timeout=bound(1))
    assert connected
    return client


class Recorder:
    """Keeps what a consumer hands to the server."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


@pytest.mark.parametrize(
    "arguments",
    [
        {"text_data": "é"},
        {"text_data": ""},
        {"bytes_data": b""},
        {"bytes_data": b"\x00", "close": True},
        {"text_data": "bye", "close": 4000},
        {"text_data": "t", "bytes_data": b"b"},
    ],
    ids=["text", "empty-text", "empty-binary", "binary-close", "text-close-code", "both"],
)
async def test_send_hands_the_server_what_channels_would(arguments: dict[str, Any]) -> None:
    """``send()`` passes the server exactly the messages Channels' own ``send()`` passes."""
    fast, stock = FastWebsocketConsumer(), AsyncWebsocketConsumer()
    fast.base_send, stock.base_send = Recorder(), Recorder()
    await fast.send(**arguments)
    await stock.send(**arguments)
    assert fast.base_send.sent == stock.base_send.sent


async def test_send_refuses_no_payload_as_channels_does() -> None:
    """``send()`` with neither text nor bytes is the same error as in Channels."""
    fast, stock = FastWebsocketConsumer(), AsyncWebsocketConsumer()
    fast.base_send, stock.base_send = Recorder(), Recorder()
    errors = []
    for consumer in (fast, stock):
        with pytest.raises(ValueError, match="bytes_data or text_data") as error:
            await consumer.send()
        errors.append(str(error.value))
    assert errors[0] == errors[1]


async def test_group_messages_arrive_with_a_channel_layer(settings: Settings) -> None:
    """With a channel layer configured, a consumer in a group receives ``group_send`` messages
    as well as its client's."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    client = await open_connection(Announcer)
    await get_channel_layer().group_send("listeners", {"type": "announce", "text": "to all"})
    assert await client.receive_from(timeout=bound(1)) == "to all"
    await client.send_to(text_data="and an echo")
    assert await client.receive_from(timeout=bound(1)) == "and an echo"
    await client.disconnect()


async def test_overridden_websocket_receive_is_called() -> None:
    """A subclass's ``websocket_receive`` gets every message, as under Channels' own loop."""
    client = await open_connection(ShoutingReceiver)
    await client.send_to(text_data="quiet")
    assert await client.receive_from(timeout=bound(1)) == "QUIET"
    await client.disconnect()


async def messages_cost(
    monkeypatch: pytest.MonkeyPatch, consumer: type[AsyncWebsocketConsumer]
) -> tuple[int, int]:
    """Tasks started and database clean-ups run while MESSAGES messages are echoed."""
    tasks, cleanups = 0, 0
    real_cleanup = channels_consumer.aclose_old_connections

    def counting_factory(loop: asyncio.AbstractEventLoop, coroutine: Any, **kwargs: Any) -> Any:
        nonlocal tasks
        tasks += 1
        return asyncio.Task(coroutine, loop=loop, **kwargs)

    async def counting_cleanup() -> None:
        nonlocal cleanups
        cleanups += 1
        await real_cleanup()

    client = await open_connection(consumer)
    monkeypatch.setattr(channels_consumer, "aclose_old_connections", counting_cleanup)
    loop = asyncio.get_running_loop()
    loop.set_task_factory(counting_factory)
    try:
        for number in range(MESSAGES):
            await client.send_to(text_data=str(number))
            assert await client.receive_from(timeout=bound(1)) == str(number)
    finally:
        loop.set_task_factory(None)
        monkeypatch.undo()
    await client.disconnect()
    return tasks, cleanups


async def test_client_alone_costs_no_task_or_cleanup_per_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With neither a channel layer nor a database, messages reach the consumer without a task
    or a database clean-up each; Channels' own loop spends one of each per message."""
    fast_tasks, fast_cleanups = await messages_cost(monkeypatch, FastEcho)
    stock_tasks, stock_cleanups = await messages_cost(monkeypatch, StockEcho)
    # The test client itself starts a task or two per message; Channels starts one more.
    assert fast_tasks + MESSAGES <= stock_tasks
    assert (fast_cleanups, stock_cleanups) == (0, MESSAGES)


# Django warns that DATABASES may not be overridden safely; only the setting's presence is read.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning")
async def test_database_keeps_channels_cleanup(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """With a database configured, stale database connections are closed before every message,
    as Channels does."""
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    _, cleanups = await messages_cost(monkeypatch, FastEcho)
    assert cleanups == MESSAGES


async def test_echo_takes_the_direct_path(
    monkeypatch: pytest.MonkeyPatch, static_root: Path
) -> None:
    """``/echo``, with every piece it shares around it, hands each message straight to
    ``receive()``: Channels' ``websocket_receive`` is never called, so no piece has turned the
    fast path's direct dispatch off."""
    from project.asgi import application

    calls = 0
    stock_websocket_receive = AsyncWebsocketConsumer.websocket_receive

    async def counting(self: AsyncWebsocketConsumer, message: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        await stock_websocket_receive(self, message)

    monkeypatch.setattr(AsyncWebsocketConsumer, "websocket_receive", counting)
    client = WebsocketCommunicator(application, "/echo", subprotocols=["echo"])
    assert (await client.connect(timeout=bound(1)))[0]
    for number in range(MESSAGES):
        await client.send_to(text_data=str(number))
        assert await client.receive_from(timeout=bound(1)) == str(number)
    await client.disconnect()
    assert calls == 0

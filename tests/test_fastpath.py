"""``FastWebsocketConsumer`` as a reusable piece: Channels' contract kept, its overhead dropped
only where nothing needs it. Its database and channel layer behaviour have files of their own
(tests/test_fastpath_database.py, tests/test_fastpath_layer.py), and the Channels and Django
internals it relies on theirs (tests/test_fastpath_contracts.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing.websocket import WebsocketCommunicator

from echo import fastpath
from echo.fastpath import FastWebsocketConsumer
from tests.costs import Costs, counted
from tests.timing import bound

MESSAGES = 50


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


async def test_websocket_receive_set_later_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``websocket_receive`` put on the class after it was made (a test's patch, a decorator)
    gets every message, as under Channels' own loop."""

    async def shout(self: FastEcho, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"].upper())

    monkeypatch.setattr(FastEcho, "websocket_receive", shout, raising=False)
    client = await open_connection(FastEcho)
    await client.send_to(text_data="quiet")
    assert await client.receive_from(timeout=bound(1)) == "QUIET"
    await client.disconnect()


class WrappingReceiver(FastWebsocketConsumer):
    """Wraps its own ``websocket_receive`` for one connection, as per-connection middleware in a
    consumer might."""

    async def connect(self) -> None:
        channels_websocket_receive = self.websocket_receive

        async def announced(message: dict[str, Any]) -> None:
            await self.send(text_data="announced")
            await channels_websocket_receive(message)

        self.websocket_receive = announced  # type: ignore[method-assign]
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


async def test_websocket_receive_set_on_the_instance_is_called() -> None:
    """A ``websocket_receive`` set on one consumer instance gets its messages."""
    client = await open_connection(WrappingReceiver)
    await client.send_to(text_data="hello")
    assert await client.receive_from(timeout=bound(1)) == "announced"
    assert await client.receive_from(timeout=bound(1)) == "hello"
    await client.disconnect()


async def test_a_message_without_a_type_fails_as_in_channels() -> None:
    """A message with no ``type`` ends the consumer with Channels' own error."""
    errors = []
    for consumer in (FastEcho, StockEcho):
        client = await open_connection(consumer)
        await client.send_input({"text": "untyped"})
        with pytest.raises(ValueError, match="no 'type' attribute") as error:
            await client.receive_from(timeout=bound(1))
        errors.append(str(error.value))
    assert errors[0] == errors[1]


async def test_overridden_websocket_receive_is_called() -> None:
    """A subclass's ``websocket_receive`` gets every message, as under Channels' own loop."""
    client = await open_connection(ShoutingReceiver)
    await client.send_to(text_data="quiet")
    assert await client.receive_from(timeout=bound(1)) == "QUIET"
    await client.disconnect()


async def echo_costs(consumer: type[AsyncWebsocketConsumer]) -> Costs:
    """What echoing MESSAGES messages costs ``consumer``'s loop."""
    client = await open_connection(consumer)
    with counted() as costs:
        for number in range(MESSAGES):
            await client.send_to(text_data=str(number))
            assert await client.receive_from(timeout=bound(1)) == str(number)
    await client.disconnect()
    return costs


async def test_client_alone_costs_no_task_or_thread_hop_per_message() -> None:
    """Without a channel layer, messages reach the consumer without a task or a worker-thread
    hop each; Channels' own loop spends one of each per message."""
    fast, stock = await echo_costs(FastEcho), await echo_costs(StockEcho)
    # The test client itself starts a task or two per message; Channels starts one more.
    assert fast.tasks + MESSAGES <= stock.tasks
    assert (fast.thread_hops, stock.thread_hops) == (0, MESSAGES)


@pytest.mark.parametrize(
    ("version", "release"), [("4.3.2", (4, 3)), ("4.10.0", (4, 10)), ("5.0a1", (5, 0))]
)
def test_a_release_is_read_from_its_version(version: str, release: tuple[int, int]) -> None:
    """The release a Channels version belongs to is its major and minor number, whatever
    follows them."""
    assert fastpath.release(version) == release


async def test_another_channels_release_runs_on_channels_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Under a Channels release other than the one it re-implements, the consumer runs on
    Channels' own loop, and says so once."""
    monkeypatch.setattr(fastpath, "RELEASE_MATCHES", False)
    monkeypatch.setattr(fastpath, "announced", False)
    monkeypatch.setattr("channels.__version__", "4.4.0")
    with caplog.at_level(logging.INFO, logger="echo.fastpath"):
        costs = await echo_costs(FastEcho)
        await echo_costs(FastEcho)
    assert costs.thread_hops == MESSAGES
    assert [record.getMessage() for record in caplog.records] == [
        "event=fast_path taken=no reason=channels_release channels=4.4.0 written_for=4.3 "
        "consumer=tests.test_fastpath.FastEcho"
    ]


async def test_the_first_connection_says_the_fast_path_is_taken(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first connection of a process logs one line: the fast path is taken, and with which
    channel layer."""
    monkeypatch.setattr(fastpath, "announced", False)
    with caplog.at_level(logging.INFO, logger="echo.fastpath"):
        await echo_costs(FastEcho)
        await echo_costs(FastEcho)
    assert [record.getMessage() for record in caplog.records] == [
        "event=fast_path taken=yes channel_layer=none consumer=tests.test_fastpath.FastEcho"
    ]


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

    # Counting stands in for Channels' own, which the fast path recognises as its own.
    monkeypatch.setattr(AsyncWebsocketConsumer, "websocket_receive", counting)
    monkeypatch.setattr(fastpath, "STOCK_WEBSOCKET_RECEIVE", counting)
    client = WebsocketCommunicator(application, "/echo", subprotocols=["echo"])
    assert (await client.connect(timeout=bound(1)))[0]
    for number in range(MESSAGES):
        await client.send_to(text_data=str(number))
        assert await client.receive_from(timeout=bound(1)) == str(number)
    await client.disconnect()
    assert calls == 0

"""``FastWebsocketConsumer`` with a channel layer: what Channels' loop does with a second input,
without a task per message, on ``InMemoryChannelLayer`` and on channels-redis against a real
Redis server.

Each behaviour is run on the fast consumer and on the same consumer on Channels' own loop
(``AsyncWebsocketConsumer``), and the two must agree: group membership, ``group_send``, a
``channel_layer.send`` to the consumer's own channel, ``StopConsumer``, the refusal of
``_``-prefixed and dotted types, errors, and the order of each input's messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing.websocket import WebsocketCommunicator
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_django import Settings

from echo.fastpath import FastWebsocketConsumer
from tests.chat_settings import channel_layers
from tests.costs import counted
from tests.timing import bound

ROOM = "room"
MESSAGES = 50


class Member:
    """A consumer's own logic, put on either loop below: it echoes its client, relays the
    room's messages and its own channel's, and stops or fails when told to."""

    groups = [ROOM]  # noqa: RUF012  (Channels' own attribute, a list by its contract)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "channel?":
            await self.send(text_data=self.channel_name)
        else:
            await self.send(text_data=f"client:{text_data}")

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=f"room:{event['text']}")

    async def own_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=f"own:{event['text']}")

    async def leave(self, event: dict[str, Any]) -> None:
        raise StopConsumer

    async def fail(self, event: dict[str, Any]) -> None:
        raise RuntimeError(event["text"])


class FastMember(Member, FastWebsocketConsumer):
    pass


class StockMember(Member, AsyncWebsocketConsumer):
    pass


BOTH_LOOPS = pytest.mark.parametrize("consumer", [FastMember, StockMember], ids=["fast", "stock"])


class LostLayer(InMemoryChannelLayer):
    """A layer whose connection is lost once a consumer waits on it."""

    async def receive(self, channel: str) -> dict[str, Any]:
        raise ConnectionError("channel layer lost")


@pytest.fixture(autouse=True, params=["memory", "redis"])
def layer(request: pytest.FixtureRequest, settings: Settings) -> None:
    """Each test on ``InMemoryChannelLayer``, then on channels-redis."""
    if request.param == "redis":
        settings.CHANNEL_LAYERS = channel_layers(request.getfixturevalue("redis_server").url)
    else:
        settings.CHANNEL_LAYERS = channel_layers("memory")


async def join(consumer: type[AsyncWebsocketConsumer]) -> tuple[WebsocketCommunicator, str]:
    """A connected client of ``consumer``, and the consumer's channel name."""
    client = WebsocketCommunicator(consumer.as_asgi(), "/")
    connected, _ = await client.connect(timeout=bound(1))
    assert connected
    await client.send_to(text_data="channel?")
    return client, await client.receive_from(timeout=bound(1))


async def replies(client: WebsocketCommunicator, count: int) -> list[str]:
    return [await client.receive_from(timeout=bound(1)) for _ in range(count)]


@BOTH_LOOPS
async def test_each_inputs_messages_arrive_in_order(
    consumer: type[AsyncWebsocketConsumer],
) -> None:
    """Client messages and room messages sent interleaved all arrive, each input's in the order
    it was sent."""
    client, _ = await join(consumer)
    layer = get_channel_layer()
    for number in range(MESSAGES):
        await client.send_to(text_data=str(number))
        await layer.group_send(ROOM, {"type": "room.message", "text": str(number)})
    received = await replies(client, 2 * MESSAGES)
    numbers = [str(number) for number in range(MESSAGES)]
    assert [text for text in received if text.startswith("client:")] == [
        f"client:{number}" for number in numbers
    ]
    assert [text for text in received if text.startswith("room:")] == [
        f"room:{number}" for number in numbers
    ]
    await client.disconnect()


@BOTH_LOOPS
async def test_a_send_to_the_consumers_own_channel_reaches_it(
    consumer: type[AsyncWebsocketConsumer],
) -> None:
    """``channel_layer.send`` to the consumer's ``channel_name`` reaches its handler."""
    client, channel_name = await join(consumer)
    await get_channel_layer().send(channel_name, {"type": "own.message", "text": "direct"})
    assert await client.receive_from(timeout=bound(1)) == "own:direct"
    await client.disconnect()


@BOTH_LOOPS
async def test_a_member_that_leaves_stops_receiving(
    consumer: type[AsyncWebsocketConsumer],
) -> None:
    """A client that disconnects leaves the room; the others still get its messages."""
    leaving, leaving_channel = await join(consumer)
    staying, _ = await join(consumer)
    layer = get_channel_layer()
    await leaving.disconnect()
    await layer.group_send(ROOM, {"type": "room.message", "text": "after"})
    assert await staying.receive_from(timeout=bound(1)) == "room:after"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(leaving_channel), 0.2)
    await staying.disconnect()


@BOTH_LOOPS
async def test_stop_consumer_from_the_layer_ends_the_consumer_cleanly(
    consumer: type[AsyncWebsocketConsumer],
) -> None:
    """A layer message whose handler raises ``StopConsumer`` ends the consumer without error."""
    client, _ = await join(consumer)
    await get_channel_layer().group_send(ROOM, {"type": "leave"})
    await asyncio.wait_for(asyncio.shield(client.future), bound(1))
    assert client.future.exception() is None


@BOTH_LOOPS
@pytest.mark.parametrize(
    ("message_type", "error"),
    [
        ("_leave", r"Malformed type in message \(leading underscore\)"),
        (".leave", r"Malformed type in message \(leading underscore\)"),
        ("no.such.handler", "No handler for message type no.such.handler"),
    ],
    ids=["underscore", "leading-dot", "unknown"],
)
async def test_blocked_and_unknown_types_fail_as_in_channels(
    consumer: type[AsyncWebsocketConsumer], message_type: str, error: str
) -> None:
    """A layer message of a ``_``-prefixed, dot-prefixed or unknown type calls no handler and
    ends the consumer with Channels' own error."""
    client, channel_name = await join(consumer)
    await get_channel_layer().send(channel_name, {"type": message_type})
    with pytest.raises(ValueError, match=error):
        await client.receive_from(timeout=bound(1))


@BOTH_LOOPS
async def test_a_handlers_error_ends_the_consumer_with_it(
    consumer: type[AsyncWebsocketConsumer],
) -> None:
    """An error raised by a layer message's handler is the consumer's error."""
    client, _ = await join(consumer)
    await get_channel_layer().group_send(ROOM, {"type": "fail", "text": "handler failed"})
    with pytest.raises(RuntimeError, match="handler failed"):
        await client.receive_from(timeout=bound(1))


@BOTH_LOOPS
async def test_a_lost_layer_ends_the_consumer_with_its_error(
    consumer: type[AsyncWebsocketConsumer], settings: Settings
) -> None:
    """An error from the layer's ``receive()`` is the consumer's error."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.LostLayer"}}
    client = WebsocketCommunicator(consumer.as_asgi(), "/")

    async def connect_and_listen() -> None:
        # Channels' loop may run the connect handler before the failed receive, or not.
        await client.connect(timeout=bound(1))
        await client.receive_from(timeout=bound(1))

    with pytest.raises(ConnectionError, match="channel layer lost"):
        await connect_and_listen()


def readers() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__ == "dispatch_from.<locals>.read"  # type: ignore[union-attr]
    ]


async def test_the_readers_end_with_the_connection() -> None:
    """The fast consumer's two reader tasks live as long as its connection, no longer."""
    client, _ = await join(FastMember)
    assert len(readers()) == 2
    await client.disconnect()
    assert readers() == []


async def test_the_layer_costs_no_task_per_message() -> None:
    """Client and room messages reach the fast consumer without a task each; Channels' loop
    starts one per message."""
    costs = {}
    for consumer in (FastMember, StockMember):
        client, _ = await join(consumer)
        layer = get_channel_layer()
        with counted() as costs[consumer]:
            for number in range(MESSAGES):
                await client.send_to(text_data=str(number))
                await layer.group_send(ROOM, {"type": "room.message", "text": str(number)})
                await replies(client, 2)
        await client.disconnect()
    # The test client starts a task or two per message of its own; Channels one more for each.
    assert costs[FastMember].tasks + 2 * MESSAGES <= costs[StockMember].tasks
    assert (costs[FastMember].thread_hops, costs[StockMember].thread_hops) == (0, 2 * MESSAGES)


# A session: what a client sends, what goes to the room, and what to the consumer's own channel.
STEPS = st.lists(
    st.tuples(st.sampled_from(["client", "room", "own"]), st.text(max_size=8)), max_size=30
)


async def transcript(
    consumer: type[AsyncWebsocketConsumer], steps: list[tuple[str, str]]
) -> list[str]:
    """What a client of ``consumer`` receives when ``steps`` are sent without waiting."""
    client, channel_name = await join(consumer)
    layer = get_channel_layer()
    for source, text in steps:
        if source == "client":
            await client.send_input({"type": "websocket.receive", "text": text})
        elif source == "room":
            await layer.group_send(ROOM, {"type": "room.message", "text": text})
        else:
            await layer.send(channel_name, {"type": "own.message", "text": text})
    received = await replies(client, len(steps))
    assert await client.receive_nothing(timeout=0.01)
    await client.disconnect()
    return received


@settings(max_examples=40, deadline=None, derandomize=True)
@given(steps=STEPS)
async def test_any_session_delivers_what_channels_loop_delivers(
    steps: list[tuple[str, str]],
) -> None:
    """For any mix of client, room and own-channel messages, the fast consumer delivers the same
    messages as Channels' loop, with each input's in the same order."""

    def by_input(received: list[str]) -> dict[str, list[str]]:
        inputs: dict[str, list[str]] = {"client": [], "room": [], "own": []}
        for text in received:
            source, _, _ = text.partition(":")
            inputs[source].append(text)
        return inputs

    fast = await transcript(FastMember, steps)
    stock = await transcript(StockMember, steps)
    assert by_input(fast) == by_input(stock)
    # The layer's two sources share one input, so their relative order is kept as well.
    assert [text for text in fast if not text.startswith("client:")] == [
        text for text in stock if not text.startswith("client:")
    ]

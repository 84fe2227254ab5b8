"""The tutorial's chat room on the fast consumer (``tests/chat.py``), on a real channel layer:
channels-redis against a real Redis server, under daphne and uvicorn, with real clients; and
in-process, on ``InMemoryChannelLayer`` and on channels-redis.

A room's members are in one group, so each message a member sends reaches every member, its
sender included, and the messages of one sender arrive in the order it sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing.websocket import WebsocketCommunicator
from pytest_django import Settings
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from tests.chat import websocket_urlpatterns
from tests.chat_settings import channel_layers
from tests.conftest import ServerFactory
from tests.live import PROJECT_DIR, SERVER_KINDS, LiveServer, connect_echo
from tests.redis_server import RedisServer
from tests.timing import bound

CHAT_APPLICATION = "tests.chat_asgi:application"
MEMBERS = 5
MESSAGES = 10
# channels-redis keeps a group's members in this key (its default prefix, "asgi").
GROUP_KEY = "asgi:group:chat_{room}"
# How often, and how long at most, a test looks for the layer to have caught up.
POLL_INTERVAL = 0.05
POLL_SECONDS = 5
# redis-py 8's default read timeout, which channels-redis's blocking read must not be given.
REDIS_PY_READ_TIMEOUT = 5


def new_room() -> str:
    """A room no other test uses: the Redis server and the live servers serve the session."""
    return f"room{uuid.uuid4().hex[:12]}"


def text(sender: int, number: int) -> str:
    return f"{sender}:{number}"


def by_sender(messages: list[str]) -> dict[int, list[int]]:
    """Each sender's message numbers, in the order they arrived."""
    numbers: dict[int, list[int]] = {}
    for message in messages:
        sender, number = message.split(":")
        numbers.setdefault(int(sender), []).append(int(number))
    return numbers


@pytest.fixture(params=[kind for kind in SERVER_KINDS if kind != "runserver"])
def chat_server(
    request: pytest.FixtureRequest, live_servers: ServerFactory, redis_server: RedisServer
) -> LiveServer:
    """The chat room on channels-redis against the session's Redis server, under daphne and
    uvicorn (``manage.py runserver`` serves the project's application alone)."""
    return live_servers(
        request.param,
        CHAT_APPLICATION,
        DJANGO_SETTINGS_MODULE="tests.chat_settings",
        ECHO_CHAT_CHANNEL_LAYER=redis_server.url,
    )


@contextlib.asynccontextmanager
async def members(
    server: LiveServer, room: str, count: int = MEMBERS
) -> AsyncIterator[list[ClientConnection]]:
    """``count`` clients in ``room``; each has joined the room's group once its handshake is
    done, as the consumer joins before it accepts."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                connect_echo(f"{server.ws_url}/ws/chat/{room}/", subprotocols=None)
            )
            for _ in range(count)
        ]


async def send(client: ClientConnection, message: str) -> None:
    await client.send(json.dumps({"message": message}))


async def receive(client: ClientConnection, count: int) -> list[str]:
    """The next ``count`` messages of the room, each within the wait bound."""
    return [
        json.loads(await asyncio.wait_for(client.recv(), bound(5)))["message"]
        for _ in range(count)
    ]


def assert_clean_log(server: LiveServer, since: int) -> None:
    logged = server.log()[since:]
    for trouble in ("ERROR", "Traceback"):
        assert trouble not in logged, f"the server log shows {trouble!r}:\n{logged[-3000:]}"


async def group_size(redis_server: RedisServer, room: str) -> int:
    async with Redis.from_url(redis_server.url) as redis:
        return await redis.zcard(GROUP_KEY.format(room=room))


async def wait_for_group_size(redis_server: RedisServer, room: str, size: int) -> None:
    """Returns once the room's group has ``size`` members; a consumer leaves the group after
    its client has gone."""
    for _ in range(round(bound(POLL_SECONDS) / POLL_INTERVAL)):
        if await group_size(redis_server, room) == size:
            return
        await asyncio.sleep(POLL_INTERVAL)
    raise AssertionError(f"the group has {await group_size(redis_server, room)}, not {size}")


@pytest.mark.live
async def test_every_member_receives_every_message_in_order(chat_server: LiveServer) -> None:
    """Each of five members sends ten messages at once; every member receives all fifty, each
    sender's in the order sent."""
    since = chat_server.log_end()
    async with members(chat_server, new_room()) as clients:
        for sender, client in enumerate(clients):
            for number in range(MESSAGES):
                await send(client, text(sender, number))
        received = await asyncio.gather(
            *(receive(client, MEMBERS * MESSAGES) for client in clients)
        )
    for messages in received:
        assert by_sender(messages) == {sender: list(range(MESSAGES)) for sender in range(MEMBERS)}
    assert_clean_log(chat_server, since)


@pytest.mark.live
async def test_a_member_that_leaves_stops_receiving(
    chat_server: LiveServer, redis_server: RedisServer
) -> None:
    """A member that closes leaves the room's group; the others keep receiving every message,
    and the server logs no error for the member that went."""
    since = chat_server.log_end()
    room = new_room()
    async with members(chat_server, room) as clients:
        await wait_for_group_size(redis_server, room, MEMBERS)
        leaving, staying = clients[0], clients[1:]
        await leaving.close()
        await wait_for_group_size(redis_server, room, MEMBERS - 1)
        for sender, client in enumerate(staying, start=1):
            await send(client, text(sender, 0))
        received = await asyncio.gather(*(receive(client, len(staying)) for client in staying))
    for messages in received:
        assert by_sender(messages) == {sender: [0] for sender in range(1, MEMBERS)}
    assert_clean_log(chat_server, since)


@pytest.mark.live
async def test_rooms_are_apart(chat_server: LiveServer) -> None:
    """Members of one room receive none of another room's messages."""
    since = chat_server.log_end()
    async with (
        members(chat_server, new_room(), 2) as first,
        members(chat_server, new_room(), 2) as second,
    ):
        for number in range(MESSAGES):
            await send(first[0], text(0, number))
        await asyncio.gather(*(receive(client, MESSAGES) for client in first))
        # The first room's messages have all been delivered; a message of the second room's
        # own is the first that its members receive.
        await send(second[0], text(1, 0))
        assert await asyncio.gather(*(receive(client, 1) for client in second)) == [
            [text(1, 0)],
            [text(1, 0)],
        ]
    assert_clean_log(chat_server, since)


# In-process, on both layers.


@pytest.fixture(params=["memory", "redis"])
def chat_layer(request: pytest.FixtureRequest, settings: Settings) -> str:
    """``InMemoryChannelLayer``, or channels-redis against the session's Redis server."""
    layer = request.getfixturevalue("redis_server").url if request.param == "redis" else "memory"
    settings.CHANNEL_LAYERS = channel_layers(layer)
    return request.param


async def join(room: str) -> WebsocketCommunicator:
    client = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{room}/")
    connected, _ = await client.connect(timeout=bound(1))
    assert connected
    return client


async def receive_in_process(client: WebsocketCommunicator, count: int) -> list[str]:
    return [
        json.loads(await client.receive_from(timeout=bound(1)))["message"] for _ in range(count)
    ]


async def test_room_in_process(chat_layer: str) -> None:
    """Every member receives every message, each sender's in order, and after one member
    leaves the others still receive each other's messages."""
    room = new_room()
    clients = [await join(room) for _ in range(3)]
    for sender, client in enumerate(clients):
        for number in range(MESSAGES):
            await client.send_to(text_data=json.dumps({"message": text(sender, number)}))
    for client in clients:
        messages = await receive_in_process(client, 3 * MESSAGES)
        assert by_sender(messages) == {sender: list(range(MESSAGES)) for sender in range(3)}
    await clients[0].disconnect()
    await clients[1].send_to(text_data=json.dumps({"message": text(1, MESSAGES)}))
    for client in clients[1:]:
        assert await receive_in_process(client, 1) == [text(1, MESSAGES)]
        assert await client.receive_nothing(timeout=0.1)
        await client.disconnect()


def readme_channel_layers(redis_url: str) -> dict[str, Any]:
    """The README's ``CHANNEL_LAYERS`` for channels-redis, pointed at ``redis_url``."""
    readme = (PROJECT_DIR / "README.md").read_text()
    (block,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        if "CHANNEL_LAYERS" in block
    ]
    namespace: dict[str, Any] = {}
    exec(block.replace("redis://127.0.0.1:6379", redis_url), namespace)  # noqa: S102  (the README's own text)
    return namespace["CHANNEL_LAYERS"]  # type: ignore[no-any-return]


async def test_a_quiet_room_outlives_the_redis_clients_read_timeout(
    redis_server: RedisServer, settings: Settings
) -> None:
    """On the README's channels-redis settings, a room with no message for longer than
    redis-py's default 5-s read timeout still delivers the next one."""
    settings.CHANNEL_LAYERS = readme_channel_layers(redis_server.url)
    room = new_room()
    client = await join(room)
    await asyncio.sleep(REDIS_PY_READ_TIMEOUT + 0.5)
    await client.send_to(text_data=json.dumps({"message": text(0, 0)}))
    assert await receive_in_process(client, 1) == [text(0, 0)]
    await client.disconnect()

"""The pieces ``/echo`` shares with every connection, each wrapped alone around a bare consumer:
each works without the others, with any ``AsyncWebsocketConsumer``."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing.websocket import WebsocketCommunicator
from pytest_django import Settings

from echo import capacity
from echo.capacity import ConnectionLimit
from echo.connection_log import ConnectionLog
from echo.consumers import EchoConsumer
from echo.idle import IdleTimeout
from echo.message_size import MessageSizeLimit
from echo.subprotocol import SubprotocolRequired
from project.events import REFUSED
from tests.timing import bound


class BareEcho(AsyncWebsocketConsumer):
    """The tutorial's consumer, with no subprotocol and nothing of the project's."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


async def connect(application: Any) -> WebsocketCommunicator:
    client = WebsocketCommunicator(application, "/")
    connected, _ = await client.connect(timeout=bound(1))
    assert connected
    return client


async def test_idle_timeout_alone_closes_a_silent_connection(settings: Settings) -> None:
    """A bare consumer wrapped in ``IdleTimeout`` alone is closed with 1000 after the silence."""
    settings.ECHO_IDLE_TIMEOUT = 0.2
    client = await connect(IdleTimeout(BareEcho.as_asgi()))
    await client.send_to(text_data="hello")
    assert await client.receive_from(timeout=bound(1)) == "hello"
    closed = await client.receive_output(timeout=bound(2))
    assert closed == {"type": "websocket.close", "code": 1000, "reason": "idle timeout"}


async def test_idle_timeout_alone_leaves_no_timer(settings: Settings) -> None:
    """A connection that ends before its idle timeout leaves no timer behind to close it."""
    settings.ECHO_IDLE_TIMEOUT = 0.2
    client = await connect(IdleTimeout(BareEcho.as_asgi()))
    await client.disconnect()
    loop = asyncio.get_running_loop()
    assert [handle for handle in loop._scheduled if not handle.cancelled()] == []  # type: ignore[attr-defined]


async def test_message_size_limit_alone_refuses_too_big(settings: Settings) -> None:
    """A bare consumer wrapped in ``MessageSizeLimit`` alone closes with 1009 over the limit,
    and the message never reaches the consumer."""
    settings.ECHO_MAX_MESSAGE_SIZE = 8
    client = await connect(MessageSizeLimit(BareEcho.as_asgi()))
    await client.send_to(bytes_data=b"12345678")
    assert await client.receive_from(timeout=bound(1)) == b"12345678"
    await client.send_to(text_data="123456789")
    closed = await client.receive_output(timeout=bound(1))
    assert closed == {"type": "websocket.close", "code": 1009, "reason": "message too big"}
    await client.send_to(text_data="after the close")
    assert await client.receive_nothing(timeout=0.2)


async def test_connection_limit_alone_refuses_beyond_the_limit(settings: Settings) -> None:
    """A bare consumer wrapped in ``ConnectionLimit`` alone takes the limit's connections and
    closes the next with 1013; once one ends, a place is free again."""
    settings.ECHO_MAX_CONNECTIONS = capacity.open_count() + 1
    application = ConnectionLimit(BareEcho.as_asgi())
    first = await connect(application)
    second = await connect(application)
    closed = await second.receive_output(timeout=bound(1))
    assert closed["code"] == 1013
    await second.send_to(text_data="not echoed")
    assert await second.receive_nothing(timeout=0.2)
    await second.disconnect(code=1013)
    await first.disconnect()
    third = await connect(application)
    await third.send_to(text_data="in")
    assert await third.receive_from(timeout=bound(1)) == "in"
    await third.disconnect()


async def test_connection_log_alone_logs_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    """A bare consumer wrapped in ``ConnectionLog`` alone has its accept and its close, with the
    traffic each way, logged once."""
    client = await connect(ConnectionLog(BareEcho.as_asgi()))
    await client.send_to(text_data="héllo")
    assert await client.receive_from(timeout=bound(1)) == "héllo"
    await client.disconnect(code=1000)
    await asyncio.wait([client.future])
    lines = [record.getMessage() for record in caplog.records]
    (accepted,) = [line for line in lines if line.startswith("event=accepted ")]
    assert re.fullmatch(r"event=accepted client=unknown subprotocol=- conn=[0-9a-f]+", accepted)
    (closed,) = [line for line in lines if line.startswith("event=closed ")]
    assert closed.split()[-1] == accepted.split()[-1]
    assert " code=1000 " in closed
    assert " messages_in=1 bytes_in=6 messages_out=1 bytes_out=6" in closed


async def test_message_size_limit_stands_aside_for_a_server_that_enforces_it(
    settings: Settings,
) -> None:
    """Under a server that says it refuses messages over the limit itself, ``MessageSizeLimit``
    hands the application the server's own receive and send, and costs nothing per message."""
    settings.ECHO_MAX_MESSAGE_SIZE = 8
    seen: dict[str, Any] = {}

    async def application(scope: Any, receive: Any, send: Any) -> None:
        seen.update(receive=receive, send=send)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": "websocket", "extensions": {"message_size_limit": {"bytes": 8}}}
    await MessageSizeLimit(application)(scope, receive, send)
    assert seen == {"receive": receive, "send": send}
    scope["extensions"]["message_size_limit"]["bytes"] = 9
    await MessageSizeLimit(application)(scope, receive, send)
    assert seen["receive"] is not receive


async def test_subprotocol_required_alone_refuses_a_client_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bare consumer wrapped in ``SubprotocolRequired`` alone never sees a handshake without
    the subprotocol: it is refused (HTTP 403), logged with what was offered, and counted."""
    before = REFUSED.labels(reason="subprotocol_missing")._value.get()
    client = WebsocketCommunicator(
        SubprotocolRequired(BareEcho.as_asgi(), "echo"), "/", subprotocols=["chat"]
    )
    connected, status = await client.connect(timeout=bound(1))
    assert (connected, status) == (False, 1000)
    assert "event=refused client=" in caplog.text
    assert "reason=subprotocol_missing offered=chat " in caplog.text
    assert REFUSED.labels(reason="subprotocol_missing")._value.get() == before + 1
    accepted = WebsocketCommunicator(
        SubprotocolRequired(BareEcho.as_asgi(), "echo"), "/", subprotocols=["chat", "echo"]
    )
    assert (await accepted.connect(timeout=bound(1)))[0]
    await accepted.disconnect()


async def test_echo_consumer_alone_refuses_a_client_without_echo() -> None:
    """``EchoConsumer`` copied without any piece still refuses a client that does not offer
    ``echo``, and echoes for one that does."""
    refused = WebsocketCommunicator(EchoConsumer.as_asgi(), "/", subprotocols=["chat"])
    assert (await refused.connect(timeout=bound(1)))[0] is False
    client = WebsocketCommunicator(EchoConsumer.as_asgi(), "/", subprotocols=["echo"])
    assert await client.connect(timeout=bound(1)) == (True, "echo")
    await client.send_to(bytes_data=b"\x00\x01")
    assert await client.receive_from(timeout=bound(1)) == b"\x00\x01"
    await client.disconnect()

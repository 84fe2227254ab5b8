"""The echo consumer through the real ``project.asgi.application``, driven in-process.

Every echo test runs twice: against ``/echo`` as the project serves it (``FastEchoConsumer``)
and against the plain ``EchoConsumer`` on Channels' own loop, behind the same origin check.
The fast base may change speed, never behaviour.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing.websocket import WebsocketCommunicator
from django.urls import path as route
from django.urls import re_path
from pytest_django import Settings

from echo.consumers import EchoConsumer
from echo.routing import with_shared_concerns
from echo.unknown_path import UnknownPathConsumer
from project.origin import BrowserOriginValidator
from tests.timing import bound

ClientFactory = Callable[..., WebsocketCommunicator]
Wrapper = Callable[[Any], Any]

# The same routes as the project's, serving the plain consumer with the same shared pieces.
STOCK_APPLICATION = BrowserOriginValidator(
    URLRouter(
        [
            route("echo", with_shared_concerns(EchoConsumer.as_asgi())),
            re_path(r"", UnknownPathConsumer.as_asgi()),
        ]
    )
)


@pytest.fixture(params=["fast", "stock"])
def echo_client(request: pytest.FixtureRequest, static_root: Path) -> ClientFactory:
    """Opens in-process connections to each version of the consumer in turn."""
    # Imported once the static files are collected: building it sets WhiteNoise up on them.
    from project.asgi import application

    served = application if request.param == "fast" else STOCK_APPLICATION

    def open_client(
        path: str = "/echo",
        subprotocols: list[str] | None = None,
        origin: bytes | None = None,
        server: Wrapper = lambda application: application,
    ) -> WebsocketCommunicator:
        headers = [(b"origin", origin)] if origin is not None else []
        return WebsocketCommunicator(
            server(served),
            path,
            headers=headers,
            subprotocols=["echo"] if subprotocols is None else subprotocols,
        )

    return open_client


async def test_accepts_and_negotiates_echo(echo_client: ClientFactory) -> None:
    """A client offering ``echo`` is accepted with ``echo`` as the subprotocol."""
    client = echo_client()
    assert await client.connect() == (True, "echo")
    await client.disconnect()


async def test_picks_echo_among_several_offers(echo_client: ClientFactory) -> None:
    """A client offering ``chat, echo`` is accepted with ``echo``, never with ``chat``."""
    client = echo_client(subprotocols=["chat", "echo"])
    assert await client.connect() == (True, "echo")
    await client.disconnect()


@pytest.mark.parametrize("offered", [[], ["chat"], ["Echo"], ["echo2"]])
async def test_refuses_without_echo_subprotocol(
    echo_client: ClientFactory, offered: list[str]
) -> None:
    """A client that does not offer exactly ``echo`` is refused before the handshake completes."""
    client = echo_client(subprotocols=offered)
    connected, _ = await client.connect()
    assert connected is False


async def test_refuses_foreign_origin(echo_client: ClientFactory) -> None:
    """A browser page on a host outside ALLOWED_HOSTS is refused."""
    client = echo_client(origin=b"http://evil.example")
    connected, _ = await client.connect()
    assert connected is False


async def test_accepts_same_host_origin(echo_client: ClientFactory) -> None:
    """A browser page served from an allowed host is accepted."""
    client = echo_client(origin=b"http://localhost:8000")
    assert await client.connect() == (True, "echo")
    await client.disconnect()


async def test_accepts_missing_origin(echo_client: ClientFactory) -> None:
    """A non-browser client that sends no Origin header is accepted."""
    client = echo_client(origin=None)
    assert await client.connect() == (True, "echo")
    await client.disconnect()


async def test_refuses_unknown_path(echo_client: ClientFactory) -> None:
    """A WebSocket handshake for a path other than /echo is refused, not an error."""
    client = echo_client(path="/nowhere")
    connected, _ = await client.connect()
    assert connected is False


@pytest.mark.parametrize(
    "text",
    ["hello", "", "naïve café", "emoji 🎉 beyond the BMP 𝄞", "x" * 70_000],
    ids=["ascii", "empty", "latin", "astral", "long"],
)
async def test_echoes_text_as_text(echo_client: ClientFactory, text: str) -> None:
    """A text message comes back as the identical text message."""
    client = echo_client()
    await client.connect()
    # send_to() refuses empty payloads, so the ASGI event is sent as a server would send it.
    await client.send_input({"type": "websocket.receive", "text": text})
    assert await client.receive_output() == {"type": "websocket.send", "text": text}
    await client.disconnect()


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01\xfe\xff", b"", bytes(range(256)) * 300],
    ids=["small", "empty", "long"],
)
async def test_echoes_binary_as_binary(echo_client: ClientFactory, data: bytes) -> None:
    """A binary message comes back as the identical binary message."""
    client = echo_client()
    await client.connect()
    await client.send_input({"type": "websocket.receive", "bytes": data})
    assert await client.receive_output() == {"type": "websocket.send", "bytes": data}
    await client.disconnect()


async def test_keeps_order_over_many_messages(echo_client: ClientFactory) -> None:
    """A thousand interleaved text and binary messages come back in the order they were sent."""
    client = echo_client()
    await client.connect()
    sent = [str(i) if i % 2 else str(i).encode() for i in range(1000)]
    for message in sent:
        if isinstance(message, str):
            await client.send_to(text_data=message)
        else:
            await client.send_to(bytes_data=message)
    received = []
    for _ in sent:
        output = await client.receive_output()
        received.append(output.get("text", output.get("bytes")))
    assert received == sent
    await client.disconnect()


async def test_no_idle_timeout_by_default(echo_client: ClientFactory, settings: Settings) -> None:
    """Without ECHO_IDLE_TIMEOUT a silent connection stays open past another's idle timeout."""
    assert settings.ECHO_IDLE_TIMEOUT is None
    settings.ECHO_IDLE_TIMEOUT = 0.2
    timed = echo_client()
    await timed.connect()
    settings.ECHO_IDLE_TIMEOUT = None
    untimed = echo_client()
    await untimed.connect()
    closed = await timed.receive_output(timeout=bound(2))
    assert closed == {"type": "websocket.close", "code": 1000, "reason": "idle timeout"}
    assert await untimed.receive_nothing(timeout=0.3)
    await untimed.send_to(text_data="still here")
    assert await untimed.receive_from() == "still here"
    await untimed.disconnect()


async def test_idle_timeout_closes_normally_with_reason(
    echo_client: ClientFactory, settings: Settings
) -> None:
    """A connection silent for ECHO_IDLE_TIMEOUT seconds is closed with 1000 and a reason."""
    settings.ECHO_IDLE_TIMEOUT = 0.3
    client = echo_client()
    await client.connect()
    closed = await client.receive_output(timeout=bound(2))
    assert closed == {"type": "websocket.close", "code": 1000, "reason": "idle timeout"}


async def test_each_message_restarts_the_idle_clock(
    echo_client: ClientFactory, settings: Settings
) -> None:
    """A connection that keeps sending stays open past the idle timeout."""
    settings.ECHO_IDLE_TIMEOUT = 0.4
    client = echo_client()
    await client.connect()
    for i in range(6):
        await asyncio.sleep(0.2)
        await client.send_to(text_data=str(i))
        assert await client.receive_from() == str(i)
    closed = await client.receive_output(timeout=bound(2))
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 1000


async def client_leaves(client: WebsocketCommunicator) -> None:
    await client.disconnect()


async def server_cancels(client: WebsocketCommunicator) -> None:
    client.future.cancel()


@pytest.mark.parametrize("end", [client_leaves, server_cancels], ids=lambda end: end.__name__)
async def test_idle_timer_does_not_outlive_the_connection(
    echo_client: ClientFactory,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    end: Callable[..., Awaitable[None]],
) -> None:
    """However a connection ends before its idle timeout, no timer is left to fire later."""
    settings.ECHO_IDLE_TIMEOUT = 0.2
    client = echo_client()
    await client.connect()
    await end(client)
    await asyncio.sleep(0.4)
    assert client.future.done()
    assert client.future.cancelled() or client.future.exception() is None
    assert "event=idle_timeout" not in caplog.text


async def test_message_at_the_limit_echoes(echo_client: ClientFactory, settings: Settings) -> None:
    """A message exactly ECHO_MAX_MESSAGE_SIZE bytes long comes back intact."""
    settings.ECHO_MAX_MESSAGE_SIZE = 64
    client = echo_client()
    await client.connect()
    await client.send_to(bytes_data=b"b" * 64)
    assert await client.receive_from() == b"b" * 64
    await client.send_to(text_data="é" * 32)
    assert await client.receive_from() == "é" * 32
    await client.disconnect()


@pytest.mark.parametrize(
    "message",
    [{"bytes_data": b"b" * 65}, {"text_data": "t" * 65}, {"text_data": "é" * 33}],
    ids=["binary", "text", "multibyte-text"],
)
async def test_message_over_the_limit_closes_with_1009(
    echo_client: ClientFactory, settings: Settings, message: dict[str, str | bytes]
) -> None:
    """A message one byte over ECHO_MAX_MESSAGE_SIZE (counted in UTF-8 bytes) ends with 1009."""
    settings.ECHO_MAX_MESSAGE_SIZE = 64
    client = echo_client()
    await client.connect()
    await client.send_to(**message)
    closed = await client.receive_output()
    assert closed == {"type": "websocket.close", "code": 1009, "reason": "message too big"}


# The end of an accepted connection is logged once, however it ends.


def closed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("event=closed ")
    ]


def send_fails_for(message_type: str, error: Exception | None = None) -> Wrapper:
    """A server whose send raises for ``message_type``: by default as ASGI servers do once the
    client has gone (an OSError)."""

    def server(application: Any) -> Any:
        async def serve(scope: Any, receive: Any, send: Any) -> None:
            async def send_or_fail(message: dict[str, Any]) -> None:
                if message["type"] == message_type:
                    raise error or ConnectionResetError("the client has gone")
                await send(message)

            await application(scope, receive, send_or_fail)

        return serve

    return server


async def test_capacity_refusal_logs_closed_once(
    echo_client: ClientFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection refused at capacity (accepted, then closed with 1013) logs its close once."""
    settings.ECHO_MAX_CONNECTIONS = 0
    client = echo_client()
    await client.connect()
    assert (await client.receive_output())["code"] == 1013
    await client.disconnect(code=1013)
    (closed,) = closed_lines(caplog)
    assert " code=1013 " in closed


async def server_cancels_it(echo_client: ClientFactory) -> WebsocketCommunicator:
    client = echo_client()
    await client.connect()
    client.future.cancel()
    await asyncio.wait([client.future])
    return client


async def its_echo_meets_a_vanished_client(echo_client: ClientFactory) -> WebsocketCommunicator:
    client = echo_client(server=send_fails_for("websocket.send"))
    await client.connect()
    await client.send_to(text_data="anyone there?")
    await asyncio.wait([client.future])
    assert isinstance(client.future.exception(), ConnectionResetError)
    return client


@pytest.mark.parametrize(
    "end", [server_cancels_it, its_echo_meets_a_vanished_client], ids=lambda end: end.__name__
)
async def test_connection_ended_without_a_close_logs_closed_once(
    echo_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    end: Callable[[ClientFactory], Awaitable[WebsocketCommunicator]],
) -> None:
    """A connection that ends without disconnect() logs its close once, with 1006."""
    await end(echo_client)
    (closed,) = closed_lines(caplog)
    assert " code=1006 " in closed


async def test_idle_close_that_cannot_be_sent_logs_no_error(
    echo_client: ClientFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """An idle close the server cannot send (the client has gone) writes no ERROR, then or
    when the connection is gone."""
    await close_idle_connection(echo_client, settings, send_fails_for("websocket.close"))
    assert "event=idle_timeout" in caplog.text
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_idle_close_that_fails_otherwise_is_an_error(
    echo_client: ClientFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """An idle close that fails for any other reason is a defect, and is logged as one, once."""
    failure = send_fails_for("websocket.close", RuntimeError("a defect"))
    await close_idle_connection(echo_client, settings, failure)
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.getMessage().startswith("idle close failed")


async def close_idle_connection(
    echo_client: ClientFactory, settings: Settings, server: Wrapper
) -> None:
    """A connection left idle past its timeout, then ended, and collected."""
    settings.ECHO_IDLE_TIMEOUT = 0.1
    client = echo_client(server=server)
    await client.connect()
    await asyncio.sleep(0.3)
    await client.disconnect(code=1006)
    del client
    gc.collect()

"""ASGI applications for the live tests, served beside the project's echo: one that only reads
and one that echoes slowly.

A server runs them as ``tests.apps:application`` (daphne and uvicorn; ``manage.py runserver``
serves only the project's application). Importing this module imports ``project.asgi``, which
sets Django up and, under the ``daphne`` command, has it serve with ``EchoServer``
(``servers/daphne_command.py``), exactly as it does for the project; every path other than the
two below goes to the project's application, so ``/echo`` is the project's own echo.

Each application logs one line when its connection ends, naming the client as the project's
log does, with the messages it read: that is how a test sees what an application that never
replies has received.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from project.asgi import application as project_application
from project.logfields import peer_name

# Under the ``echo`` loggers, which the project's log configuration prints at LOG_LEVEL.
logger = logging.getLogger("echo.test_apps")

# tests/test_sessions.py names the same paths and delay: it cannot import this module, which
# sets Django up as a server's application.
RECEIVE_ONLY_PATH = "/receive-only"
SLOW_ECHO_PATH = "/slow-echo"
# How long the slow echo waits before answering each message.
SLOW_ECHO_DELAY = 0.005
SUBPROTOCOL = "echo"


class CountingConsumer(AsyncWebsocketConsumer):
    """Accepts any client (with ``echo`` when offered), counts what it reads, and logs the
    count when the connection ends."""

    name = "counting"
    messages = 0
    message_bytes = 0

    async def connect(self) -> None:
        offered = self.scope.get("subprotocols", [])
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.messages += 1
        self.message_bytes += (
            len(text_data.encode("utf-8")) if text_data is not None else len(bytes_data or b"")
        )

    async def disconnect(self, code: int) -> None:
        logger.info(
            "event=%s_closed client=%s code=%s messages=%d bytes=%d",
            self.name,
            peer_name(self.scope.get("client")),
            code,
            self.messages,
            self.message_bytes,
        )


class ReceiveOnlyConsumer(CountingConsumer):
    """Reads every message and never sends one, as an upload or telemetry endpoint does."""

    name = "receive_only"


class SlowEchoConsumer(CountingConsumer):
    """Echoes every message, each after a short wait, as an application doing some work."""

    name = "slow_echo"

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await super().receive(text_data, bytes_data)
        await asyncio.sleep(SLOW_ECHO_DELAY)
        await self.send(text_data=text_data, bytes_data=bytes_data)


ROUTES = {
    RECEIVE_ONLY_PATH: ReceiveOnlyConsumer.as_asgi(),
    SLOW_ECHO_PATH: SlowEchoConsumer.as_asgi(),
}


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The two test applications at their paths; the project's application everywhere else."""
    route = ROUTES.get(scope.get("path", "")) if scope["type"] == "websocket" else None
    await (route or project_application)(scope, receive, send)

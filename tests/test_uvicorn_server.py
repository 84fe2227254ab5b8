"""``project/uvicorn_server.py`` in a state a live server cannot be caught in reliably.

Everything else it does is proved by the live tests, which run under uvicorn too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from echo.connections import SHUTDOWN_REASON
from project.uvicorn_server import EchoWebSocketProtocol

HANDSHAKE = (
    b"GET /echo HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: echo\r\n"
    b"\r\n"
)


class RecordingTransport(asyncio.Transport):
    """Keeps what the protocol writes; a loopback peer as far as uvicorn can tell."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def test_shutdown_before_the_application_answers_gets_503() -> None:
    """A handshake still waiting for the application when the server stops gets 503, not 500,
    and nothing the application sends afterwards reaches the client."""
    connect_received, shut_down = asyncio.Event(), asyncio.Event()

    async def late_application(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        connect_received.set()
        await shut_down.wait()
        await send({"type": "websocket.accept", "subprotocol": "echo"})

    config = Config(app=late_application, lifespan="off", proxy_headers=False)
    config.load()
    state = ServerState()
    protocol = EchoWebSocketProtocol(config, state, {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    await asyncio.wait_for(connect_received.wait(), timeout=5)

    protocol.shutdown()
    shut_down.set()
    await asyncio.wait_for(asyncio.gather(*state.tasks), timeout=5)
    protocol.connection_lost(None)

    assert transport.closed
    response = bytes(transport.written)
    assert response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert response.endswith(f"\r\n\r\n{SHUTDOWN_REASON}\n".encode())
    assert response.count(b"HTTP/1.1") == 1

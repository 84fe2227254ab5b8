"""uvicorn's protocol objects over an in-memory transport.

``Connection("project")`` uses the project's WebSocket protocol (``servers/uvicorn.py``),
``Connection("stock")`` uvicorn's own ``websockets-sansio`` one; a real WebSocket client
(``tests/peer.py``) writes to it and reads what it wrote.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from servers.uvicorn import EchoHTTPProtocol, EchoWebSocketProtocol
from tests.peer import InMemoryConnection, echo_application

WEBSOCKET_PROTOCOLS = {"project": EchoWebSocketProtocol, "stock": WebSocketsSansIOProtocol}
HTTP_PROTOCOLS = {"project": EchoHTTPProtocol, "stock": HttpToolsProtocol}


class RecordingTransport(asyncio.Transport):
    """Keeps what the protocol writes; a loopback peer as far as uvicorn can tell."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.eof_written = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Connection(InMemoryConnection):
    """One client connection to a uvicorn WebSocket protocol object."""

    def __init__(self, kind: str, application: Any = echo_application) -> None:
        super().__init__()
        self.state = ServerState()
        self.protocol = WEBSOCKET_PROTOCOLS[kind](loaded_config(application), self.state, {})
        self.transport = RecordingTransport()
        self.protocol.connection_made(self.transport)

    def deliver(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def take_written(self) -> tuple[bytes, bool]:
        written = bytes(self.transport.written)
        self.transport.written.clear()
        return written, self.transport.closed or self.transport.eof_written

    async def finish(self) -> None:
        for task in self.state.tasks:
            task.cancel()
        await asyncio.gather(*self.state.tasks, return_exceptions=True)
        if not self.protocol.disconnected:
            self.protocol.connection_lost(None)


def loaded_config(application: Any) -> Config:
    """uvicorn's configuration for ``application``, leaving the test process's logging alone."""
    config = Config(app=application, lifespan="off", proxy_headers=False, log_config=None)
    config.load()
    return config

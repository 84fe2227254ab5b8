"""A WebSocket client without a socket, for driving a server protocol object in memory.

It is the ``websockets`` library's Sans-I/O client: it writes a real handshake and real masked
frames, and reads whatever the server protocol wrote back (an HTTP response, frames, a close
frame). Tests hand its bytes to a server protocol and its protocol's output back to it, so the
protocol adjustments in ``servers/`` can be checked against the stock classes without a process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri


@dataclass
class Received:
    """What the server wrote, as the client understood it."""

    response: Response | None = None
    frames: list[Frame] = field(default_factory=list)

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status_code

    @property
    def close(self) -> Close | None:
        for frame in self.frames:
            if frame.opcode is Opcode.CLOSE:
                return Close.parse(frame.data)
        return None

    def messages(self) -> list[str | bytes]:
        return [
            frame.data.decode() if frame.opcode is Opcode.TEXT else frame.data
            for frame in self.frames
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY)
        ]


class Peer:
    """One client connection's worth of bytes in each direction."""

    def __init__(self, path: str = "/echo", *, compression: bool = False) -> None:
        """``compression``: offer permessage-deflate, as websockets' client does by default."""
        self.protocol = ClientProtocol(
            parse_uri(f"ws://127.0.0.1{path}"),
            extensions=[ClientPerMessageDeflateFactory()] if compression else None,
            subprotocols=[Subprotocol("echo")],
            max_size=None,
        )
        self.received = Received()
        self.closed = False

    def handshake(self, **headers: str) -> bytes:
        """The opening handshake; ``headers`` replaces fields, or drops them when empty."""
        request = self.protocol.connect()
        for name, value in headers.items():
            if name in request.headers:
                del request.headers[name]
            if value:
                request.headers[name] = value
        self.protocol.send_request(request)
        return b"".join(self.protocol.data_to_send())

    def text(self, text: str) -> bytes:
        self.protocol.send_text(text.encode())
        return b"".join(self.protocol.data_to_send())

    def binary(self, data: bytes) -> bytes:
        self.protocol.send_binary(data)
        return b"".join(self.protocol.data_to_send())

    def close(self, code: int | None = None, reason: str = "") -> bytes:
        self.protocol.send_close(code, reason)
        return b"".join(self.protocol.data_to_send())

    def read(self, data: bytes, *, closed: bool = False) -> Received:
        """Takes in what the server wrote, and whether it has closed the connection; returns
        everything it has written so far."""
        if data:
            self.protocol.receive_data(data)
        if closed and not self.closed:
            self.closed = True
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self.received.response = event
            else:
                self.received.frames.append(event)
        return self.received


async def settle() -> None:
    """Lets the application's replies cross the event loop to the protocol object."""
    for _ in range(20):
        await asyncio.sleep(0)


async def echo_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts ``echo`` and echoes; answers plain HTTP with 204."""
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "echo"})
    while (event := await receive())["type"] == "websocket.receive":
        payload = {key: event[key] for key in ("text", "bytes") if event.get(key) is not None}
        await send({"type": "websocket.send", **payload})


class GatedApplication:
    """Accepts, then reads nothing until the test opens its gate; counts what it reads."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "echo"})
        await self.gate.wait()
        while (event := await receive())["type"] == "websocket.receive":
            self.received.append(event)


class InMemoryConnection:
    """A server protocol object and the client talking to it; subclasses say how bytes reach
    the protocol and how to collect what it wrote."""

    def __init__(self) -> None:
        self.peer = Peer()

    def deliver(self, data: bytes) -> None:
        raise NotImplementedError

    def take_written(self) -> tuple[bytes, bool]:
        """What the protocol wrote since the last call, and whether it closed the connection."""
        raise NotImplementedError

    async def send(self, data: bytes) -> Received:
        self.deliver(data)
        return await self.read()

    async def read(self) -> Received:
        await settle()
        written, closed = self.take_written()
        return self.peer.read(written, closed=closed)

    async def open(self) -> Received:
        received = await self.send(self.peer.handshake())
        assert received.status == 101, received
        return received

"""daphne's server objects as ``Server.run()`` builds them, over in-memory transports.

``DaphneServer("project", application)`` uses the project's classes (``servers/daphne.py``),
``DaphneServer("stock", application)`` daphne's own. Connections are driven by a real WebSocket
client (``tests/peer.py``); Twisted's delayed calls go to a ``Clock`` the test advances.
"""

from __future__ import annotations

import asyncio
from typing import Any

from daphne.http_protocol import HTTPFactory
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from servers.daphne import EchoHTTPFactory, EchoServer, EchoWebSocketFactory
from tests.peer import InMemoryConnection

CLIENT = address.IPv4Address("TCP", "127.0.0.1", 50000)
SERVER = address.IPv4Address("TCP", "127.0.0.1", 8000)


async def deaf_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, then never reads another message."""
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "echo"})
    await asyncio.Event().wait()


class TCPTransport(StringTransport):
    """A ``StringTransport`` that, like a TCP one, can end its writing side alone."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Connection(InMemoryConnection):
    """One client TCP connection to the in-memory server."""

    def __init__(self, server: Server, clock: Clock) -> None:
        super().__init__()
        self.server = server
        self.transport = TCPTransport(hostAddress=SERVER, peerAddress=CLIENT, lenient=True)
        self.channel = server.http_factory.buildProtocol(CLIENT)
        self.channel.callLater = clock.callLater
        self.channel.makeConnection(self.transport)

    @property
    def websocket(self) -> WebSocketProtocol:
        """The protocol daphne handed the socket to on the upgrade."""
        return self.transport.protocol  # type: ignore[attr-defined,no-any-return]

    def deliver(self, data: bytes) -> None:
        receiver = getattr(self.transport, "protocol", None) or self.channel
        receiver.dataReceived(data)

    def take_written(self) -> tuple[bytes, bool]:
        written = self.transport.value()
        self.transport.clear()
        return written, self.transport.disconnecting

    async def lose(self) -> None:
        """The client's TCP connection is gone."""
        self.websocket.connectionLost(Failure(ConnectionDone()))
        await self.read()


class DaphneServer:
    """daphne's ``Server`` with the factories ``Server.run()`` makes, without a reactor."""

    def __init__(self, kind: str, application: Any) -> None:
        self.server = (EchoServer if kind == "project" else Server)(
            application, endpoints=["tcp:port=0:interface=127.0.0.1"]
        )
        self.server.connections = {}
        self.server.http_factory = (EchoHTTPFactory if kind == "project" else HTTPFactory)(
            self.server
        )
        self.server.ws_factory = (EchoWebSocketFactory if kind == "project" else WebSocketFactory)(
            self.server, server="daphne"
        )
        self.server.ws_factory.setProtocolOptions(
            autoPingTimeout=self.server.ping_timeout,
            allowNullOrigin=True,
            openHandshakeTimeout=self.server.websocket_handshake_timeout,
            maxMessagePayloadSize=self.server.websocket_max_message_size,
            maxFramePayloadSize=self.server.websocket_max_frame_size,
        )
        self.clock = Clock()

    def connect(self) -> Connection:
        return Connection(self.server, self.clock)

    def cancel_applications(self) -> None:
        for details in self.server.connections.values():
            instance = details.get("application_instance")
            if instance is not None:
                instance.cancel()

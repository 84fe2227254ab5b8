"""The internals of daphne, autobahn, Twisted, uvicorn and websockets that ``servers/`` relies on.

Every method ``servers/daphne.py`` and ``servers/uvicorn.py`` override or call is listed here with
the parameters it is called with, and every attribute they read or set is looked for on a real,
stock protocol object after a handshake. A release that renames one or changes its signature
fails here, before any behaviour test has to guess why; ``pyproject.toml`` pins the releases
this list was checked against. The behaviour each adjustment gives is tested in
``tests/test_daphne_adjustments.py`` and ``tests/test_uvicorn_adjustments.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from autobahn.util import encode_truncate
from autobahn.websocket.protocol import WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from daphne import server as daphne_server
from daphne.http_protocol import HTTPFactory
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import tcp
from twisted.internet.testing import StringTransport
from twisted.web import http
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.server import ServerProtocol

from servers import daphne as daphne_adjustments
from tests.daphne_harness import CLIENT, DaphneServer
from tests.daphne_harness import echo_application as daphne_echo
from tests.uvicorn_harness import Connection as UvicornConnection
from tests.uvicorn_harness import RecordingTransport, echo_application, loaded_config

# (class, method, its parameters): overridden by a subclass in servers/, or called from one.
METHODS = [
    # daphne's WebSocket protocol, and autobahn's beneath it.
    (WebSocketProtocol, "connectionMade", ["self"]),
    (WebSocketProtocol, "onConnect", ["self", "request"]),
    (WebSocketProtocol, "onOpen", ["self"]),
    (WebSocketProtocol, "onMessage", ["self", "payload", "isBinary"]),
    (WebSocketProtocol, "failHandshake", ["self", "reason", "code", "responseHeaders"]),
    (WebSocketProtocol, "sendCloseFrame", ["self", "code", "reasonUtf8", "isReply"]),
    (WebSocketProtocol, "dropConnection", ["self", "abort"]),
    (WebSocketProtocol, "connectionLost", ["self", "reason"]),
    (WebSocketProtocol, "applicationCreateWorked", ["self", "application_queue"]),
    (WebSocketProtocol, "check_timeouts", ["self"]),
    (WebSocketProtocol, "handle_reply", ["self", "message"]),
    (
        WebSocketProtocol,
        "sendMessage",
        ["self", "payload", "isBinary", "fragmentSize", "sync", "doNotCompress"],
    ),
    # The sweep that calls check_timeouts, and the factories install() replaces.
    (Server, "timeout_checker", ["self"]),
    (HTTPFactory, "__init__", ["self", "server"]),
    (WebSocketFactory, "__init__", ["self", "server_class", "args", "kwargs"]),
    # Twisted's HTTP channel under daphne, and the TCP transport a WebSocket takes over.
    (http.HTTPChannel, "connectionMade", ["self"]),
    (http.HTTPChannel, "allContentReceived", ["self"]),
    (http.HTTPChannel, "connectionLost", ["self", "reason"]),
    (http.HTTPChannel, "callLater", ["self", "period", "func"]),
    (tcp.Connection, "registerProducer", ["self", "producer", "streaming"]),
    (tcp.Connection, "unregisterProducer", ["self"]),
    (tcp.Connection, "pauseProducing", ["self"]),
    (tcp.Connection, "resumeProducing", ["self"]),
    (tcp.Connection, "abortConnection", ["self"]),
    (ConnectionDeny, "__init__", ["self", "code", "reason"]),
    # uvicorn's protocols.
    (HttpToolsProtocol, "__init__", ["self", "config", "server_state", "app_state", "_loop"]),
    (HttpToolsProtocol, "connection_made", ["self", "transport"]),
    (HttpToolsProtocol, "on_headers_complete", ["self"]),
    (HttpToolsProtocol, "connection_lost", ["self", "exc"]),
    (
        WebSocketsSansIOProtocol,
        "__init__",
        ["self", "config", "server_state", "app_state", "_loop"],
    ),
    (WebSocketsSansIOProtocol, "handle_connect", ["self", "event"]),
    (WebSocketsSansIOProtocol, "send_receive_event_to_app", ["self"]),
    (WebSocketsSansIOProtocol, "handle_parser_exception", ["self"]),
    (WebSocketsSansIOProtocol, "handle_close", ["self", "event"]),
    (WebSocketsSansIOProtocol, "shutdown", ["self"]),
    (WebSocketsSansIOProtocol, "stop_keepalive", ["self"]),
    # The websockets library's Sans-I/O server that uvicorn drives.
    (
        ServerProtocol,
        "__init__",
        [
            *("self", "origins", "extensions", "subprotocols", "select_subprotocol"),
            *("state", "max_size", "logger"),
        ],
    ),
    (ServerProtocol, "reject", ["self", "status", "text"]),
    (ServerProtocol, "send_response", ["self", "response"]),
    (ServerProtocol, "data_to_send", ["self"]),
    (ServerProtocol, "send_close", ["self", "code", "reason"]),
    (Frame, "serialize", ["self", "mask", "extensions"]),
    (Close, "serialize", ["self"]),
]

# Per-connection options servers/daphne.py sets before autobahn copies the factory's.
AUTOBAHN_OPTIONS = [
    *("maxMessagePayloadSize", "maxFramePayloadSize", "openHandshakeTimeout"),
    *("autoPingInterval", "autoPingTimeout", "closeHandshakeTimeout", "versions"),
    *("failByDrop", "echoCloseCodeReason"),
]

# Attributes of an open daphne WebSocket that servers/daphne.py reads or replaces.
DAPHNE_WEBSOCKET_ATTRIBUTES = [
    *("application_queue", "server", "state", "transport", "factory"),
    *("http_request_data", "http_response_data", "http_headers", "request"),
    *("STATE_CONNECTING", "STATE_OPEN"),
]

# Attributes of uvicorn's WebSocket protocol that servers/uvicorn.py reads or sets.
UVICORN_WEBSOCKET_ATTRIBUTES = [
    *("conn", "ping_interval", "ping_timeout", "handshake_initiated", "handshake_complete"),
    *("close_sent", "initial_response", "queue", "frames", "curr_msg_data_type"),
    *("read_paused", "transport", "client", "loop"),
]


@pytest.fixture
def stock_daphne() -> Iterator[DaphneServer]:
    server = DaphneServer("stock", daphne_echo)
    yield server
    server.cancel_applications()


def name_of(owner: type, method: str) -> str:
    return f"{owner.__module__}.{owner.__qualname__}.{method}"


@pytest.mark.parametrize(
    ("owner", "method", "parameters"),
    METHODS,
    ids=[name_of(owner, method) for owner, method, _ in METHODS],
)
def test_method_has_the_signature_relied_on(
    owner: type, method: str, parameters: list[str]
) -> None:
    """The library still defines the method, with the parameters ``servers/`` passes."""
    assert method in dir(owner), f"{name_of(owner, method)} is gone"
    assert list(inspect.signature(getattr(owner, method)).parameters) == parameters


async def test_autobahn_takes_per_connection_options(stock_daphne: DaphneServer) -> None:
    """autobahn copies each option from the factory only where the connection has its own
    unset, so options set in ``connectionMade`` before it runs are the ones used."""
    assert set(AUTOBAHN_OPTIONS) <= set(WebSocketServerProtocol.CONFIG_ATTRS)
    websocket = stock_daphne.server.ws_factory.buildProtocol(CLIENT)
    websocket.maxMessagePayloadSize = 77
    websocket.makeConnection(StringTransport())
    assert websocket.maxMessagePayloadSize == 77
    assert websocket.maxFramePayloadSize == stock_daphne.server.websocket_max_frame_size


def test_daphne_builds_its_factories_when_it_runs() -> None:
    """``Server.run()`` looks up ``HTTPFactory`` in its module and ``WebSocketFactory.protocol``
    on the class when it starts, which is what ``install()`` replaces before that."""
    run = inspect.getsource(Server.run)
    assert "HTTPFactory(self)" in run
    assert "WebSocketFactory(self" in run
    assert daphne_server.HTTPFactory is daphne_adjustments.EchoHTTPFactory
    assert "protocol" in vars(WebSocketFactory)


def test_autobahn_truncates_close_reasons() -> None:
    """``encode_truncate`` cuts UTF-8 at a character boundary within the byte limit."""
    assert list(inspect.signature(encode_truncate).parameters)[:2] == ["text", "limit"]
    assert encode_truncate("é" * 70, 123) == "é".encode() * 61


def test_twisted_transport_has_a_write_buffer_size() -> None:
    """Twisted asks a transport's producer to pause once ``bufferSize`` bytes wait to go out."""
    assert isinstance(tcp.Connection.bufferSize, int)


def test_websockets_names_its_close_codes_and_opcodes() -> None:
    """The close codes and opcodes ``servers/uvicorn.py`` names are still defined."""
    assert (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY) == (1000, 1001)
    assert (CloseCode.INVALID_DATA, CloseCode.NO_STATUS_RCVD) == (1007, 1005)
    assert Opcode.CLOSE.value == 0x8


async def test_daphne_websocket_has_the_attributes_relied_on(stock_daphne: DaphneServer) -> None:
    """An open WebSocket under stock daphne has every attribute ``servers/daphne.py`` reads,
    and daphne records it, and its application, where ``servers/daphne.py`` looks."""
    connection = stock_daphne.connect()
    await connection.open()
    websocket = connection.websocket
    missing = [name for name in DAPHNE_WEBSOCKET_ATTRIBUTES if not hasattr(websocket, name)]
    assert missing == []
    assert websocket.request.path == "/echo"
    assert http.HTTPChannel().requests == []
    assert stock_daphne.server.http_factory.timeOut > 0
    assert "application_instance" in stock_daphne.server.connections[websocket]
    await connection.send(connection.peer.text("queued"))
    await connection.send(connection.peer.close(1000))
    await connection.lose()
    assert "disconnected" in stock_daphne.server.connections[websocket]


@pytest.fixture
async def stock_uvicorn() -> UvicornConnection:
    return UvicornConnection("stock")


async def test_uvicorn_websocket_has_the_attributes_relied_on(
    stock_uvicorn: UvicornConnection,
) -> None:
    """An open WebSocket under stock uvicorn has every attribute ``servers/uvicorn.py`` reads."""
    await stock_uvicorn.open()
    protocol = stock_uvicorn.protocol
    missing = [name for name in UVICORN_WEBSOCKET_ATTRIBUTES if not hasattr(protocol, name)]
    assert missing == []
    assert hasattr(protocol.conn, "logger")
    assert protocol.conn.close_rcvd is None
    await stock_uvicorn.finish()


async def test_uvicorn_http_protocol_has_the_attributes_relied_on() -> None:
    """uvicorn's HTTP protocol keeps the loop, client, transport and keep-alive timeout that
    ``servers/uvicorn.py`` reads and sets."""
    protocol = HttpToolsProtocol(loaded_config(echo_application), ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    assert protocol.transport is transport
    assert protocol.client == ("127.0.0.1", 50000)
    assert protocol.loop is not None
    assert isinstance(protocol.timeout_keep_alive, int | float)
    protocol.connection_lost(None)

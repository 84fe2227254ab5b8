"""The internals of daphne, autobahn, Twisted, uvicorn and websockets that ``servers/`` relies on.

Every method ``servers/daphne.py`` and ``servers/uvicorn.py`` override or call is listed here with
the parameters it is called with, and every attribute they read or set is looked for on a real,
stock protocol object after a handshake. A release that renames one or changes its signature
fails here, before any behaviour test has to guess why; ``pyproject.toml`` pins the releases
this list was checked against. The behaviour each adjustment gives is tested in
``tests/test_daphne_adjustments.py`` and ``tests/test_uvicorn_adjustments.py``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator
from typing import Any

import httptools
import pytest
from autobahn.util import encode_truncate
from autobahn.websocket.compress_deflate import (
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from autobahn.websocket.protocol import WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory
from daphne.management.commands.runserver import Command as RunserverCommand
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.core.management.commands.runserver import Command as DjangoRunserver
from django.utils import autoreload
from twisted.internet import tcp
from twisted.internet.testing import StringTransport
from twisted.web import http
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import PayloadTooBig
from websockets.extensions.permessage_deflate import PerMessageDeflate as WebsocketsDeflate
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.server import ServerProtocol

from servers import daphne as daphne_adjustments
from servers.uvicorn import LazyPerMessageDeflate
from tests.daphne_harness import CLIENT, DaphneServer
from tests.peer import echo_application
from tests.uvicorn_harness import Connection as UvicornConnection
from tests.uvicorn_harness import RecordingTransport, loaded_config

# (class, method, the class that defines it, its parameters): overridden by a subclass in
# servers/, or called from one. A method that moves to another class, or is renamed there, may
# no longer be the one an override replaces.
METHODS = [
    # daphne's WebSocket protocol, and autobahn's beneath it.
    (
        WebSocketProtocol,
        "connectionMade",
        "autobahn.twisted.websocket.WebSocketAdapterProtocol",
        ["self"],
    ),
    (WebSocketProtocol, "onConnect", "daphne.ws_protocol.WebSocketProtocol", ["self", "request"]),
    (WebSocketProtocol, "onOpen", "daphne.ws_protocol.WebSocketProtocol", ["self"]),
    (
        WebSocketProtocol,
        "onMessage",
        "daphne.ws_protocol.WebSocketProtocol",
        ["self", "payload", "isBinary"],
    ),
    (
        WebSocketProtocol,
        "failHandshake",
        "autobahn.websocket.protocol.WebSocketServerProtocol",
        ["self", "reason", "code", "responseHeaders"],
    ),
    (
        WebSocketProtocol,
        "sendCloseFrame",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "code", "reasonUtf8", "isReply"],
    ),
    (
        WebSocketProtocol,
        "dropConnection",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "abort"],
    ),
    (
        WebSocketProtocol,
        "connectionLost",
        "autobahn.twisted.websocket.WebSocketAdapterProtocol",
        ["self", "reason"],
    ),
    (
        WebSocketProtocol,
        "applicationCreateWorked",
        "daphne.ws_protocol.WebSocketProtocol",
        ["self", "application_queue"],
    ),
    (WebSocketProtocol, "check_timeouts", "daphne.ws_protocol.WebSocketProtocol", ["self"]),
    (
        WebSocketProtocol,
        "onClose",
        "daphne.ws_protocol.WebSocketProtocol",
        ["self", "wasClean", "code", "reason"],
    ),
    (
        WebSocketProtocol,
        "handle_reply",
        "daphne.ws_protocol.WebSocketProtocol",
        ["self", "message"],
    ),
    (
        WebSocketProtocol,
        "_max_message_size_exceeded",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "msg_size", "max_msg_size", "reason"],
    ),
    (
        WebSocketProtocol,
        "_fail_connection",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "code", "reason"],
    ),
    (
        WebSocketProtocol,
        "_protocol_violation",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "reason"],
    ),
    (
        WebSocketProtocol,
        "_invalid_payload",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "reason"],
    ),
    (
        WebSocketProtocol,
        "onCloseFrame",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "code", "reasonRaw"],
    ),
    (
        WebSocketProtocol,
        "onAutoPingTimeout",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self"],
    ),
    (
        WebSocketProtocol,
        "dataReceived",
        "autobahn.twisted.websocket.WebSocketAdapterProtocol",
        ["self", "data"],
    ),
    (WebSocketProtocol, "processData", "autobahn.websocket.protocol.WebSocketProtocol", ["self"]),
    (WebSocketProtocol, "consumeData", "autobahn.websocket.protocol.WebSocketProtocol", ["self"]),
    (
        WebSocketProtocol,
        "onMessageBegin",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "isBinary"],
    ),
    (
        WebSocketProtocol,
        "onMessageFrame",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "payload"],
    ),
    (
        WebSocketProtocol,
        "onMessageFrameBegin",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "length"],
    ),
    (
        WebSocketProtocol,
        "_parseExtensionsHeader",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "header", "removeQuotes"],
    ),
    (
        PerMessageDeflate,
        "decompress_message_data",
        "autobahn.websocket.compress_deflate.PerMessageDeflate",
        ["self", "data", "max_output_len"],
    ),
    (
        PerMessageDeflate,
        "create_from_offer_accept",
        "autobahn.websocket.compress_deflate.PerMessageDeflate",
        ["is_server", "accept"],
    ),
    (
        PerMessageDeflateOfferAccept,
        "__init__",
        "autobahn.websocket.compress_deflate.PerMessageDeflateOfferAccept",
        [
            "self",
            "offer",
            "request_no_context_takeover",
            "request_max_window_bits",
            "no_context_takeover",
            "window_bits",
            "mem_level",
            "max_message_size",
        ],
    ),
    (
        WebSocketProtocol,
        "sendMessage",
        "autobahn.websocket.protocol.WebSocketProtocol",
        ["self", "payload", "isBinary", "fragmentSize", "sync", "doNotCompress"],
    ),
    # The sweep that calls check_timeouts, and what EchoServer builds its own of.
    (Server, "timeout_checker", "daphne.server.Server", ["self"]),
    (Server, "kill_all_applications", "daphne.server.Server", ["self"]),
    (Server, "create_application", "daphne.server.Server", ["self", "protocol", "scope"]),
    (Server, "handle_reply", "daphne.server.Server", ["self", "protocol", "message"]),
    (HTTPFactory, "__init__", "daphne.http_protocol.HTTPFactory", ["self", "server"]),
    (
        WebSocketFactory,
        "__init__",
        "daphne.ws_protocol.WebSocketFactory",
        ["self", "server_class", "args", "kwargs"],
    ),
    # Twisted's HTTP channel under daphne, and the TCP transport a WebSocket takes over.
    (http.HTTPChannel, "connectionMade", "twisted.web.http.HTTPChannel", ["self"]),
    (http.HTTPChannel, "allContentReceived", "twisted.web.http.HTTPChannel", ["self"]),
    (http.HTTPChannel, "connectionLost", "twisted.web.http.HTTPChannel", ["self", "reason"]),
    (
        http.HTTPChannel,
        "callLater",
        "twisted.protocols.policies.TimeoutMixin",
        ["self", "period", "func"],
    ),
    (
        http.HTTPChannel,
        "dataReceived",
        "twisted.web.http.HTTPChannel",
        ["self", "data"],
    ),
    (
        http.HTTPChannel,
        "rawDataReceived",
        "twisted.web.http.HTTPChannel",
        ["self", "data"],
    ),
    (
        http.HTTPChannel,
        "lineLengthExceeded",
        "twisted.protocols.basic.LineReceiver",
        ["self", "line"],
    ),
    (
        http.HTTPChannel,
        "clearLineBuffer",
        "twisted.protocols.basic.LineReceiver",
        ["self"],
    ),
    (
        http.HTTPChannel,
        "_respondToBadRequestAndDisconnect",
        "twisted.web.http.HTTPChannel",
        ["self"],
    ),
    (
        tcp.Connection,
        "loseWriteConnection",
        "twisted.internet.abstract.FileDescriptor",
        ["self"],
    ),
    (
        tcp.Connection,
        "registerProducer",
        "twisted.internet._newtls.ConnectionMixin",
        ["self", "producer", "streaming"],
    ),
    (tcp.Connection, "unregisterProducer", "twisted.internet._newtls.ConnectionMixin", ["self"]),
    (tcp.Connection, "pauseProducing", "twisted.internet.abstract.FileDescriptor", ["self"]),
    (tcp.Connection, "resumeProducing", "twisted.internet.abstract.FileDescriptor", ["self"]),
    (tcp.Connection, "abortConnection", "twisted.internet.tcp._AbortingMixin", ["self"]),
    (
        ConnectionDeny,
        "__init__",
        "autobahn.websocket.types.ConnectionDeny",
        ["self", "code", "reason"],
    ),
    # uvicorn's protocols.
    (
        HttpToolsProtocol,
        "__init__",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self", "config", "server_state", "app_state", "_loop"],
    ),
    (
        HttpToolsProtocol,
        "connection_made",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self", "transport"],
    ),
    (
        HttpToolsProtocol,
        "data_received",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self", "data"],
    ),
    (
        HttpToolsProtocol,
        "_unset_keepalive_if_required",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self"],
    ),
    (
        HttpToolsProtocol,
        "_should_upgrade",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self"],
    ),
    (
        HttpToolsProtocol,
        "handle_websocket_upgrade",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self"],
    ),
    (
        HttpToolsProtocol,
        "on_message_complete",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self"],
    ),
    (
        HttpToolsProtocol,
        "on_headers_complete",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self"],
    ),
    (
        HttpToolsProtocol,
        "connection_lost",
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol",
        ["self", "exc"],
    ),
    (
        WebSocketsSansIOProtocol,
        "__init__",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "config", "server_state", "app_state", "_loop"],
    ),
    (
        WebSocketsSansIOProtocol,
        "handle_connect",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "event"],
    ),
    (
        WebSocketsSansIOProtocol,
        "data_received",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "data"],
    ),
    (
        WebSocketsSansIOProtocol,
        "handle_events",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "handle_text",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "event"],
    ),
    (
        WebSocketsSansIOProtocol,
        "pause_writing",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "resume_writing",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "handle_bytes",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "event"],
    ),
    (
        WebSocketsSansIOProtocol,
        "handle_cont",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "event"],
    ),
    (
        WebSocketsSansIOProtocol,
        "keepalive_timeout",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "on_task_complete",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "task"],
    ),
    (
        WebSocketsSansIOProtocol,
        "connection_lost",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "exc"],
    ),
    (
        WebSocketsSansIOProtocol,
        "eof_received",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "send",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "message"],
    ),
    (
        WebSocketsSansIOProtocol,
        "receive",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "send_receive_event_to_app",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "handle_parser_exception",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "handle_close",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self", "event"],
    ),
    (
        WebSocketsSansIOProtocol,
        "shutdown",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    (
        WebSocketsSansIOProtocol,
        "stop_keepalive",
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol",
        ["self"],
    ),
    # The websockets library's Sans-I/O server that uvicorn drives.
    (
        ServerProtocol,
        "__init__",
        "websockets.server.ServerProtocol",
        [
            "self",
            "origins",
            "extensions",
            "subprotocols",
            "select_subprotocol",
            "state",
            "max_size",
            "logger",
        ],
    ),
    (ServerProtocol, "reject", "websockets.server.ServerProtocol", ["self", "status", "text"]),
    (
        ServerProtocol,
        "process_extensions",
        "websockets.server.ServerProtocol",
        ["self", "headers"],
    ),
    (ServerProtocol, "send_response", "websockets.server.ServerProtocol", ["self", "response"]),
    (ServerProtocol, "data_to_send", "websockets.protocol.Protocol", ["self"]),
    (ServerProtocol, "send_close", "websockets.protocol.Protocol", ["self", "code", "reason"]),
    (ServerProtocol, "fail", "websockets.protocol.Protocol", ["self", "code", "reason"]),
    (ServerProtocol, "receive_data", "websockets.protocol.Protocol", ["self", "data"]),
    (Frame, "serialize", "websockets.frames.Frame", ["self", "mask", "extensions"]),
    (
        WebsocketsDeflate,
        "__init__",
        "websockets.extensions.permessage_deflate.PerMessageDeflate",
        [
            "self",
            "remote_no_context_takeover",
            "local_no_context_takeover",
            "remote_max_window_bits",
            "local_max_window_bits",
            "compress_settings",
        ],
    ),
    (
        WebsocketsDeflate,
        "decode",
        "websockets.extensions.permessage_deflate.PerMessageDeflate",
        ["self", "frame", "max_size"],
    ),
    (
        WebsocketsDeflate,
        "encode",
        "websockets.extensions.permessage_deflate.PerMessageDeflate",
        ["self", "frame"],
    ),
    (
        ServerPerMessageDeflateFactory,
        "__init__",
        "websockets.extensions.permessage_deflate.ServerPerMessageDeflateFactory",
        [
            "self",
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
            "compress_settings",
            "require_client_max_window_bits",
        ],
    ),
    (
        ServerPerMessageDeflateFactory,
        "process_request_params",
        "websockets.extensions.permessage_deflate.ServerPerMessageDeflateFactory",
        ["self", "params", "accepted_extensions"],
    ),
    (Close, "serialize", "websockets.frames.Close", ["self"]),
]

# Per-connection options servers/daphne.py sets before autobahn copies the factory's.
AUTOBAHN_OPTIONS = [
    *("maxMessagePayloadSize", "maxFramePayloadSize", "openHandshakeTimeout"),
    "perMessageCompressionAccept",
    *("autoPingInterval", "autoPingTimeout", "closeHandshakeTimeout", "versions"),
    *("failByDrop", "echoCloseCodeReason"),
]

# Attributes of an open daphne WebSocket that servers/daphne.py reads or replaces.
DAPHNE_WEBSOCKET_ATTRIBUTES = [
    *("application_queue", "server", "state", "transport", "factory", "client_addr"),
    *("http_request_data", "http_response_data", "http_headers", "request"),
    *("STATE_CONNECTING", "STATE_OPEN", "failedByMe", "websocket_extensions"),
    *("data", "current_frame", "localCloseCode"),
    "CLOSE_STATUS_CODE_MESSAGE_TOO_BIG",
    *("_perMessageCompress", "websocket_extensions_in_use"),
]

# Attributes of uvicorn's WebSocket protocol that servers/uvicorn.py reads or sets.
UVICORN_WEBSOCKET_ATTRIBUTES = [
    *("conn", "ping_interval", "ping_timeout", "handshake_initiated", "handshake_complete"),
    *("close_sent", "initial_response", "queue", "frames", "curr_msg_data_type"),
    *("read_paused", "transport", "client", "loop", "close_timeout", "close_timer"),
    *("writable", "disconnected", "pong_timer", "pending_ping_payload", "response"),
]


@pytest.fixture
def stock_daphne() -> Iterator[DaphneServer]:
    server = DaphneServer("stock", echo_application)
    yield server
    server.cancel_applications()


@pytest.mark.parametrize(
    ("owner", "method", "defined_by", "parameters"),
    METHODS,
    ids=[f"{defined_by}.{method}" for _, method, defined_by, _ in METHODS],
)
def test_method_has_the_signature_relied_on(
    owner: type, method: str, defined_by: str, parameters: list[str]
) -> None:
    """The library still defines the method where it did, with the parameters ``servers/``
    passes."""
    definers = [cls for cls in owner.__mro__ if method in vars(cls)]
    assert definers, f"{owner.__qualname__}.{method} is gone"
    assert f"{definers[0].__module__}.{definers[0].__qualname__}" == defined_by
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


def statements(function: Any) -> list[str]:
    """A function's body as syntax trees, without its docstring: comments and line breaks
    do not count."""
    (definition,) = ast.parse(textwrap.dedent(inspect.getsource(function))).body
    assert isinstance(definition, ast.FunctionDef)
    body = definition.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return [ast.dump(statement) for statement in body]


def test_daphne_creates_applications_as_echo_server_does() -> None:
    """``EchoServer.start_application`` is daphne's ``create_application``, statement for
    statement, but for the queue it hands the application: a release that changes daphne's
    must be read again."""
    stock = [
        statement.replace(
            "Call(func=Attribute(value=Name(id='asyncio', ctx=Load()), attr='Queue', ctx=Load())",
            "Call(func=Name(id='ApplicationQueue', ctx=Load())",
        )
        for statement in statements(Server.create_application)
    ]
    assert stock == statements(daphne_adjustments.EchoServer.start_application)


def test_daphne_runs_as_echo_server_does() -> None:
    """``EchoServer.run`` is daphne's ``run``, statement for statement, but for the factories
    it builds: a release that changes daphne's must be read again."""
    stock = [
        statement.replace("Name(id='HTTPFactory'", "Name(id='EchoHTTPFactory'").replace(
            "Name(id='WebSocketFactory'", "Name(id='EchoWebSocketFactory'"
        )
        for statement in statements(Server.run)
    ]
    assert stock == statements(daphne_adjustments.EchoServer.run)


def test_daphne_commands_build_their_server_from_a_class_attribute() -> None:
    """The ``daphne`` command and ``runserver`` build their server from ``server_class`` and
    ``server_cls``: ``servers.daphne_command`` points the first at ``EchoServer`` under the
    ``daphne`` command, and the project's runserver command sets the second."""
    assert "server_class" in vars(CommandLineInterface)
    assert "self.server_class(" in inspect.getsource(CommandLineInterface.run)
    assert "server_cls" in vars(RunserverCommand)
    assert "self.server_cls(" in inspect.getsource(RunserverCommand.inner_run)


def test_django_reloader_serves_from_a_named_thread() -> None:
    """``servers.reloader`` replaces Django's ``run_with_reloader`` and finds the thread it
    serves from by the name ``start_django`` gives it."""
    assert "run_with_reloader(self.inner_run, **options)" in inspect.getsource(DjangoRunserver.run)
    assert 'name="django-main-thread"' in inspect.getsource(autoreload.start_django)
    assert autoreload.DJANGO_AUTORELOAD_ENV == "RUN_MAIN"
    assert list(inspect.signature(autoreload.start_django).parameters) == [
        "reloader",
        "main_func",
        "args",
        "kwargs",
    ]
    assert callable(autoreload.get_child_arguments)
    assert callable(autoreload.get_reloader)


def test_autobahn_deflate_keeps_what_the_adjustments_read() -> None:
    """A parsed offer says whether the client lets the server choose its window, and the
    extension inflates with ``_decompressor``."""
    offer = PerMessageDeflateOffer.parse({"client_max_window_bits": [True]})
    assert (offer.accept_max_window_bits, offer.request_max_window_bits) == (True, 0)
    extension = PerMessageDeflate(True, False, False, 12, 12, 5, 1024)
    extension.start_decompress_message()
    assert extension._decompressor is not None
    assert PerMessageDeflateOffer.EXTENSION_NAME == "permessage-deflate"


def test_autobahn_truncates_close_reasons() -> None:
    """``encode_truncate`` cuts UTF-8 at a character boundary within the byte limit."""
    assert list(inspect.signature(encode_truncate).parameters)[:2] == ["text", "limit"]
    assert encode_truncate("é" * 70, 123) == "é".encode() * 61


def test_twisted_transport_has_a_write_buffer_size() -> None:
    """Twisted asks a transport's producer to pause once ``bufferSize`` bytes wait to go out."""
    assert isinstance(tcp.Connection.bufferSize, int)


def test_websockets_reports_the_size_of_a_message_too_big() -> None:
    """``PayloadTooBig``, as websockets' parser raises it for a frame that takes a message past
    the limit, carries the frame's size, what came before it, and the whole limit."""
    error = PayloadTooBig(10, 4)  # a 10-byte frame with 4 bytes of the limit left
    error.set_current_size(60)
    assert (error.size, error.current_size, error.max_size, error.message) == (10, 60, 64, None)


def test_httptools_says_where_the_upgraded_stream_begins() -> None:
    """``HttpParserUpgrade`` carries the offset of the first byte after the request head, which
    ``servers/uvicorn.py`` hands to the WebSocket."""

    class Callbacks:
        pass

    parser = httptools.HttpRequestParser(Callbacks())
    head = b"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with pytest.raises(httptools.HttpParserUpgrade) as upgrade:
        parser.feed_data(head + b"first frame")
    assert upgrade.value.args == (len(head),)


def test_websockets_deflate_starts_its_streams_where_the_adjustment_looks() -> None:
    """websockets keeps its zlib streams as ``decoder`` and ``encoder``, started in
    ``__init__`` unless there is no context takeover; ``LazyPerMessageDeflate`` drops them."""
    extension = WebsocketsDeflate(False, False, 12, 12, {"memLevel": 5})
    assert "decoder" in vars(extension)
    assert "encoder" in vars(extension)
    lazy = LazyPerMessageDeflate(False, False, 12, 12, {"memLevel": 5}, max_message_size=64)
    assert "decoder" not in vars(lazy)
    assert "encoder" not in vars(lazy)


def test_websockets_names_its_close_codes_and_opcodes() -> None:
    """The close codes and opcodes ``servers/uvicorn.py`` names are still defined."""
    assert (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY) == (1000, 1001)
    assert (CloseCode.INVALID_DATA, CloseCode.NO_STATUS_RCVD) == (1007, 1005)
    assert CloseCode.ABNORMAL_CLOSURE == 1006
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
    assert websocket.request.headers["sec-websocket-protocol"] == "echo"
    assert http.HTTPChannel().requests == []
    assert stock_daphne.server.http_factory.timeOut > 0
    assert "application_instance" in stock_daphne.server.connections[websocket]
    await connection.send(connection.peer.text("queued"))
    assert websocket._isMessageCompressed is False  # set for each message read
    await connection.send(connection.peer.close(1000))
    await connection.lose()
    assert "disconnected" in stock_daphne.server.connections[websocket]


async def test_daphne_scope_holds_the_subprotocol_header_as_sent() -> None:
    """daphne's WebSocket scope carries each header's bytes as received, from which
    ``EchoServer.create_application`` reads the offered subprotocols again."""
    scopes: list[dict[str, Any]] = []

    async def recording_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.close"})

    daphne = DaphneServer("stock", recording_application)
    connection = daphne.connect()
    await connection.send(connection.peer.handshake(**{"Sec-WebSocket-Protocol": "%65cho"}))
    daphne.cancel_applications()
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert (b"sec-websocket-protocol", b"%65cho") in scope["headers"]
    assert "subprotocols" in scope


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
    # What a compressed connection's frame gate reads and widens.
    assert protocol.conn.extensions == []
    assert isinstance(protocol.conn.max_message_size, int)
    assert protocol.conn.close_rcvd is None
    assert protocol.conn.parser_exc is None
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

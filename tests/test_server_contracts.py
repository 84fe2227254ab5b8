"""The internals of daphne, autobahn, Twisted, uvicorn and websockets that ``servers/`` relies on.

Every method ``servers/daphne.py`` and ``servers/uvicorn.py`` override or call is listed here with
the parameters it is called with, and every attribute they read or set is looked for on a real,
stock protocol object after a handshake. A release that renames one or changes its signature
fails here, before any behaviour test has to guess why; ``pyproject.toml`` pins the releases
this list was checked against. The behaviour each adjustment gives is tested in
``tests/test_daphne_adjustments.py`` and ``tests/test_uvicorn_adjustments.py``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httptools
import pytest
from autobahn.util import encode_truncate
from autobahn.websocket.compress_deflate import (
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from autobahn.websocket.types import ConnectionDeny
from daphne.cli import CommandLineInterface
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
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.server import ServerProtocol

from servers import daphne as daphne_adjustments
from servers.uvicorn import EchoHTTPProtocol, EchoWebSocketProtocol, LazyPerMessageDeflate
from tests import internals
from tests.daphne_harness import CLIENT, DaphneServer
from tests.fingerprints import fingerprint, statements
from tests.peer import echo_application
from tests.uvicorn_harness import Connection as UvicornConnection
from tests.uvicorn_harness import RecordingTransport, loaded_config

# (class, method, the class that defines it, its parameters): called by servers/ on a library's
# object, with those parameters. (What the project's classes override is read from them.)
CALLED = [
    # autobahn's WebSocket protocol, and daphne's over it.
    (WebSocketProtocol, "consumeData", "autobahn.websocket.protocol.WebSocketProtocol", ["self"]),
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
    (Server, "timeout_checker", "daphne.server.Server", ["self"]),
    (Server, "handle_reply", "daphne.server.Server", ["self", "protocol", "message"]),
    (
        WebSocketFactory,
        "__init__",
        "daphne.ws_protocol.WebSocketFactory",
        ["self", "server_class", "args", "kwargs"],
    ),
    (
        http.HTTPChannel,
        "callLater",
        "twisted.protocols.policies.TimeoutMixin",
        ["self", "period", "func"],
    ),
    (
        http.HTTPChannel,
        "clearLineBuffer",
        "twisted.protocols.basic.LineReceiver",
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
        WebSocketsSansIOProtocol,
        "handle_events",
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
    (ServerProtocol, "send_response", "websockets.server.ServerProtocol", ["self", "response"]),
    (ServerProtocol, "data_to_send", "websockets.protocol.Protocol", ["self"]),
    (ServerProtocol, "send_close", "websockets.protocol.Protocol", ["self", "code", "reason"]),
    (ServerProtocol, "fail", "websockets.protocol.Protocol", ["self", "code", "reason"]),
    (ServerProtocol, "receive_data", "websockets.protocol.Protocol", ["self", "data"]),
    (Frame, "serialize", "websockets.frames.Frame", ["self", "mask", "extensions"]),
    (Close, "serialize", "websockets.frames.Close", ["self"]),
]

# Attributes of library objects other than the project's classes that servers/ reads or sets
# (a transport, websockets' protocol, a size error, daphne's command classes), by library.
COLLABORATOR_ATTRIBUTES = {
    "twisted": ["bufferSize"],
    "websockets": [
        *("close_rcvd", "close_sent", "parser_exc", "handshake_exc", "extensions", "state"),
        *("max_message_size", "current_size", "max_size", "apply_mask"),
    ],
    "daphne": ["server_class", "server_cls"],
    "autobahn": ["CONFIG_ATTRS"],
}

# What each class of servers/ shares with the library it derives from, by the library class that
# has it: the methods it overrides and the library's attributes it sets (tests/internals.py
# reads both from the code). A name added here is a decision to override it; a name the code
# shares with its library without being listed here is either a new override nobody checked or
# a name a new release of the library has taken from the project.
OVERLAPS = {
    "servers.daphne.BoundedPerMessageDeflate": {
        "autobahn.websocket.compress_deflate.PerMessageDeflate": ["decompress_message_data"],
    },
    "servers.daphne.EchoWebSocketProtocol": {
        "autobahn.twisted.websocket.WebSocketAdapterProtocol": [
            "connectionLost",
            "connectionMade",
            "dataReceived",
        ],
        "autobahn.websocket.protocol.WebSocketProtocol": [
            "_fail_connection",
            "_invalid_payload",
            "_max_message_size_exceeded",
            "_parseExtensionsHeader",
            "_protocol_violation",
            "autoPingInterval",
            "autoPingTimeout",
            "closeHandshakeTimeout",
            "dropConnection",
            "echoCloseCodeReason",
            "failByDrop",
            "failedByMe",
            "maxFramePayloadSize",
            "maxMessagePayloadSize",
            "message_data",
            "onAutoPingTimeout",
            "onCloseFrame",
            "onMessageBegin",
            "onMessageFrame",
            "onMessageFrameBegin",
            "openHandshakeTimeout",
            "perMessageCompressionAccept",
            "processData",
            "sendCloseFrame",
            "versions",
        ],
        "autobahn.websocket.protocol.WebSocketServerProtocol": [
            "_perMessageCompress",
            "data",
            "failHandshake",
            "http_headers",
            "http_request_data",
            "http_response_data",
            "websocket_extensions_in_use",
        ],
        "daphne.ws_protocol.WebSocketProtocol": [
            "__repr__",
            "applicationCreateWorked",
            "check_timeouts",
            "handle_reply",
            "onClose",
            "onConnect",
            "onMessage",
            "onOpen",
            "request",
        ],
    },
    "servers.daphne.EchoHTTPChannel": {
        "twisted.protocols.basic.LineReceiver": ["lineLengthExceeded"],
        "twisted.web.http.HTTPChannel": [
            "_respondToBadRequestAndDisconnect",
            "allContentReceived",
            "connectionLost",
            "connectionMade",
            "dataReceived",
            "rawDataReceived",
        ],
    },
    "servers.daphne.EchoHTTPFactory": {
        "daphne.http_protocol.HTTPFactory": ["__init__"],
        "twisted.web.http.HTTPFactory": ["protocol", "timeOut"],
    },
    "servers.daphne.EchoWebSocketFactory": {
        "daphne.ws_protocol.WebSocketFactory": ["protocol"],
    },
    "servers.daphne.EchoServer": {
        "daphne.server.Server": [
            "__init__",
            "connections",
            "create_application",
            "http_factory",
            "kill_all_applications",
            "run",
            "ws_factory",
        ],
    },
    "servers.uvicorn.LazyPerMessageDeflate": {
        "websockets.extensions.permessage_deflate.PerMessageDeflate": [
            "__init__",
            "decode",
            "decoder",
            "encode",
            "encoder",
        ],
    },
    "servers.uvicorn.LazyDeflateFactory": {
        "websockets.extensions.permessage_deflate.ServerPerMessageDeflateFactory": [
            "__init__",
            "process_request_params",
        ],
    },
    "servers.uvicorn.EchoServerProtocol": {
        "websockets.server.ServerProtocol": ["process_extensions"],
    },
    "servers.uvicorn.EchoHTTPProtocol": {
        "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol": [
            "connection_lost",
            "connection_made",
            "data_received",
            "on_headers_complete",
            "on_message_complete",
            "timeout_keep_alive",
        ],
    },
    "servers.uvicorn.EchoWebSocketProtocol": {
        "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol": [
            "__init__",
            "close_sent",
            "close_timeout",
            "close_timer",
            "conn",
            "connection_lost",
            "curr_msg_data_type",
            "data_received",
            "eof_received",
            "frames",
            "handle_bytes",
            "handle_close",
            "handle_connect",
            "handle_cont",
            "handle_text",
            "handshake_complete",
            "handshake_initiated",
            "keepalive_timeout",
            "on_task_complete",
            "pause_writing",
            "pending_ping_payload",
            "ping_interval",
            "ping_timeout",
            "pong_timer",
            "read_paused",
            "receive",
            "resume_writing",
            "scope",
            "send",
            "send_receive_event_to_app",
            "shutdown",
        ],
    },
    "servers.management.commands.runserver.Command": {
        "daphne.management.commands.runserver.Command": ["server_cls"],
    },
}

# The library methods that servers/ replaces without calling them, with a fingerprint of the
# original each replacement was written from (``fingerprint``). When a release changes one, read
# the new original, carry what changed into the replacement (or drop the replacement), and
# record the new fingerprint.
REPLACED = {
    "servers.daphne.EchoWebSocketProtocol.__repr__": "1670b71cd8475317",
    "servers.daphne.EchoWebSocketProtocol._max_message_size_exceeded": "93473a1b63e40f3b",
    "servers.daphne.EchoWebSocketProtocol.check_timeouts": "3fed1c891715268e",
    "servers.daphne.EchoWebSocketProtocol.onMessageFrame": "31dcc253e50cc69b",
    "servers.daphne.EchoHTTPChannel._respondToBadRequestAndDisconnect": "96db0ee06cc24043",
    "servers.daphne.EchoHTTPChannel.lineLengthExceeded": "a67062f0c5b61b85",
    "servers.daphne.EchoServer.create_application": "a9cc0b061474f6ed",
    "servers.daphne.EchoServer.run": "8baa563a962fd642",
    "servers.uvicorn.EchoHTTPProtocol.data_received": "0455af2b7326f13e",
    "servers.uvicorn.EchoWebSocketProtocol.data_received": "da9682459920424c",
    "servers.uvicorn.EchoWebSocketProtocol.eof_received": "f8e211bd496e62be",
    "servers.uvicorn.EchoWebSocketProtocol.handle_close": "fa273a799a377562",
    "servers.uvicorn.EchoWebSocketProtocol.handle_cont": "57d9a777c45602aa",
    "servers.uvicorn.EchoWebSocketProtocol.keepalive_timeout": "95b2e6fb34c51279",
    "servers.uvicorn.EchoWebSocketProtocol.send_receive_event_to_app": "f2c415b997b4324f",
}


@pytest.fixture
def stock_daphne() -> Iterator[DaphneServer]:
    server = DaphneServer("stock", echo_application)
    yield server
    server.cancel_applications()


@pytest.mark.parametrize(
    ("owner", "method", "defined_by", "parameters"),
    CALLED,
    ids=[f"{defined_by}.{method}" for _, method, defined_by, _ in CALLED],
)
def test_called_method_has_the_signature_relied_on(
    owner: type, method: str, defined_by: str, parameters: list[str]
) -> None:
    """The library still defines the method where it did, with the parameters ``servers/``
    passes."""
    definers = [cls for cls in owner.__mro__ if method in vars(cls)]
    assert definers, f"{owner.__qualname__}.{method} is gone"
    assert f"{definers[0].__module__}.{definers[0].__qualname__}" == defined_by
    assert list(inspect.signature(getattr(owner, method)).parameters) == parameters


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


ADJUSTED = internals.adjusted_classes()
OVERRIDDEN_METHODS = [
    (cls, name, owner)
    for cls in ADJUSTED
    for name, owner in sorted(internals.overlaps(cls).items())
    if inspect.isfunction(vars(cls).get(name)) and inspect.isfunction(vars(owner).get(name))
]
REPLACEMENTS = [(cls, name) for cls in ADJUSTED for name in sorted(internals.replacements(cls))]


@pytest.mark.parametrize("library", sorted(COLLABORATOR_ATTRIBUTES))
def test_collaborator_attributes_are_their_librarys(library: str) -> None:
    """Each attribute of another library object that ``servers/`` uses is one its library
    assigns or defines."""
    source = "\n".join(
        path.read_text()
        for path in Path(importlib.import_module(library).__file__).parent.rglob("*.py")
    )
    missing = [
        name
        for name in COLLABORATOR_ATTRIBUTES[library]
        if not re.search(rf"(\.|def |class |^\s*){name}\b\s*[:=(,]", source, re.MULTILINE)
    ]
    assert missing == []


def test_every_adjusted_class_has_a_contract() -> None:
    """Each class of ``servers/`` that derives from a library's has its entry in OVERLAPS."""
    assert sorted(map(qualified, ADJUSTED)) == sorted(OVERLAPS)


@pytest.mark.parametrize("cls", ADJUSTED, ids=qualified)
def test_names_shared_with_the_library_are_the_contracted_ones(cls: type) -> None:
    """What a class of ``servers/`` overrides or sets of its library's is what its contract
    lists, from the library class that has it; any other name it brings is its own."""
    shared: dict[str, list[str]] = {}
    for name, owner in sorted(internals.overlaps(cls).items()):
        shared.setdefault(qualified(owner), []).append(name)
    assert shared == OVERLAPS[qualified(cls)]


@pytest.mark.parametrize(
    ("cls", "name", "owner"),
    OVERRIDDEN_METHODS,
    ids=[f"{qualified(cls)}.{name}" for cls, name, _ in OVERRIDDEN_METHODS],
)
def test_override_takes_the_parameters_of_the_original(cls: type, name: str, owner: type) -> None:
    """An override takes the parameters the library passes to the method it overrides: the
    same ones, or whatever it is given, handed on."""
    ours = inspect.signature(vars(cls)[name]).parameters
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in ours.values()):
        return
    assert list(ours) == list(inspect.signature(vars(owner)[name]).parameters)


def test_every_replacement_is_recorded() -> None:
    """Each library method that servers/ overrides without calling is in REPLACED."""
    assert sorted(f"{qualified(cls)}.{name}" for cls, name in REPLACEMENTS) == sorted(REPLACED)


@pytest.mark.parametrize(
    ("cls", "name"), REPLACEMENTS, ids=[f"{qualified(c)}.{n}" for c, n in REPLACEMENTS]
)
def test_replaced_method_is_the_one_the_replacement_was_written_from(cls: type, name: str) -> None:
    """The library method a project method replaces has the syntax tree it had when the
    replacement was written from it."""
    original = vars(internals.overlaps(cls)[name])[name]
    assert fingerprint(original) == REPLACED[f"{qualified(cls)}.{name}"], (
        f"{qualified(original)} changed: read it against {qualified(cls)}.{name}"
    )


@pytest.mark.parametrize("cls", ADJUSTED, ids=qualified)
def test_library_has_what_the_adjustment_reads(cls: type) -> None:
    """Every attribute a class of ``servers/`` reads on ``self`` and does not define is one its
    library defines or sets."""
    assert internals.reads(cls) - set(internals.library_names(cls)) == set()


async def test_autobahn_takes_per_connection_options(stock_daphne: DaphneServer) -> None:
    """autobahn copies each option from the factory only where the connection has its own
    unset, so options set in ``connectionMade`` before it runs are the ones used."""
    websocket = stock_daphne.server.ws_factory.buildProtocol(CLIENT)
    websocket.maxMessagePayloadSize = 77
    websocket.makeConnection(StringTransport())
    assert websocket.maxMessagePayloadSize == 77
    assert websocket.maxFramePayloadSize == stock_daphne.server.websocket_max_frame_size


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
    """An open WebSocket under stock daphne, once it has read a message, has every attribute
    ``servers/daphne.py`` reads and none of those it adds, and daphne records it, and its
    application, where ``servers/daphne.py`` looks."""
    connection = stock_daphne.connect()
    await connection.open()
    websocket = connection.websocket
    assert websocket.request.path == "/echo"
    assert websocket.request.headers["sec-websocket-protocol"] == "echo"
    assert http.HTTPChannel().requests == []
    assert stock_daphne.server.http_factory.timeOut > 0
    assert "application_instance" in stock_daphne.server.connections[websocket]
    await connection.send(connection.peer.text("queued"))
    assert websocket._isMessageCompressed is False  # set for each message read
    project = daphne_adjustments.EchoWebSocketProtocol
    assert sorted(name for name in internals.reads(project) if not hasattr(websocket, name)) == []
    assert internals.additions(project) & set(vars(websocket)) == set()
    await connection.send(connection.peer.close(1000))
    await connection.lose()
    assert "disconnected" in stock_daphne.server.connections[websocket]


def test_twisted_http_channel_has_the_attributes_relied_on(stock_daphne: DaphneServer) -> None:
    """A connected HTTP channel under stock daphne has every attribute
    ``servers/daphne.py`` reads and none of those it adds."""
    # Twisted's factory wraps the channel in one that could hand it over to HTTP/2.
    stock_channel = stock_daphne.server.http_factory.buildProtocol(CLIENT)._channel
    stock_channel.makeConnection(StringTransport())
    project = daphne_adjustments.EchoHTTPChannel
    assert (
        sorted(name for name in internals.reads(project) if not hasattr(stock_channel, name)) == []
    )
    assert internals.additions(project) & set(vars(stock_channel)) == set()


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
    """An open WebSocket under stock uvicorn has every attribute ``servers/uvicorn.py`` reads,
    and none of those it adds."""
    await stock_uvicorn.open()
    protocol = stock_uvicorn.protocol
    project = EchoWebSocketProtocol
    assert sorted(name for name in internals.reads(project) if not hasattr(protocol, name)) == []
    assert internals.additions(project) & set(vars(protocol)) == set()
    assert hasattr(protocol.conn, "logger")
    # What a compressed connection's frame gate reads and widens.
    assert protocol.conn.extensions == []
    assert isinstance(protocol.conn.max_message_size, int)
    assert protocol.conn.close_rcvd is None
    assert protocol.conn.parser_exc is None
    await stock_uvicorn.finish()


async def test_uvicorn_http_protocol_has_the_attributes_relied_on() -> None:
    """uvicorn's HTTP protocol keeps the loop, client, transport and keep-alive timeout that
    ``servers/uvicorn.py`` reads and sets, and has none of the attributes it adds."""
    protocol = HttpToolsProtocol(loaded_config(echo_application), ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    assert protocol.transport is transport
    assert internals.additions(EchoHTTPProtocol) & set(vars(protocol)) == set()
    assert protocol.client == ("127.0.0.1", 50000)
    assert protocol.loop is not None
    assert isinstance(protocol.timeout_keep_alive, int | float)
    protocol.connection_lost(None)

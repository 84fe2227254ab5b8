"""Each adjustment in ``servers/daphne.py`` does what it says, and stock daphne still needs it.

daphne's server objects are built here as ``Server.run()`` builds them, once with the project's
classes and once with daphne's own, and driven over in-memory transports by a real WebSocket
client (``tests/peer.py``) and a small echo application. Every test states what the project's
classes do; its ``stock`` case states the defect daphne, autobahn or Twisted still has. When a
``stock`` case fails after an upgrade, the defect is fixed upstream and the adjustment can go
(docs/upstream.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from autobahn.websocket.compress_deflate import PerMessageDeflate, PerMessageDeflateOffer
from autobahn.websocket.types import ConnectionRequest
from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.core.management import get_commands, load_command_class
from pytest_django import Settings
from twisted.internet.task import Clock
from websockets.frames import Opcode

from servers import SHUTDOWN_REASON
from servers import daphne as adjustments
from servers.daphne import EchoServer, EchoWebSocketProtocol
from tests.daphne_harness import DaphneServer, deaf_application
from tests.deflate import ClientDeflate
from tests.peer import GatedApplication, Peer, echo_application
from tests.rawws import BINARY, TEXT, frame

KINDS = ["project", "stock"]


@pytest.fixture
def daphne_servers() -> Iterator[Any]:
    started: list[DaphneServer] = []

    def make(kind: str, application: Any = echo_application) -> DaphneServer:
        started.append(DaphneServer(kind, application))
        return started[-1]

    yield make
    for server in started:
        server.cancel_applications()


@pytest.fixture(autouse=True)
def quiet_reactor(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Delayed calls autobahn and the adjustments schedule on the (never running) reactor."""
    clock = Clock()
    monkeypatch.setattr(adjustments.reactor, "callLater", clock.callLater)
    return clock


# Which server serves.


def test_runserver_serves_with_echo_server() -> None:
    """``manage.py runserver`` is the project's command, serving with ``EchoServer``."""
    assert get_commands()["runserver"] == "servers"
    assert load_command_class("servers", "runserver").server_cls is EchoServer


def test_echo_server_leaves_daphne_classes_as_they_are() -> None:
    """Building and serving with the project's classes changes none of daphne's: stock
    daphne in the same process is stock."""
    assert WebSocketFactory.protocol is WebSocketProtocol
    assert daphne_server.HTTPFactory is HTTPFactory
    assert CommandLineInterface.server_class is Server


# Limits from the project's settings.


@pytest.mark.parametrize("kind", KINDS)
async def test_size_limit_is_the_projects(
    kind: str, daphne_servers: Any, settings: Settings
) -> None:
    """ECHO_MAX_MESSAGE_SIZE applies; stock: only the ``daphne`` command's own option does."""
    settings.ECHO_MAX_MESSAGE_SIZE = 64
    connection = daphne_servers(kind).connect()
    await connection.open()
    received = await connection.send(connection.peer.text("x" * 65))
    if kind == "project":
        assert received.close is not None
        assert received.close.code == 1009
    else:
        assert received.messages() == ["x" * 65]


@pytest.mark.parametrize("kind", KINDS)
async def test_too_big_is_logged(
    kind: str, daphne_servers: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A message over the limit is logged with its size as it is refused; stock: not logged,
    and the application never sees it to log it."""
    settings.ECHO_MAX_MESSAGE_SIZE = 64
    connection = daphne_servers(kind).connect()
    await connection.open()
    with caplog.at_level(logging.INFO, logger="servers.daphne"):
        await connection.send(connection.peer.text("x" * 65))
    logged = "event=too_big client=127.0.0.1:50000 size=65 limit=64" in caplog.text
    assert logged is (kind == "project")


@pytest.mark.parametrize("kind", KINDS)
async def test_keepalive_is_the_projects(
    kind: str, daphne_servers: Any, settings: Settings
) -> None:
    """ECHO_PING_INTERVAL and ECHO_PING_TIMEOUT drive autobahn's keepalive; stock: autobahn's
    keepalive is off and daphne's own sweep pings instead."""
    settings.ECHO_PING_INTERVAL, settings.ECHO_PING_TIMEOUT = 7.0, 3.0
    connection = daphne_servers(kind).connect()
    await connection.open()
    expected = (7.0, 3.0) if kind == "project" else (0, connection.server.ping_timeout)
    assert (connection.websocket.autoPingInterval, connection.websocket.autoPingTimeout) == (
        expected
    )


# RFC 6455's close behaviour.


@pytest.mark.parametrize("kind", KINDS)
async def test_protocol_error_gets_a_close_frame(kind: str, daphne_servers: Any) -> None:
    """A frame with reserved bits set is answered with close 1002 before TCP closes; stock:
    TCP is dropped with no close frame, so the client never learns why."""
    connection = daphne_servers(kind).connect()
    await connection.open()
    received = await connection.send(frame(TEXT, b"bad", rsv=4))
    if kind == "project":
        assert received.close is not None
        assert received.close.code == 1002
    else:
        assert received.close is None
        assert connection.transport.disconnecting


@pytest.mark.parametrize("kind", KINDS)
async def test_message_before_a_protocol_error_is_echoed(kind: str, daphne_servers: Any) -> None:
    """A message in the same read as a protocol error is echoed, then the close follows, and
    the application hears the code; stock: autobahn fails the connection before the
    application can answer, so the echo is lost."""
    connection = daphne_servers(kind).connect()
    await connection.open()
    received = await connection.send(connection.peer.text("first") + frame(TEXT, b"bad", rsv=4))
    if kind == "project":
        assert received.messages() == ["first"]
        assert received.close is not None
        assert received.close.code == 1002
        assert [frame.opcode for frame in received.frames][-1] is Opcode.CLOSE
    else:
        assert received.messages() == []


async def test_bytes_after_a_failure_are_dropped_until_the_client_closes(
    daphne_servers: Any,
) -> None:
    """After the close frame of a protocol error the server ends its writing side and drops
    what the client still sends, until it closes. Parsing stopped at the bad frame while the
    close was held: parsed again, it would fail again and close the socket at once, with the
    client's bytes unread, which the kernel answers with a reset."""
    connection = daphne_servers("project").connect()
    await connection.open()
    received = await connection.send(frame(TEXT, b"bad", rsv=4))
    assert received.close is not None
    assert received.close.code == 1002
    connection.deliver(frame(BINARY, b"still sending") + frame(TEXT, b"bad", rsv=4))
    written, disconnecting = connection.take_written()
    assert (written, disconnecting, connection.transport.write_closed) == (b"", False, True)


async def test_close_waits_at_most_the_failure_grace(
    daphne_servers: Any, quiet_reactor: Clock
) -> None:
    """An application that never reads again cannot hold the close frame back for longer
    than FAILURE_GRACE."""
    connection = daphne_servers("project", deaf_application).connect()
    await connection.open()
    received = await connection.send(connection.peer.text("first") + frame(TEXT, b"bad", rsv=4))
    assert received.close is None
    quiet_reactor.advance(adjustments.FAILURE_GRACE)
    received = await connection.read()
    assert received.close is not None
    assert received.close.code == 1002


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("code", "expected"), [(4000, 4000), (None, 1000)], ids=["4000", "none"])
async def test_client_close_code_is_answered(
    kind: str, code: int | None, expected: int, daphne_servers: Any
) -> None:
    """A client's close code comes back in the server's close, and a close without a code gets
    1000; stock: autobahn answers 1000 whatever the code (told to echo codes, it would answer
    a close without one with an empty close, hence ``sendCloseFrame``)."""
    connection = daphne_servers(kind).connect()
    await connection.open()
    received = await connection.send(connection.peer.close(code))
    assert received.close is not None
    if kind == "project":
        assert received.close.code == expected
    else:
        assert received.close.code == 1000


@pytest.mark.parametrize("kind", KINDS)
async def test_only_version_13_is_spoken(kind: str, daphne_servers: Any) -> None:
    """A handshake for protocol version 8 gets 426 naming version 13; stock: accepted."""
    connection = daphne_servers(kind).connect()
    received = await connection.send(connection.peer.handshake(**{"Sec-WebSocket-Version": "8"}))
    if kind == "project":
        assert received.status == 426
        assert received.response is not None
        assert received.response.headers["Sec-WebSocket-Version"] == "13"
    else:
        assert received.status == 101


@pytest.mark.parametrize("offer", [b"echo, \xc3\xa9", b"\xff", b"echo, \xe2\x80\xa8"])
@pytest.mark.parametrize("kind", KINDS)
async def test_non_ascii_subprotocol_is_refused_with_400(
    kind: str, offer: bytes, daphne_servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A ``Sec-WebSocket-Protocol`` that is not ASCII is refused with 400 and one INFO line;
    stock: daphne's decoding raises, answered with 500 and an ERROR traceback."""
    connection = daphne_servers(kind).connect()
    request = connection.peer.handshake(**{"Sec-WebSocket-Protocol": "OFFER"})
    with caplog.at_level(logging.INFO):
        received = await connection.send(request.replace(b"OFFER", offer))
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    if kind == "project":
        assert received.status == 400
        assert "reason=invalid_handshake status=400 detail=" in caplog.text
        assert errors == []
    else:
        assert received.status == 500
        assert errors


@pytest.mark.parametrize(
    ("offer", "offered"),
    [
        ("%65cho", ["%65cho"]),
        ("echo%2C%20chat", ["echo%2C%20chat"]),
        ("ech%6f, chat", ["ech%6f", "chat"]),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
async def test_subprotocols_reach_the_application_as_offered(
    kind: str, offer: str, offered: list[str], daphne_servers: Any
) -> None:
    """The application sees the offered subprotocols as written, ``%`` and all; stock: daphne
    URL-unquotes them, so ``%65cho`` passes for ``echo``, which autobahn never answers."""
    seen: list[list[str]] = []

    async def recording_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["subprotocols"])
        await receive()
        await send({"type": "websocket.close"})

    connection = daphne_servers(kind, recording_application).connect()
    received = await connection.send(
        connection.peer.handshake(**{"Sec-WebSocket-Protocol": offer})
    )
    assert received.status == 403
    if kind == "project":
        assert seen == [offered]
    else:
        assert seen != [offered]


@pytest.mark.parametrize("kind", KINDS)
async def test_unanswered_close_is_reported_with_the_code_sent(
    kind: str, daphne_servers: Any
) -> None:
    """An application whose close the client never answers hears the code it sent; stock:
    daphne reports 1006."""
    disconnects: list[dict[str, Any]] = []

    async def closing_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "echo"})
        await send({"type": "websocket.close", "code": 1000})
        disconnects.append(await receive())

    connection = daphne_servers(kind, closing_application).connect()
    received = await connection.open()
    received = await connection.read()
    assert received.close is not None
    await connection.lose()
    await asyncio.sleep(0)
    assert [message["code"] for message in disconnects] == [1000 if kind == "project" else 1006]


@pytest.mark.parametrize("kind", KINDS)
async def test_daphne_sweep_leaves_open_websockets_alone(
    kind: str, daphne_servers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """daphne's periodic sweep neither pings nor closes an open WebSocket, however old; stock:
    it pings on its own clock and closes every connection after ``websocket_timeout``."""
    daphne = daphne_servers(kind)
    connection = daphne.connect()
    await connection.open()
    daphne.server.websocket_timeout = 0
    daphne.server.ping_interval = 0
    monkeypatch.setattr(daphne_server.reactor, "callLater", daphne.clock.callLater)
    Server.timeout_checker(daphne.server)
    received = await connection.read()
    if kind == "project":
        assert received.frames == []
    else:
        assert received.close is not None


# Memory.


def holds_handshake(value: object, depth: int = 3) -> bool:
    """Whether ``value`` keeps the raw or parsed handshake request or response."""
    if isinstance(value, bytes | bytearray):
        return value.startswith((b"GET /echo HTTP/1.1", b"HTTP/1.1 101"))
    if isinstance(value, ConnectionRequest):
        return True
    if isinstance(value, dict):
        if "sec-websocket-key" in value:
            return True
        return depth > 0 and any(holds_handshake(item, depth - 1) for item in value.values())
    return False


@pytest.mark.parametrize("kind", KINDS)
async def test_open_connection_lets_go_of_its_handshake(kind: str, daphne_servers: Any) -> None:
    """Once open, a WebSocket keeps neither the handshake's bytes nor its parsed headers;
    stock: autobahn keeps them for the connection's whole life."""
    connection = daphne_servers(kind).connect()
    await connection.open()
    kept = [name for name, value in vars(connection.websocket).items() if holds_handshake(value)]
    if kind == "project":
        assert kept == []
    else:
        assert kept


@pytest.mark.parametrize("kind", KINDS)
async def test_finished_connection_is_forgotten_at_once(kind: str, daphne_servers: Any) -> None:
    """A closed connection whose application has finished leaves daphne's records at once;
    stock: it stays, with the upgraded request, until the once-a-second sweep."""
    daphne = daphne_servers(kind)
    connection = daphne.connect()
    await connection.open()
    await connection.send(connection.peer.close(1000))
    await connection.lose()
    if kind == "project":
        assert daphne.server.connections == {}
    else:
        assert len(daphne.server.connections) == 2


# The application's queue.


async def waiting_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()


@pytest.mark.parametrize("kind", KINDS)
async def test_an_application_queue_costs_little_memory(kind: str, daphne_servers: Any) -> None:
    """Starting an application that waits for its first message allocates under 2 KiB,
    its task and queue together; stock: daphne's ``asyncio.Queue`` alone takes 3.3 KB, on
    every connection for its whole life."""
    daphne = daphne_servers(kind, waiting_application)
    connections = [object() for _ in range(100)]
    for connection in connections:
        daphne.server.connections[connection] = {}
    tracemalloc.start()
    try:
        scope = {"type": "websocket", "headers": []}
        queues = [daphne.server.create_application(c, dict(scope)) for c in connections]
        await asyncio.sleep(0)  # each application now waits in receive()
        allocated, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert None not in queues  # every application started, each with its queue
    assert (allocated / len(connections) < 2048) is (kind == "project")


async def test_application_queue_keeps_order() -> None:
    """Messages come out in the order they were put, however many wait."""
    queue = adjustments.ApplicationQueue()
    for number in range(10_000):
        queue.put_nowait({"number": number})
    taken = [(await queue.get())["number"] for _ in range(5_000)]
    for number in range(10_000, 10_010):
        queue.put_nowait({"number": number})
    assert queue.qsize() == 5_010
    taken += [(await queue.get())["number"] for _ in range(5_010)]
    assert taken == list(range(10_010))
    assert queue.qsize() == 0


async def test_application_queue_waits_for_a_message() -> None:
    queue = adjustments.ApplicationQueue()
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait({"type": "websocket.connect"})
    assert await asyncio.wait_for(reader, timeout=1) == {"type": "websocket.connect"}


async def test_application_queue_survives_a_cancelled_reader() -> None:
    """A reader cancelled while it waits (Channels cancels its receive task when a consumer
    stops) takes nothing, and the next reader gets the next message."""
    queue = adjustments.ApplicationQueue()
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    queue.put_nowait({"number": 1})
    assert await asyncio.wait_for(queue.get(), timeout=1) == {"number": 1}


async def test_application_queue_has_one_reader() -> None:
    """A second receive() while one waits is an error, not a reader that never wakes."""
    queue = adjustments.ApplicationQueue()
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="another receive"):
        await queue.get()
    queue.put_nowait({"number": 1})
    assert await asyncio.wait_for(reader, timeout=1) == {"number": 1}


# Back-pressure.


@pytest.mark.parametrize("kind", KINDS)
async def test_reading_pauses_while_the_application_is_behind(
    kind: str, daphne_servers: Any
) -> None:
    """With MAX_PENDING_MESSAGES waiting for the application, the server stops reading from
    the client; stock: it reads and queues without bound."""
    connection = daphne_servers(kind, deaf_application).connect()
    await connection.open()
    for number in range(adjustments.MAX_PENDING_MESSAGES):
        await connection.send(connection.peer.text(str(number)))
    expected = "paused" if kind == "project" else "producing"
    assert connection.transport.producerState == expected


async def test_reading_pauses_while_the_client_does_not_read(daphne_servers: Any) -> None:
    """When Twisted reports the client's write buffer full, the server stops reading from that
    client, and resumes once it drains (the live slow-reader test shows stock daphne does not)."""
    connection = daphne_servers("project").connect()
    await connection.open()
    websocket = connection.websocket
    assert connection.transport.producer is websocket
    assert connection.transport.bufferSize == adjustments.WRITE_HIGH_WATER  # type: ignore[attr-defined]
    websocket.pauseProducing()
    assert connection.transport.producerState == "paused"
    websocket.resumeProducing()
    assert connection.transport.producerState == "producing"


def pending(connection: Any) -> int:
    """How many messages wait for the connection's application."""
    return connection.websocket.application_queue.qsize()  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", KINDS)
async def test_frames_already_read_wait_while_the_application_is_behind(
    kind: str, daphne_servers: Any, settings: Settings
) -> None:
    """Once the application is a limit's worth of bytes behind, frames already read wait,
    unparsed, where a paused socket would not stop them: one read of small compressed frames
    cannot inflate past the bound; stock: every message of the read is queued."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    connection = daphne_servers(kind, GatedApplication()).connect()
    connection.peer = Peer(compression=True)
    await connection.open()
    burst = b"".join(connection.peer.binary(bytes(60_000)) for _ in range(40))
    await connection.send(burst)
    assert pending(connection) == (2 if kind == "project" else 40)


async def test_reading_resumes_as_soon_as_the_application_catches_up(
    daphne_servers: Any, settings: Settings
) -> None:
    """An application that reads and never replies gets every message as fast as it reads
    them: its queue says when it has caught up, with no reply or sweep needed."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    application = GatedApplication()
    connection = daphne_servers("project", application).connect()
    await connection.open()
    burst = b"".join(connection.peer.binary(bytes(4096)) for _ in range(200))
    await connection.send(burst)
    assert pending(connection) == adjustments.MAX_PENDING_MESSAGES
    assert connection.transport.producerState == "paused"
    application.gate.set()
    await connection.read()
    assert len(application.received) == 200
    assert connection.transport.producerState == "producing"


async def test_compressed_message_of_the_limit_echoes(
    daphne_servers: Any, settings: Settings
) -> None:
    """A message of exactly the limit in incompressible bytes, whose compressed frame is larger
    than the limit, is echoed, and so is its compressed echo: the limit counts inflated
    bytes; one byte more is refused with 1009."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    connection = daphne_servers("project").connect()
    connection.peer = Peer(compression=True)
    await connection.open()
    message = random.randbytes(65536)
    received = await connection.send(connection.peer.binary(message))
    assert received.messages() == [message]
    received = await connection.send(connection.peer.binary(random.randbytes(65537)))
    assert received.close is not None
    assert received.close.code == 1009


async def test_too_big_says_the_size_when_known(
    daphne_servers: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A fragmented message over the limit is logged with its whole size; a compressed one,
    inflated only up to the limit, as of unknown size."""
    settings.ECHO_MAX_MESSAGE_SIZE = 1000
    plain = daphne_servers("project").connect()
    await plain.open()
    with caplog.at_level(logging.INFO, logger="servers"):
        await plain.send(frame(BINARY, b"x" * 500, fin=False) + frame(0, b"x" * 502))
    assert "size=1002 limit=1000" in caplog.text
    compressed = daphne_servers("project").connect()
    compressed.peer = Peer(compression=True)
    await compressed.open()
    with caplog.at_level(logging.INFO, logger="servers"):
        received = await compressed.send(compressed.peer.binary(bytes(10**6)))
    assert received.close is not None
    assert received.close.code == 1009
    assert "size=unknown limit=1000" in caplog.text


# Deadlines before the handshake.


@pytest.mark.parametrize("kind", KINDS)
async def test_trickled_request_is_cut_off_at_the_deadline(
    kind: str, daphne_servers: Any, settings: Settings
) -> None:
    """A request trickled a byte a second is aborted ECHO_HANDSHAKE_TIMEOUT after connect;
    stock: each byte restarts Twisted's twelve-hour idle timeout."""
    settings.ECHO_HANDSHAKE_TIMEOUT = 5.0
    daphne = daphne_servers(kind)
    connection = daphne.connect()
    for byte in b"GET /echo HTTP/1.1\r\n"[:8]:
        connection.channel.dataReceived(bytes([byte]))
        daphne.clock.advance(1)
    assert connection.transport.disconnecting is (kind == "project")


@pytest.mark.parametrize("kind", KINDS)
async def test_idle_keep_alive_connection_is_closed(
    kind: str, daphne_servers: Any, settings: Settings
) -> None:
    """An HTTP connection left idle after a response is closed after ECHO_HANDSHAKE_TIMEOUT;
    stock: after twelve hours."""
    settings.ECHO_HANDSHAKE_TIMEOUT = 5.0
    daphne = daphne_servers(kind)
    connection = daphne.connect()
    connection.channel.dataReceived(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await connection.read()
    assert connection.transport.value() == b""
    daphne.clock.advance(6)
    assert connection.transport.disconnecting is (kind == "project")


# Shutdown.


@pytest.mark.parametrize("kind", KINDS)
async def test_shutdown_lets_applications_finish(kind: str) -> None:
    """At shutdown an application that is finishing (its client has answered the 1001) is let
    finish, so it sees its connection end; stock: daphne cancels it at once."""
    server = (EchoServer if kind == "project" else Server)(None, endpoints=["tcp:0"])

    async def finishing_application() -> None:
        await asyncio.sleep(0.05)

    application = asyncio.ensure_future(finishing_application())
    server.connections = {object(): {"application_instance": application}}
    await server.kill_all_applications().asFuture(asyncio.get_running_loop())
    assert application.cancelled() is (kind == "stock")


async def test_shutdown_says_going_away_and_refuses_newcomers(daphne_servers: Any) -> None:
    """On shutdown open WebSockets get 1001 with a reason, and new handshakes 503, which a proxy
    retries elsewhere (the live SIGTERM tests show stock daphne drops them silently)."""
    daphne = daphne_servers("project")
    connection = daphne.connect()
    await connection.open()
    daphne.server.kill_all_applications()
    received = await connection.read()
    newcomer = daphne.connect()
    refused = await newcomer.send(newcomer.peer.handshake())
    assert received.close is not None
    assert (received.close.code, received.close.reason) == (1001, SHUTDOWN_REASON)
    assert refused.status == 503


# What the application sends.


class Recorder:
    """Stands in for autobahn's sending methods, keeping what would go on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, Any]] = []

    def message(self, payload: bytes, isBinary: bool = False) -> None:
        self.sent.append(("message", payload, isBinary))

    def close(
        self, code: int | None = None, reasonUtf8: bytes | None = None, isReply: bool = False
    ) -> None:
        self.sent.append(("close", code, reasonUtf8))


def open_protocol(cls: type[WebSocketProtocol]) -> tuple[WebSocketProtocol, Recorder]:
    protocol = cls()
    protocol.state = protocol.STATE_OPEN
    recorder = Recorder()
    protocol.sendMessage = recorder.message  # type: ignore[method-assign]
    protocol.sendCloseFrame = recorder.close  # type: ignore[method-assign]
    return protocol, recorder


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "websocket.send", "text": ""}, ("message", b"", False)),
        ({"type": "websocket.send", "bytes": b""}, ("message", b"", True)),
        ({"type": "websocket.send", "text": "é"}, ("message", "é".encode(), False)),
        ({"type": "websocket.send", "bytes": b"\x00"}, ("message", b"\x00", True)),
        (
            {"type": "websocket.close", "code": 1000, "reason": "idle timeout"},
            ("close", 1000, b"idle timeout"),
        ),
        (
            {"type": "websocket.close", "code": 1013, "reason": "try again later"},
            ("close", 1013, b"try again later"),
        ),
        # 61 two-byte characters: cut to 122 bytes, never in the middle of a character.
        (
            {"type": "websocket.close", "code": 1009, "reason": "é" * 70},
            ("close", 1009, "é".encode() * 61),
        ),
        ({"type": "websocket.close"}, ("close", 1000, None)),
    ],
    ids=[
        "empty-text",
        "empty-binary",
        "text",
        "binary",
        "close-reason",
        "close-1013",
        "close-long-reason",
        "close-default",
    ],
)
def test_sends_what_the_application_asked_for(
    message: dict[str, Any], expected: tuple[str, Any, Any]
) -> None:
    """Empty messages and close reasons reach the wire exactly as the application sent them."""
    protocol, recorder = open_protocol(EchoWebSocketProtocol)
    protocol.handle_reply(message)
    assert recorder.sent == [expected]


@pytest.mark.parametrize("payload", [{"text": ""}, {"bytes": b""}], ids=["text", "binary"])
def test_stock_daphne_still_drops_empty_messages(payload: dict[str, Any]) -> None:
    """daphne's own protocol still drops empty messages; when this fails, the fix can go."""
    protocol, recorder = open_protocol(WebSocketProtocol)
    protocol.handle_reply({"type": "websocket.send", **payload})
    assert recorder.sent == []


async def test_stock_daphne_still_loses_close_reasons(daphne_servers: Any) -> None:
    """daphne's own protocol drops an application's close reason and refuses 1013 (daphne
    issue #374); when this fails, the fix can go."""
    connection = daphne_servers("stock").connect()
    await connection.open()
    websocket = connection.websocket
    websocket.handle_reply({"type": "websocket.close", "code": 1000, "reason": "idle timeout"})
    received = await connection.read()
    assert received.close is not None
    assert (received.close.code, received.close.reason) == (1000, "")
    with pytest.raises(Exception, match="1013"):
        websocket.handle_reply({"type": "websocket.close", "code": 1013})


def test_refuses_a_send_with_both_payloads() -> None:
    """A websocket.send carrying both text and bytes is an application error, not a guess."""
    protocol, _ = open_protocol(EchoWebSocketProtocol)
    with pytest.raises(ValueError, match="exactly one of"):
        protocol.handle_reply({"type": "websocket.send", "text": "a", "bytes": b"b"})


def test_nothing_is_sent_after_the_close_frame() -> None:
    """An echo that arrives from the application after the close frame is dropped quietly."""
    protocol, recorder = open_protocol(EchoWebSocketProtocol)
    protocol.state = protocol.STATE_CLOSING
    protocol.handle_reply({"type": "websocket.send", "text": "late"})
    assert recorder.sent == []


# What reaches the server before a WebSocket exists.


@pytest.mark.parametrize("kind", KINDS)
async def test_oversized_request_line_is_answered(
    kind: str, daphne_servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A header line over Twisted's 16 KiB gets 431, logged as the client's doing, and the
    server half-closes (reading on, so the answer is not lost to a reset); stock: the
    connection is dropped without a word."""
    connection = daphne_servers(kind).connect()
    with caplog.at_level(logging.INFO, logger="servers"):
        connection.deliver(b"GET /echo HTTP/1.1\r\nX-Long: " + b"a" * 20_000)
    written, _ = connection.take_written()
    if kind == "project":
        assert written.startswith(b"HTTP/1.1 431 ")
        assert (connection.transport.write_closed, connection.transport.disconnecting) == (
            True,
            False,
        )
        assert "event=http_refused client=127.0.0.1:50000 status=431" in caplog.text
    else:
        assert written == b""
        assert connection.transport.disconnecting


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_request_is_logged(
    kind: str, daphne_servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A request Twisted cannot parse gets its 400 and an INFO line naming the client; stock:
    the 400 alone, and nothing in the log."""
    connection = daphne_servers(kind).connect()
    with caplog.at_level(logging.INFO):
        connection.deliver(b"GET /echo HTTP/1.1\r\nno colon in this header\r\n\r\n")
    written, _ = connection.take_written()
    assert written.startswith(b"HTTP/1.1 400 ")
    logged = "event=http_refused client=127.0.0.1:50000 status=400" in caplog.text
    assert logged is (kind == "project")


@pytest.mark.parametrize("kind", KINDS)
async def test_message_sent_with_the_handshake_is_echoed(kind: str, daphne_servers: Any) -> None:
    """A message that arrives in the same read as the handshake reaches the WebSocket; stock:
    Twisted keeps it for a next request that never comes."""
    connection = daphne_servers(kind).connect()
    received = await connection.send(connection.peer.handshake() + frame(TEXT, b"eager"))
    assert received.status == 101
    assert received.messages() == (["eager"] if kind == "project" else [])


# permessage-deflate.

OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}


@pytest.mark.parametrize("kind", KINDS)
async def test_compression_is_negotiated(kind: str, daphne_servers: Any) -> None:
    """An offer of permessage-deflate is accepted, with a 12-bit client window; stock: daphne
    never switches autobahn's compression on."""
    connection = daphne_servers(kind).connect()
    received = await connection.send(connection.peer.handshake(**OFFER))
    assert received.status == 101
    assert received.response is not None
    answer = received.response.headers.get("Sec-WebSocket-Extensions")
    expected = "permessage-deflate; client_max_window_bits=12" if kind == "project" else None
    assert answer == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_unreadable_offer_is_declined(kind: str, daphne_servers: Any) -> None:
    """An offer autobahn cannot read is declined and the handshake goes on (RFC 7692 section
    5); stock: autobahn fails the handshake with 400."""
    connection = daphne_servers(kind).connect()
    offer = {"Sec-WebSocket-Extensions": "permessage-deflate; unknown_parameter"}
    received = await connection.send(connection.peer.handshake(**offer))
    assert received.status == (101 if kind == "project" else 400)


@pytest.mark.parametrize("window", ["010", "+10", " 10"])
async def test_window_size_not_written_as_rfc_7692_says_is_declined(
    window: str, daphne_servers: Any
) -> None:
    """A window size with a leading zero, a sign or a space is declined, and the handshake goes
    on (RFC 7692 section 7.1.2 allows a decimal integer without leading zeros); autobahn's own
    parser reads it as a number."""
    connection = daphne_servers("project").connect()
    offer = {"Sec-WebSocket-Extensions": f'permessage-deflate; server_max_window_bits="{window}"'}
    received = await connection.send(connection.peer.handshake(**offer))
    assert received.status == 101
    assert received.response is not None
    assert received.response.headers.get("Sec-WebSocket-Extensions") is None
    stock = PerMessageDeflateOffer.parse({"server_max_window_bits": [window]})
    assert stock.request_max_window_bits == 10


async def test_message_just_over_the_limit_is_refused(
    daphne_servers: Any, settings: Settings
) -> None:
    """A message that inflates to one byte over the limit ends with 1009; autobahn's own
    ``PerMessageDeflate`` hands it on a byte short."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    connection = daphne_servers("project").connect()
    connection.peer = Peer(compression=True)
    await connection.open()
    received = await connection.send(connection.peer.binary(b"x" * 65537))
    assert received.messages() == []
    assert received.close is not None
    assert received.close.code == 1009
    stock = PerMessageDeflate(True, False, False, 15, 15, 5, 65536)
    stock.start_decompress_message()
    compressed = ClientDeflate().compress(b"x" * 65537)
    assert len(stock.decompress_message_data(compressed, 65536)) == 65536

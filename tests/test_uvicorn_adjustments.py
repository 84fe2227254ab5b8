"""Each adjustment in ``servers/uvicorn.py`` does what it says, and stock uvicorn still needs it.

uvicorn's protocol objects are driven over an in-memory transport by a real WebSocket client
(``tests/peer.py``), once with the project's classes and once with uvicorn's own. Every test
states what the project's classes do; its ``stock`` case states the defect uvicorn still has.
When a ``stock`` case fails after an upgrade, the adjustment can go (docs/upstream.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pytest_django import Settings
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import Opcode

from servers import SHUTDOWN_REASON
from tests.peer import GatedApplication, Peer, echo_application, settle
from tests.rawws import CLOSE, PING, TEXT, close_payload, frame
from tests.timing import bound
from tests.uvicorn_harness import (
    HTTP_PROTOCOLS,
    Connection,
    RecordingTransport,
    loaded_config,
)

KINDS = ["project", "stock"]


@pytest.fixture
async def connections() -> AsyncIterator[Any]:
    """Opens connections for a test; ends their applications and connections afterwards."""
    opened: list[Connection] = []

    def connect(kind: str, application: Any = echo_application) -> Connection:
        opened.append(Connection(kind, application))
        return opened[-1]

    yield connect
    for connection in opened:
        await connection.finish()


# Deadline before the handshake.


@pytest.mark.parametrize("kind", KINDS)
async def test_silent_connection_is_closed_at_the_deadline(kind: str, settings: Settings) -> None:
    """A connection that sends no complete request head is closed ECHO_HANDSHAKE_TIMEOUT after
    connect; stock: it stays open for as long as the client likes."""
    settings.ECHO_HANDSHAKE_TIMEOUT = 0.05
    protocol = HTTP_PROTOCOLS[kind](loaded_config(echo_application), ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"GET /echo HT")
    await asyncio.sleep(bound(0.3))
    assert transport.closed is (kind == "project")
    protocol.connection_lost(None)


# Limits from the project's settings.


@pytest.mark.parametrize("kind", KINDS)
async def test_size_limit_is_the_projects(kind: str, connections: Any, settings: Settings) -> None:
    """ECHO_MAX_MESSAGE_SIZE applies; stock: only uvicorn's own option does (16 MiB)."""
    settings.ECHO_MAX_MESSAGE_SIZE = 64
    connection = connections(kind)
    await connection.open()
    received = await connection.send(connection.peer.text("x" * 65))
    if kind == "project":
        assert received.close is not None
        assert received.close.code == 1009
    else:
        assert received.messages() == ["x" * 65]


@pytest.mark.parametrize("kind", KINDS)
async def test_too_big_is_logged(
    kind: str, connections: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A message over the limit is logged with its size as it is refused; stock: not logged,
    and the application never sees it to log it."""
    settings.ECHO_MAX_MESSAGE_SIZE = 64
    connection = connections(kind)
    await connection.open()
    with caplog.at_level(logging.INFO, logger="servers.uvicorn"):
        await connection.send(connection.peer.text("x" * 65))
    logged = "event=too_big client=127.0.0.1:50000 size=65 limit=64" in caplog.text
    assert logged is (kind == "project")


@pytest.mark.parametrize("kind", KINDS)
async def test_frames_already_read_wait_while_the_application_is_behind(
    kind: str, connections: Any, settings: Settings
) -> None:
    """On a compressed connection, frames read in one go reach websockets one message at a
    time, as the application takes them, so they cannot inflate past the bound together;
    stock: websockets inflates every frame of the read and all of them are queued."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    connection = connections(kind, GatedApplication())
    connection.peer = Peer(compression=True)
    await connection.open()
    burst = b"".join(connection.peer.binary(bytes(60_000)) for _ in range(40))
    await connection.send(burst)
    waiting = [event for event in connection.protocol.queue._queue if "bytes" in event]
    assert len(waiting) == (1 if kind == "project" else 40)


async def test_reading_resumes_as_soon_as_the_application_catches_up(
    connections: Any, settings: Settings
) -> None:
    """The frames held back are handed over as the application reads, every one of them."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    application = GatedApplication()
    connection = connections("project", application)
    connection.peer = Peer(compression=True)
    await connection.open()
    burst = b"".join(connection.peer.binary(bytes(60_000)) for _ in range(40))
    await connection.send(burst)
    application.gate.set()
    await connection.read()
    assert [len(event["bytes"]) for event in application.received] == [60_000] * 40


async def test_compressed_message_of_the_limit_echoes(
    connections: Any, settings: Settings
) -> None:
    """A message of exactly the limit in incompressible bytes, whose compressed frame is larger
    than the limit, is echoed: the limit counts inflated bytes; one byte more gets 1009."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    connection = connections("project")
    connection.peer = Peer(compression=True)
    await connection.open()
    message = random.randbytes(65536)
    received = await connection.send(connection.peer.binary(message))
    assert received.messages() == [message]
    received = await connection.send(connection.peer.binary(random.randbytes(65537)))
    assert received.close is not None
    assert received.close.code == 1009


@pytest.mark.parametrize(
    "fragments",
    [[65536], [65537], [65538], [30000, 35536], [30000, 35537], [65536, 1], [65536, 10**6]],
)
@pytest.mark.parametrize("ping", [False, True], ids=["", "ping-between"])
async def test_compressed_limit_is_exact(
    connections: Any, settings: Settings, fragments: list[int], ping: bool
) -> None:
    """A compressible message inflating to the limit echoes, whole or fragmented, and a byte
    more is refused, also when a fragment has used the budget up exactly (to zlib, a budget of
    zero means no limit), and with a ping between its fragments."""
    settings.ECHO_MAX_MESSAGE_SIZE = 65536
    connection = connections("project")
    connection.peer = Peer(compression=True)
    await connection.open()
    client = connection.peer.protocol
    *first, last = fragments
    for number, size in enumerate(first):
        send = client.send_binary if number == 0 else client.send_continuation
        send(bytes(size), fin=False)
        if ping:
            client.send_ping(b"between")
    (client.send_continuation if first else client.send_binary)(bytes(last), fin=True)
    received = await connection.send(b"".join(client.data_to_send()))
    if sum(fragments) <= 65536:
        assert received.messages() == [bytes(sum(fragments))]
    else:
        assert received.messages() == []
        assert received.close is not None
        assert received.close.code == 1009


async def test_too_big_says_the_size_when_known(
    connections: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """An uncompressed message over the limit is logged with its size; a compressed one,
    inflated only up to the limit, as of unknown size."""
    settings.ECHO_MAX_MESSAGE_SIZE = 1000
    plain = connections("project")
    await plain.open()
    with caplog.at_level(logging.INFO, logger="servers"):
        await plain.send(plain.peer.binary(b"x" * 1002))
    assert "size=1002 limit=1000" in caplog.text
    compressed = connections("project")
    compressed.peer = Peer(compression=True)
    await compressed.open()
    with caplog.at_level(logging.INFO, logger="servers"):
        received = await compressed.send(compressed.peer.binary(bytes(10**6)))
    assert received.close is not None
    assert received.close.code == 1009
    assert "size=unknown limit=1000" in caplog.text


@pytest.mark.parametrize("kind", KINDS)
async def test_keepalive_is_the_projects(kind: str, connections: Any, settings: Settings) -> None:
    """ECHO_PING_INTERVAL and ECHO_PING_TIMEOUT drive the keepalive; stock: uvicorn's options."""
    settings.ECHO_PING_INTERVAL, settings.ECHO_PING_TIMEOUT = 7.0, 3.0
    connection = connections(kind)
    expected = (7.0, 3.0) if kind == "project" else (20.0, 20.0)
    assert (connection.protocol.ping_interval, connection.protocol.ping_timeout) == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_compression_is_the_projects(
    kind: str, connections: Any, settings: Settings
) -> None:
    """ECHO_COMPRESSION decides whether permessage-deflate is negotiated; stock: only uvicorn's
    own ``--ws-per-message-deflate`` flag does (on by default)."""
    settings.ECHO_COMPRESSION = False
    connection = connections(kind)
    offer = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
    connection.protocol.data_received(connection.peer.handshake(**offer))
    await settle()
    response = bytes(connection.transport.written).lower()
    assert response.startswith(b"http/1.1 101 ")
    assert (b"sec-websocket-extensions: permessage-deflate" in response) is (kind == "stock")


@pytest.mark.parametrize("kind", KINDS)
async def test_unparsable_extensions_header_is_declined(kind: str, connections: Any) -> None:
    """A ``Sec-WebSocket-Extensions`` header websockets cannot parse is declined, and the
    handshake goes on without compression; stock: 400."""
    connection = connections(kind)
    offer = {"Sec-WebSocket-Extensions": "permessage-deflate;;;"}
    received = await connection.send(connection.peer.handshake(**offer))
    if kind == "project":
        assert received.status == 101
        assert received.response is not None
        assert received.response.headers.get("Sec-WebSocket-Extensions") is None
    else:
        assert received.status == 400


# The opening and closing handshakes.


@pytest.mark.parametrize("kind", KINDS)
async def test_unsupported_version_gets_426(kind: str, connections: Any) -> None:
    """A handshake for protocol version 8 gets 426 naming version 13; stock: 400."""
    connection = connections(kind)
    received = await connection.send(connection.peer.handshake(**{"Sec-WebSocket-Version": "8"}))
    if kind == "project":
        assert received.status == 426
        assert received.response is not None
        assert received.response.headers["Sec-WebSocket-Version"] == "13"
    else:
        assert received.status == 400


@pytest.mark.parametrize("kind", KINDS)
async def test_codeless_close_is_answered_with_1000(kind: str, connections: Any) -> None:
    """A client's close without a code gets close 1000; stock: an empty close (1005)."""
    connection = connections(kind)
    await connection.open()
    received = await connection.send(connection.peer.close())
    assert received.close is not None
    assert received.close.code == (1000 if kind == "project" else 1005)


@pytest.mark.parametrize("kind", KINDS)
async def test_invalid_utf8_is_the_clients_error(
    kind: str, connections: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Text that is not UTF-8 is closed with 1007 and logged at INFO as the client's doing;
    stock: logged at ERROR with a traceback, so any client can fill the error log."""
    connection = connections(kind)
    await connection.open()
    with caplog.at_level(logging.INFO):
        received = await connection.send(frame(TEXT, b"\xff\xfe"))
    assert received.close is not None
    assert received.close.code == 1007
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    if kind == "project":
        assert errors == []
        assert "event=protocol_error client=127.0.0.1:50000 code=1007" in caplog.text
    else:
        assert errors


@pytest.mark.parametrize("kind", KINDS)
async def test_message_before_a_protocol_error_is_echoed(kind: str, connections: Any) -> None:
    """A message in the same read as a protocol error is echoed before the close, and TCP is
    half-closed, not dropped; stock: the message is never handed to the application, and the
    socket is closed at once."""
    connection = connections(kind)
    await connection.open()
    received = await connection.send(connection.peer.text("first") + frame(TEXT, b"bad", rsv=4))
    assert received.close is not None
    assert received.close.code == 1002
    if kind == "project":
        assert received.messages() == ["first"]
        assert [frame.opcode for frame in received.frames][-1] is Opcode.CLOSE
        assert (connection.transport.eof_written, connection.transport.closed) == (True, False)
    else:
        assert received.messages() == []
        assert connection.transport.closed


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_text_before_a_close_fails_the_connection(kind: str, connections: Any) -> None:
    """Text that is not UTF-8, read together with the client's close behind it, fails the
    connection with 1007 after the echo of the message before it; stock: websockets answered
    the close as it read it, and uvicorn's 1007 then raises out of ``data_received``."""
    connection = connections(kind)
    await connection.open()
    wire = (
        connection.peer.text("first")
        + frame(PING, b"ping")
        + frame(TEXT, b"\xff")
        + frame(CLOSE, close_payload(4000))
    )
    if kind == "stock":
        with pytest.raises(InvalidState):
            connection.deliver(wire)
        return
    received = await connection.send(wire)
    assert received.close is not None
    assert received.close.code == 1007
    assert received.messages() == ["first"]
    assert received.frames[-1].opcode is Opcode.CLOSE


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_utf8_in_a_first_fragment_fails_at_once(kind: str, connections: Any) -> None:
    """Invalid UTF-8 in the first fragment of a text message is answered with 1007 as it
    arrives; stock: only when the message ends."""
    connection = connections(kind)
    await connection.open()
    received = await connection.send(frame(TEXT, b"ok \xff", fin=False))
    if kind == "project":
        assert received.close is not None
        assert received.close.code == 1007
    else:
        assert received.close is None


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_utf8_fails_before_the_frame_is_whole(kind: str, connections: Any) -> None:
    """Invalid UTF-8 in a text frame is answered with 1007 as it arrives, the frame's first
    bytes read in three parts; stock: only once the whole frame has arrived."""
    connection = connections(kind)
    await connection.open()
    whole = frame(TEXT, "¡olé!".encode() * 500 + b"\xff" + b"." * 5000)
    for part in (whole[:4], whole[4:3000], whole[3000:7000]):
        received = await connection.send(part)
    if kind == "project":
        assert received.close is not None
        assert received.close.code == 1007
    else:
        assert received.close is None


@pytest.mark.parametrize("kind", KINDS)
async def test_close_between_fragments_is_answered(kind: str, connections: Any) -> None:
    """A close inside a fragmented message gets the client's code back; stock: 1002."""
    connection = connections(kind)
    await connection.open()
    received = await connection.send(
        frame(TEXT, b"half", fin=False) + frame(CLOSE, close_payload(4000, b"bye"))
    )
    assert received.close is not None
    expected = (4000, "bye") if kind == "project" else (1002, "incomplete fragmented message")
    assert (received.close.code, received.close.reason) == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_unreadable_handshake_is_answered(kind: str, connections: Any) -> None:
    """A request head websockets cannot read (a header line over 8 KiB) gets its 431 and the
    socket is closed; stock: nothing is written and the socket stays open."""
    connection = connections(kind)
    received = await connection.send(connection.peer.handshake(**{"X-Long": "a" * 9000}))
    if kind == "project":
        assert received.status == 431
        assert connection.transport.closed
    else:
        assert received.status is None
        assert not connection.transport.closed


@pytest.mark.parametrize("kind", KINDS)
async def test_unanswered_ping_drops_without_a_close(
    kind: str, connections: Any, settings: Settings
) -> None:
    """A client that does not answer a ping is dropped without a close frame; stock: sent 1011,
    which waits behind everything the client has not read."""
    settings.ECHO_PING_INTERVAL, settings.ECHO_PING_TIMEOUT = 0.01, 0.01
    connection = connections(kind)
    connection.protocol.ping_interval = connection.protocol.ping_timeout = 0.01
    await connection.open()
    await asyncio.sleep(bound(0.2))
    received = await connection.read()
    if kind == "project":
        assert received.close is None
        assert connection.transport.aborted
    else:
        assert received.close is not None
        assert received.close.code == 1011


@pytest.mark.parametrize("kind", KINDS)
async def test_send_after_the_client_left_is_dropped(kind: str, connections: Any) -> None:
    """An echo on its way when the client goes is dropped, and the application then hears of
    the end (1006) from websocket.disconnect, as under daphne; stock: send() raises
    ClientDisconnected, so a consumer never reaches its disconnect handler."""
    connection = connections(kind)
    await connection.open()
    connection.protocol.connection_lost(None)
    message = {"type": "websocket.send", "text": "too late"}
    if kind == "project":
        await connection.protocol.send(message)
        assert (await connection.protocol.receive())["code"] == 1006
    else:
        with pytest.raises(ClientDisconnected):
            await connection.protocol.send(message)


# Shutdown.


@pytest.mark.parametrize("kind", KINDS)
async def test_shutdown_says_going_away(kind: str, connections: Any) -> None:
    """On shutdown an open WebSocket gets 1001 with a reason; stock: 1012 (service restart)."""
    connection = connections(kind)
    await connection.open()
    connection.protocol.shutdown()
    received = await connection.read()
    assert received.close is not None
    if kind == "project":
        assert (received.close.code, received.close.reason) == (1001, SHUTDOWN_REASON)
    else:
        assert received.close.code == 1012


@pytest.mark.parametrize("kind", KINDS)
async def test_shutdown_before_the_application_answers(kind: str, connections: Any) -> None:
    """A handshake still waiting for the application when the server stops gets 503, and
    nothing the application sends afterwards reaches the client; stock: 500, and uvicorn fails
    on the application's late answer."""
    connect_received, shut_down = asyncio.Event(), asyncio.Event()

    async def late_application(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        connect_received.set()
        await shut_down.wait()
        await send({"type": "websocket.accept", "subprotocol": "echo"})

    connection = connections(kind, late_application)
    connection.protocol.data_received(connection.peer.handshake())
    await asyncio.wait_for(connect_received.wait(), timeout=bound(5))
    connection.protocol.shutdown()
    shut_down.set()
    tasks = asyncio.gather(*connection.state.tasks, return_exceptions=True)
    await asyncio.wait_for(tasks, timeout=bound(5))
    response = bytes(connection.transport.written)
    assert connection.transport.closed
    if kind == "project":
        assert response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert response.endswith(f"\r\n\r\n{SHUTDOWN_REASON}\n".encode())
        assert response.count(b"HTTP/1.1") == 1
    else:
        assert response.startswith(b"HTTP/1.1 500 ")


@pytest.mark.parametrize("kind", KINDS)
async def test_request_head_size_is_bounded(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """A request head that grows past 16 KiB is refused with 431 and logged as the client's
    doing, while the server reads on; stock: uvicorn keeps reading a head of any size."""
    protocol = HTTP_PROTOCOLS[kind](loaded_config(echo_application), ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    with caplog.at_level(logging.INFO, logger="servers"):
        protocol.data_received(b"GET / HTTP/1.1\r\nX-Long: ")
        for _ in range(20):
            protocol.data_received(b"a" * 1024)
    if kind == "project":
        assert bytes(transport.written).startswith(b"HTTP/1.1 431 ")
        assert (transport.eof_written, transport.closed) == (True, False)
        assert "event=http_refused client=127.0.0.1:50000 status=431" in caplog.text
    else:
        assert transport.written == b""
    protocol.connection_lost(None)


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_request_is_the_clients_error(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A request httptools cannot parse gets 400 and an INFO line naming the client; stock: a
    WARNING that says nothing of who sent it."""
    protocol = HTTP_PROTOCOLS[kind](loaded_config(echo_application), ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    with caplog.at_level(logging.INFO):
        protocol.data_received(b"\x16\x03\x01 not HTTP\r\n\r\n")
    assert bytes(transport.written).startswith(b"HTTP/1.1 400 ")
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    if kind == "project":
        assert warnings == []
        assert "event=http_refused client=127.0.0.1:50000 status=400" in caplog.text
    else:
        assert warnings
    protocol.connection_lost(None)

"""The log misses nothing: a line for every event the README lists, each time, under every server.

Each test ends a connection one way (or sends one kind of bad request) from a raw client whose
local port names it in the log, then looks for that client's lines.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from tests.conftest import ServerFactory
from tests.live import HOST, LOG_POLL_INTERVAL, LiveServer
from tests.rawws import BINARY, CLOSE, TEXT, RawClient, close_payload, frame
from tests.timing import bound

pytestmark = pytest.mark.live

# Log lines are looked for every LOG_POLL_INTERVAL, for this long at most (longer than other
# tests wait: a slow reader is dropped only after keepalive and the close timeout).
LOG_WAIT = 10.0


def name_of(client: RawClient) -> str:
    """The client as the log names it."""
    return f"{HOST}:{client.sock.getsockname()[1]}"


def client_lines(server: LiveServer, client: RawClient | str, event: str, since: int) -> list[str]:
    """The log lines of ``event`` for ``client`` after ``since``, once there is at least one."""
    name = client if isinstance(client, str) else name_of(client)
    pattern = re.compile(rf"event={event} client={re.escape(name)}( |$)")
    deadline = time.monotonic() + bound(LOG_WAIT)
    while time.monotonic() < deadline:
        lines = [line for line in server.log()[since:].splitlines() if pattern.search(line)]
        if lines:
            return lines
        time.sleep(LOG_POLL_INTERVAL)
    raise AssertionError(f"no event={event} for {name} in the log:\n{server.log()[since:]}")


def closed_code(server: LiveServer, client: RawClient | str, since: int) -> int:
    (line,) = client_lines(server, client, "closed", since)
    match = re.search(r" code=(\d+) ", line)
    assert match is not None, line
    return int(match.group(1))


def assert_no_warnings_about(server: LiveServer, client: RawClient, since: int) -> None:
    """Nothing the client did is logged above INFO, nor as an unstructured line."""
    port = str(client.sock.getsockname()[1])
    for line in server.log()[since:].splitlines():
        if port in line:
            assert " WARNING " not in line, line
            assert " ERROR " not in line, line


# How accepted connections end: each writes one event=closed with its code.


def test_client_close_is_logged(echo_server: LiveServer) -> None:
    since = echo_server.log_end()
    with RawClient.open(HOST, echo_server.port) as client:
        client.send(frame(TEXT, b"hello") + frame(CLOSE, close_payload(4000)))
        client.expect_close(reply=False)
        assert closed_code(echo_server, client, since) == 4000


def test_client_reset_is_logged(echo_server: LiveServer) -> None:
    since = echo_server.log_end()
    client = RawClient.open(HOST, echo_server.port)
    client.send(frame(TEXT, b"hello"))
    client.recv_message()
    name = name_of(client)
    client.reset()
    assert closed_code(echo_server, name, since) == 1006


@pytest.mark.parametrize(
    ("wire", "code"),
    [(frame(TEXT, b"bad", rsv=4), 1002), (frame(TEXT, b"\xff"), 1007)],
    ids=["protocol-error", "invalid-utf8"],
)
def test_failed_connection_is_logged(echo_server: LiveServer, wire: bytes, code: int) -> None:
    since = echo_server.log_end()
    with RawClient.open(HOST, echo_server.port) as client:
        client.send(wire)
        client.expect_close()
        (failure,) = client_lines(echo_server, client, "protocol_error", since)
        assert f" code={code} " in failure
        assert closed_code(echo_server, client, since) == code
        assert_no_warnings_about(echo_server, client, since)


def test_too_big_is_logged(live_servers: ServerFactory, server_kind: str) -> None:
    server = live_servers(server_kind, ECHO_MAX_MESSAGE_SIZE="1000")
    since = server.log_end()
    with RawClient.open(HOST, server.port) as client:
        client.send(frame(BINARY, bytes(1001)))
        assert client.expect_close().close_code == 1009
        (too_big,) = client_lines(server, client, "too_big", since)
        assert "size=1001 limit=1000" in too_big
        assert closed_code(server, client, since) == 1009


def test_idle_timeout_is_logged(live_servers: ServerFactory, server_kind: str) -> None:
    server = live_servers(server_kind, ECHO_IDLE_TIMEOUT="0.5")
    since = server.log_end()
    with RawClient.open(HOST, server.port) as client:
        assert client.expect_close().close_code == 1000
        client_lines(server, client, "idle_timeout", since)
        assert closed_code(server, client, since) == 1000


def test_ping_timeout_is_logged(live_servers: ServerFactory, server_kind: str) -> None:
    server = live_servers(server_kind, ECHO_PING_INTERVAL="0.5", ECHO_PING_TIMEOUT="0.5")
    since = server.log_end()
    with RawClient.open(HOST, server.port) as client:
        client.read_until_eof()
        client_lines(server, client, "ping_timeout", since)
        assert closed_code(server, client, since) == 1006


def test_capacity_refusal_is_logged(live_servers: ServerFactory, server_kind: str) -> None:
    """A connection over ECHO_MAX_CONNECTIONS, accepted and then closed with 1013, is logged as
    refused and as closed, once each."""
    server = live_servers(server_kind, ECHO_MAX_CONNECTIONS="3")
    since = server.log_end()
    with (
        RawClient.open(HOST, server.port),
        RawClient.open(HOST, server.port),
        RawClient.open(HOST, server.port),
        RawClient.open(HOST, server.port) as over,
    ):
        assert over.expect_close().close_code == 1013
        client_lines(server, over, "refused", since)
        assert closed_code(server, over, since) == 1013


def drop_at_close(client: RawClient) -> str:
    """Reads to the server's close frame, then ends TCP without answering it; the client's name."""
    name = name_of(client)
    while client.recv_frame().opcode != CLOSE:
        pass
    client.close()
    return name


def test_unanswered_capacity_refusal_is_closed_with_1013(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """A connection over capacity whose client drops TCP instead of answering the 1013 is logged
    as closed with 1013, the code the server sent, not 1006."""
    server = live_servers(server_kind, ECHO_MAX_CONNECTIONS="1")
    since = server.log_end()
    with RawClient.open(HOST, server.port), RawClient.open(HOST, server.port) as over:
        name = drop_at_close(over)
        assert closed_code(server, name, since) == 1013


def test_unanswered_idle_timeout_is_closed_with_1000(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """An idle connection whose client drops TCP instead of answering the server's 1000 is
    logged as closed with 1000, not 1006."""
    server = live_servers(server_kind, ECHO_IDLE_TIMEOUT="0.5")
    since = server.log_end()
    with RawClient.open(HOST, server.port) as client:
        name = drop_at_close(client)
        assert closed_code(server, name, since) == 1000


def test_slow_reader_is_logged(live_servers: ServerFactory, server_kind: str) -> None:
    """A client that sends without ever reading is dropped by keepalive, and logged."""
    server = live_servers(server_kind, ECHO_PING_INTERVAL="1", ECHO_PING_TIMEOUT="1")
    since = server.log_end()
    client = RawClient.open(HOST, server.port)
    client.sock.settimeout(bound(2))
    stop = threading.Event()

    def flood() -> None:
        message = frame(BINARY, bytes(64 * 1024))
        for _ in range(2000):
            if stop.is_set():
                return
            try:
                client.send(message)
            except OSError:
                return

    sender = threading.Thread(target=flood)
    sender.start()
    try:
        client_lines(server, client, "closed", since)
    finally:
        stop.set()
        sender.join(timeout=bound(10))
        client.close()


# Refusals at the HTTP level: one INFO line naming the client and the reason.


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01\x00\xa5garbage that is not HTTP\r\n\r\n", 400),
        (b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    ],
    ids=["garbage", "header-line-over-16-KiB"],
)
def test_malformed_request_is_an_info_line(
    echo_server: LiveServer, request_bytes: bytes, status: int
) -> None:
    since = echo_server.log_end()
    with RawClient(HOST, echo_server.port, timeout=bound(5)) as client:
        client.send(request_bytes)
        assert client.read_response().status == status
        (refused,) = client_lines(echo_server, client, "http_refused", since)
        assert f" status={status} " in refused
        assert_no_warnings_about(echo_server, client, since)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"headers": {"Sec-WebSocket-Key": ""}}, "invalid_handshake"),
        ({"headers": {"Sec-WebSocket-Version": "8"}}, "invalid_handshake"),
        ({"path": "/no/such/socket"}, "unknown_path"),
        ({"subprotocol": None}, "subprotocol_missing"),
        ({"headers": {"Origin": "http://evil.example"}}, "foreign_origin"),
    ],
    ids=["no-key", "version-8", "unknown-path", "no-subprotocol", "foreign-origin"],
)
def test_refused_handshake_is_an_info_line(
    echo_server: LiveServer, options: dict[str, object], reason: str
) -> None:
    since = echo_server.log_end()
    with RawClient(HOST, echo_server.port, timeout=bound(5)) as client:
        assert client.handshake(**options).status in (400, 403, 426)
        (refused,) = client_lines(echo_server, client, "refused", since)
        assert f" reason={reason}" in refused
        assert_no_warnings_about(echo_server, client, since)


def test_websocket_handshake_by_post_is_refused_with_405(echo_server: LiveServer) -> None:
    """A WebSocket handshake sent as a POST gets 405 and one INFO line naming its status, as any
    handshake the server refuses, under every server."""
    since = echo_server.log_end()
    with RawClient(HOST, echo_server.port, timeout=bound(5)) as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: echo\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        assert client.read_response().status == 405
        (refused,) = client_lines(echo_server, client, "refused", since)
        assert " reason=invalid_handshake status=405 " in refused
        assert_no_warnings_about(echo_server, client, since)


@pytest.mark.parametrize(
    "offer",
    ["echo, \u00c3\u00a9", "\u00ff", "echo, \u00e2\u0080\u00a8"],
    ids=["e-acute", "ff", "ls"],
)
def test_non_ascii_subprotocol_is_refused_with_400(echo_server: LiveServer, offer: str) -> None:
    """A ``Sec-WebSocket-Protocol`` with a byte above 127 gets 400 and one INFO line, no ERROR."""
    since = echo_server.log_end()
    with RawClient(HOST, echo_server.port, timeout=bound(5)) as client:
        assert client.handshake(subprotocol=offer).status == 400
        (refused,) = client_lines(echo_server, client, "refused", since)
        assert " reason=invalid_handshake status=400 detail=" in refused
    logged = echo_server.log()[since:]
    assert " ERROR " not in logged, logged
    assert "Traceback" not in logged, logged


# Client-supplied text is escaped: one request writes one line of its own pairs, whatever the
# client puts in its path, subprotocols, Origin, headers or messages.

FORGED = "event=accepted client=6.6.6.6:1"
# A forged pair or line names this client; the escaped text never does (its "=" and spaces are
# percent-encoded), nor do the servers' own access lines, which quote the raw request.
FORGED_CLIENT = re.compile(r"(^|\s)client=6\.6\.6\.6")


def assert_one_line_of_pairs(server: LiveServer, line: str, since: int) -> None:
    """``line`` holds one event and one client, and nothing in the log names the forged one."""
    assert len(re.findall(r"(^|\s)event=", line)) == 1, line
    assert len(re.findall(r"(^|\s)client=", line)) == 1, line
    forged = [
        logged for logged in server.log()[since:].splitlines() if FORGED_CLIENT.search(logged)
    ]
    assert not forged, forged


@pytest.mark.parametrize(
    "options",
    [
        {"path": "/x%0Aevent=accepted%20client=6.6.6.6:1"},
        {"subprotocol": "chat%0D%0Aevent=closed%20client=6.6.6.6:1%20code=1000"},
        {"subprotocol": f"chat {FORGED}"},
        {"headers": {"Origin": f"http://evil.example/ {FORGED}"}},
        {"headers": {"Sec-WebSocket-Version": f"8 {FORGED}"}},
    ],
    ids=["path", "quoted-subprotocol", "subprotocol", "origin", "version"],
)
def test_refused_handshake_cannot_forge_a_line(
    echo_server: LiveServer, options: dict[str, object]
) -> None:
    """A handshake whose path or headers hold a line break or pairs is refused in one line."""
    since = echo_server.log_end()
    with RawClient(HOST, echo_server.port, timeout=bound(5)) as client:
        assert client.handshake(**options).status in (400, 403)
        (refused,) = client_lines(echo_server, client, "refused", since)
        assert_one_line_of_pairs(echo_server, refused, since)


def test_message_preview_cannot_forge_a_line(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """At DEBUG, a message's preview holds no line break or pair of the client's making."""
    server = live_servers(server_kind, LOG_LEVEL="DEBUG")
    since = server.log_end()
    with RawClient.open(HOST, server.port) as client:
        client.send(frame(TEXT, f"x\n{FORGED} y".encode()))
        client.recv_message()
        (message,) = client_lines(server, client, "message", since)
        assert_one_line_of_pairs(server, message, since)

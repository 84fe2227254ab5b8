"""RFC 6455 on the wire: framing, close handshake and opening handshake, byte by byte."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from tests.conftest import RawClients, ServerFactory
from tests.live import HOST, LiveServer
from tests.rawws import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    ConnectionEnded,
    RawClient,
    close_payload,
    frame,
    handshake_request,
)
from tests.timing import bound

pytestmark = pytest.mark.live


def closes_with(
    raw_clients: RawClients, server: LiveServer, *frames: bytes, reply: bool = True
) -> tuple[int | None, bytes]:
    client = raw_clients(server)
    for data in frames:
        client.send(data)
    closed = client.expect_close(reply=reply)
    return closed.close_code, closed.close_reason


# Framing and messages: RFC 6455 sections 5 and 8.


@pytest.mark.parametrize("opcode", [TEXT, BINARY], ids=["text", "binary"])
def test_one_byte_fragments_echo_as_one_message(
    raw_clients: RawClients, echo_server: LiveServer, opcode: int
) -> None:
    """Three hundred 1-byte fragments come back as one message of the same type."""
    client = raw_clients(echo_server)
    payload = bytes(ord("a") + i % 26 for i in range(300))
    client.send(frame(opcode, payload[:1], fin=False))
    for byte in payload[1:-1]:
        client.send(frame(CONTINUATION, bytes([byte]), fin=False))
    client.send(frame(CONTINUATION, payload[-1:]))
    assert client.recv_message() == (opcode, payload)


def test_frames_split_across_writes_echo(raw_clients: RawClients, echo_server: LiveServer) -> None:
    """A message whose frames arrive one TCP write per byte still echoes intact."""
    client = raw_clients(echo_server)
    client.send_split(frame(TEXT, "split é 🎉".encode(), fin=False) + frame(CONTINUATION, b"!"))
    assert client.recv_message() == (TEXT, "split é 🎉!".encode())


def test_ping_between_fragments_is_answered_at_once(
    raw_clients: RawClients, echo_server: LiveServer
) -> None:
    """A ping inside a fragmented message gets its pong before the message is finished."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"first half, ", fin=False))
    client.send(frame(PING, b"are you there"))
    pong = client.recv_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"are you there")
    client.send(frame(CONTINUATION, b"second half"))
    assert client.recv_message() == (TEXT, b"first half, second half")


@pytest.mark.parametrize("size", [0, 1, 125])
def test_ping_gets_pong_with_same_payload(
    raw_clients: RawClients, echo_server: LiveServer, size: int
) -> None:
    """A ping of up to 125 bytes is answered by a pong carrying the same bytes."""
    client = raw_clients(echo_server)
    payload = bytes(range(size))
    client.send(frame(PING, payload))
    pong = client.recv_frame()
    assert (pong.opcode, pong.payload) == (PONG, payload)


def test_unsolicited_pong_is_ignored(raw_clients: RawClients, echo_server: LiveServer) -> None:
    """A pong nobody asked for changes nothing: the next message still echoes."""
    client = raw_clients(echo_server)
    client.send(frame(PONG, b"unsolicited"))
    client.send(frame(TEXT, b"after the pong"))
    assert client.recv_message() == (TEXT, b"after the pong")


PROTOCOL_ERRORS = {
    "unmasked": frame(TEXT, b"hi", mask=False),
    "rsv1": frame(TEXT, b"hi", rsv=4),
    "rsv2": frame(TEXT, b"hi", rsv=2),
    "rsv3": frame(BINARY, b"hi", rsv=1),
    "opcode-3": frame(3, b"hi"),
    "opcode-7": frame(7, b"hi"),
    "opcode-11": frame(0xB, b"hi"),
    "opcode-15": frame(0xF, b"hi"),
    "fragmented-ping": frame(PING, b"hi", fin=False),
    "fragmented-close": frame(CLOSE, close_payload(1000), fin=False),
    "ping-126-bytes": frame(PING, b"p" * 126),
    "pong-126-bytes": frame(PONG, b"p" * 126),
    "continuation-without-start": frame(CONTINUATION, b"hi"),
    "data-inside-fragmented": frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),
    "binary-inside-fragmented": frame(BINARY, b"a", fin=False) + frame(BINARY, b"b"),
    "one-byte-close": frame(CLOSE, b"\x03"),
    **{
        f"close-code-{code}": frame(CLOSE, close_payload(code))
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
    },
}


@pytest.mark.parametrize("wire", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
def test_protocol_error_closes_with_1002(
    raw_clients: RawClients, echo_server: LiveServer, wire: bytes
) -> None:
    """A protocol violation is answered with a close frame carrying 1002, then TCP ends."""
    code, _ = closes_with(raw_clients, echo_server, wire)
    assert code == 1002


INVALID_UTF8 = {
    "lone-continuation-byte": [frame(TEXT, b"\x80")],
    "invalid-start-byte": [frame(TEXT, b"ok \xff")],
    "surrogate": [frame(TEXT, b"\xed\xa0\x80")],
    "overlong": [frame(TEXT, b"\xc0\xaf")],
    "split-across-fragments": [
        frame(TEXT, b"abc\xe2", fin=False),
        frame(CONTINUATION, b"\x28\xa1"),
    ],
    "truncated-at-the-last-byte": [frame(TEXT, b"valid until the end \xe2\x82")],
    "truncated-in-last-fragment": [
        frame(TEXT, b"valid ", fin=False),
        frame(CONTINUATION, b"\xf0\x9f\x8e"),
    ],
    "close-reason": [frame(CLOSE, close_payload(1000, b"bad \xff reason"))],
}


@pytest.mark.parametrize("wire", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_invalid_utf8_closes_with_1007(
    raw_clients: RawClients, echo_server: LiveServer, wire: list[bytes]
) -> None:
    """Text (or a close reason) that is not valid UTF-8 ends the connection with 1007."""
    code, _ = closes_with(raw_clients, echo_server, *wire)
    assert code == 1007


# Every kind of error above, and a message over the size limit, after a valid message.
ERRORS_AFTER_A_MESSAGE = {
    **{name: ([wire], 1002) for name, wire in PROTOCOL_ERRORS.items()},
    **{name: (wires, 1007) for name, wires in INVALID_UTF8.items()},
    "too-big": ([frame(BINARY, b"x" * (1024 * 1024 + 1))], 1009),
}


@pytest.mark.parametrize(
    ("wire", "expected"), ERRORS_AFTER_A_MESSAGE.values(), ids=ERRORS_AFTER_A_MESSAGE.keys()
)
def test_message_before_an_error_is_echoed_first(
    raw_clients: RawClients, echo_server: LiveServer, wire: list[bytes], expected: int
) -> None:
    """Valid messages that arrive in the same write as an error are echoed before the close."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"first") + frame(BINARY, b"second") + b"".join(wire))
    assert client.recv_message() == (TEXT, b"first")
    assert client.recv_message() == (BINARY, b"second")
    assert client.expect_close().close_code == expected


# Text that is not UTF-8, each kind; and what may follow it in the same write, none of which
# is answered: the bad text came first.
BAD_TEXT = {
    **{name: wires for name, wires in INVALID_UTF8.items() if name != "close-reason"},
    "bad-first-fragment": [frame(TEXT, b"\xff", fin=False)],
}
AFTER_BAD_TEXT = {
    "then-close": frame(CLOSE, close_payload(4000)),
    "then-rsv1": frame(TEXT, b"x", rsv=4),
    "then-too-big": frame(BINARY, b"x" * (1024 * 1024 + 1)),
}


@pytest.mark.parametrize("after", AFTER_BAD_TEXT.values(), ids=AFTER_BAD_TEXT.keys())
@pytest.mark.parametrize("wire", BAD_TEXT.values(), ids=BAD_TEXT.keys())
def test_bad_text_fails_the_connection_before_what_follows(
    raw_clients: RawClients, echo_server: LiveServer, wire: list[bytes], after: bytes
) -> None:
    """Text that is not UTF-8 ends the connection with 1007 though the client's close, or
    another error, follows it in the same write: the first error is the one reported. The
    message and the ping before it are answered, and nothing follows the close frame."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"first") + frame(PING, b"are you there") + b"".join(wire) + after)
    answered = []
    while (received := client.recv_frame()).opcode != CLOSE:
        answered.append((received.opcode, received.payload))
    assert received.close_code == 1007
    assert sorted(answered) == [(TEXT, b"first"), (PONG, b"are you there")]
    client.sock.shutdown(socket.SHUT_WR)
    client.expect_eof()


def test_bad_utf8_fails_in_the_first_fragment(
    raw_clients: RawClients, echo_server: LiveServer
) -> None:
    """Invalid UTF-8 ends the connection with 1007 as soon as it arrives, though the message
    has not ended (RFC 6455 section 8.1)."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"fine so far, then \xff", fin=False))
    assert client.expect_close().close_code == 1007


@pytest.mark.parametrize(
    "message",
    [
        frame(TEXT, b"fine so far, then \xff" + b"." * 40_000),
        frame(TEXT, b"a" * 20, fin=False) + frame(CONTINUATION, b"bc\xe2\x28" + b"." * 40_000),
    ],
    ids=["one-frame", "continuation"],
)
def test_bad_utf8_fails_before_the_frame_is_whole(
    raw_clients: RawClients, echo_server: LiveServer, message: bytes
) -> None:
    """Invalid UTF-8 ends the connection with 1007 as soon as it arrives, though the frame it
    is in has not: the rest of the frame is never sent."""
    client = raw_clients(echo_server)
    client.send(message[:-30_000])
    assert client.expect_close().close_code == 1007


def test_fragment_ending_inside_a_character_is_not_an_error(
    raw_clients: RawClients, echo_server: LiveServer
) -> None:
    """A fragment may end in the middle of a character that the next fragment completes."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"price: \xe2\x82", fin=False))
    time.sleep(0.2)  # the first fragment alone reaches the server
    client.send(frame(CONTINUATION, b"\xac"))
    assert client.recv_message() == (TEXT, "price: €".encode())


@pytest.mark.parametrize(
    ("sent", "answered"),
    [(close_payload(1000), 1000), (close_payload(4000, b"done"), 4000), (b"", 1000)],
    ids=["1000", "4000-reason", "no-code"],
)
def test_close_between_fragments_is_answered(
    raw_clients: RawClients, echo_server: LiveServer, sent: bytes, answered: int
) -> None:
    """A close that arrives inside a fragmented message is a close like any other: control
    frames may come between fragments (RFC 6455 section 5.4). The unfinished message is
    dropped."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"half a message", fin=False) + frame(CLOSE, sent))
    closed = client.expect_close(reply=False)
    assert (closed.close_code, closed.close_reason) == (answered, sent[2:])


def test_client_can_answer_the_close_of_a_failed_connection(
    raw_clients: RawClients, echo_server: LiveServer
) -> None:
    """After its 1002 the server reads on until the client has answered, so the client's close
    is not met with a reset, and TCP then ends cleanly."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"bad", rsv=4))
    while (received := client.recv_frame()).opcode != CLOSE:
        pass
    assert received.close_code == 1002
    client.send(frame(CLOSE, close_payload(1002)))
    assert client.sock.recv(65536) == b""


# An error, each kind, followed in the same write by more than the socket buffers hold.
ERRORS_WHILE_SENDING = {
    "1002-rsv1": (frame(TEXT, b"bad", rsv=4), 1002),
    "1007-bad-text": (frame(TEXT, b"\xff"), 1007),
    "1009-too-big": (frame(BINARY, b"x" * (1024 * 1024 + 1)), 1009),
}


@pytest.mark.parametrize(
    ("wire", "expected"), ERRORS_WHILE_SENDING.values(), ids=ERRORS_WHILE_SENDING.keys()
)
def test_failed_connection_ends_cleanly_while_the_client_still_sends(
    raw_clients: RawClients, echo_server: LiveServer, wire: bytes, expected: int
) -> None:
    """After the close frame of an error the server reads and drops what the client is still
    sending, until the client closes: a socket closed with those bytes unread is answered with
    a reset, which can destroy the close frame before the client has read it."""
    client = raw_clients(echo_server)
    client.send(wire + frame(BINARY, b"y" * 1024 * 1024) * 4)
    while (received := client.recv_frame()).opcode != CLOSE:
        pass
    assert received.close_code == expected
    client.send(frame(CLOSE, close_payload(expected)))
    client.sock.shutdown(socket.SHUT_WR)
    assert client.sock.recv(65536) == b""


def test_message_sent_with_the_handshake_is_echoed(echo_server: LiveServer) -> None:
    """A first message written together with the handshake, before the 101 came back, is
    echoed: nothing the client sent is lost."""
    with RawClient(HOST, echo_server.port) as client:
        client.send(
            handshake_request(f"{HOST}:{echo_server.port}") + frame(TEXT, b"eager first message")
        )
        assert client.read_response().status == 101
        assert client.recv_message() == (TEXT, b"eager first message")


@pytest.mark.parametrize(
    ("sent", "answered"),
    [
        (close_payload(1000, b"bye"), 1000),
        (close_payload(1001), 1001),
        (close_payload(3000), 3000),
        (close_payload(4999, "é".encode()), 4999),
        (b"", 1000),
    ],
    ids=["1000-reason", "1001", "3000", "4999-reason", "no-code"],
)
def test_client_close_is_answered(
    raw_clients: RawClients, echo_server: LiveServer, sent: bytes, answered: int
) -> None:
    """A valid close is answered by a close echoing its code (1000 without one), then TCP ends."""
    code, _ = closes_with(raw_clients, echo_server, frame(CLOSE, sent), reply=False)
    assert code == answered


def test_no_data_after_the_servers_close(raw_clients: RawClients, echo_server: LiveServer) -> None:
    """After its close frame the server sends nothing, though messages followed the close."""
    client = raw_clients(echo_server)
    client.send(frame(TEXT, b"before") + frame(CLOSE, close_payload(1000)) + frame(TEXT, b"after"))
    # RFC 6455 lets the server answer the close before echoing "before"; it may not echo "after".
    data_before_close = []
    while (received := client.recv_frame()).opcode != CLOSE:
        data_before_close.append(received.payload)
    assert data_before_close in ([], [b"before"])
    assert received.close_code == 1000
    client.expect_eof()


def test_limit_counts_the_whole_message(
    raw_clients: RawClients, live_servers: ServerFactory, server_kind: str
) -> None:
    """Fragments each under ECHO_MAX_MESSAGE_SIZE but together over it end with 1009."""
    server = live_servers(server_kind, ECHO_MAX_MESSAGE_SIZE="1000")
    client = raw_clients(server)
    client.send(frame(BINARY, b"x" * 600, fin=False))
    client.send(frame(CONTINUATION, b"y" * 401))
    assert client.expect_close().close_code == 1009


# Opening handshake: RFC 6455 section 4.


def handshake_status(raw_clients: RawClients, server: LiveServer, **options: object) -> int:
    client = raw_clients(server, handshake=False)
    return client.handshake(**options).status  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-WebSocket-Key": ""},
        {"Sec-WebSocket-Key": "dG9vIHNob3J0"},
        {"Sec-WebSocket-Key": "not base64 at all!!!!!!!"},
        {"Upgrade": ""},
        {"Upgrade": "h2c"},
        {"Connection": ""},
        {"Connection": "keep-alive"},
        {"Sec-WebSocket-Version": ""},
    ],
    ids=[
        "no-key",
        "short-key",
        "garbled-key",
        "no-upgrade",
        "other-upgrade",
        "no-connection",
        "connection-without-upgrade",
        "no-version",
    ],
)
def test_malformed_handshake_gets_400(
    raw_clients: RawClients, echo_server: LiveServer, headers: dict[str, str]
) -> None:
    """A handshake with a missing or malformed required field is refused with 400."""
    status = handshake_status(raw_clients, echo_server, headers=headers)
    assert status == 400


@pytest.mark.parametrize("version", ["8", "12", "14", "0"])
def test_unsupported_version_gets_426(
    raw_clients: RawClients, echo_server: LiveServer, version: str
) -> None:
    """A version other than 13 gets 426 and ``Sec-WebSocket-Version: 13``."""
    client = raw_clients(echo_server, handshake=False)
    response = client.handshake(headers={"Sec-WebSocket-Version": version})
    assert response.status == 426
    assert response.header("Sec-WebSocket-Version") == "13"


def test_header_tokens_are_case_insensitive(
    raw_clients: RawClients, echo_server: LiveServer
) -> None:
    """``Upgrade: WebSocket`` and ``Connection: keep-alive, UPGRADE`` are a valid handshake."""
    client = raw_clients(echo_server, handshake=False)
    response = client.handshake(
        headers={"upgrade": "WebSocket", "connection": "keep-alive, UPGRADE"}
    )
    assert response.status == 101
    assert response.header("Sec-WebSocket-Protocol") == "echo"


def test_unknown_path_gets_403(raw_clients: RawClients, echo_server: LiveServer) -> None:
    """A WebSocket handshake for a path with no route gets 403, not 500 and not a hang."""
    status = handshake_status(raw_clients, echo_server, path="/no/such/socket")
    assert status == 403


def seconds_until_closed(sock: socket.socket, limit: float, trickle: bool = False) -> float:
    """How long the server takes to end a connection; optionally keep dribbling bytes at it."""
    started = time.monotonic()
    sock.settimeout(0.25)
    while time.monotonic() - started < bound(limit):
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            if trickle:
                try:
                    sock.send(b"X")
                except OSError:
                    return time.monotonic() - started
        except ConnectionResetError:
            return time.monotonic() - started
    raise AssertionError(f"the server kept the connection open for {limit}s")


def test_silent_connection_closed_after_handshake_timeout(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """A TCP connection that sends nothing is closed after ECHO_HANDSHAKE_TIMEOUT."""
    server = live_servers(server_kind, ECHO_HANDSHAKE_TIMEOUT="1")
    with socket.create_connection((HOST, server.port)) as sock:
        assert 0.8 < seconds_until_closed(sock, limit=5) < bound(3)


def test_trickling_handshake_closed_after_timeout(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """A handshake trickled a byte at a time is closed at the deadline, not kept alive."""
    server = live_servers(server_kind, ECHO_HANDSHAKE_TIMEOUT="1")
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nX-Trickle: ")
        assert 0.8 < seconds_until_closed(sock, limit=5, trickle=True) < bound(3)


def test_default_handshake_timeout_is_five_seconds(echo_server: LiveServer) -> None:
    """With default settings a silent TCP connection is closed after about five seconds."""
    with socket.create_connection((HOST, echo_server.port)) as sock:
        assert 4.5 < seconds_until_closed(sock, limit=10) < bound(7.5)


def test_completed_handshake_outlives_the_deadline(
    raw_clients: RawClients, live_servers: ServerFactory, server_kind: str
) -> None:
    """A WebSocket opened in time is not cut off when the handshake deadline passes."""
    server = live_servers(server_kind, ECHO_HANDSHAKE_TIMEOUT="1")
    client = raw_clients(server)
    time.sleep(1.6)
    client.send(frame(TEXT, b"still open"))
    assert client.recv_message() == (TEXT, b"still open")


@pytest.mark.parametrize(
    "headers",
    [{"X-Long": "a" * 100_000}, {f"X-Header-{i}": "v" for i in range(600)}],
    ids=["100-KB-header-line", "600-headers"],
)
def test_oversized_handshake_is_answered_and_closed(
    raw_clients: RawClients, echo_server: LiveServer, headers: dict[str, str]
) -> None:
    """A request head too large to read gets 431 or 400, and the socket is closed at once."""
    client = raw_clients(echo_server, handshake=False, timeout=bound(3))
    response = client.handshake(headers=headers)
    assert response.status in (400, 431)
    body = client.buffer
    while chunk := client.sock.recv(65536):
        body += chunk
    assert len(body) == int(response.header("Content-Length") or 0)


def test_broken_handshake_bytes_do_not_hang(
    raw_clients: RawClients, echo_server: LiveServer
) -> None:
    """Garbage instead of an HTTP request gets an error response or a closed socket at once."""
    client = raw_clients(echo_server, handshake=False, timeout=bound(5))
    client.send(b"\x16\x03\x01\x00\xa5garbage that is not HTTP\r\n\r\n")
    with contextlib.suppress(ConnectionEnded):
        assert client.read_response().status == 400


# Frames in the same write as the handshake wait for its answer.

AFTER_THE_HANDSHAKE = {
    "ping": (frame(PING, b"early"), None),
    "unmasked": (frame(TEXT, b"hi", mask=False), 1002),
    "reserved-opcode": (frame(3, b"hi"), 1002),
    "bad-utf8": (frame(TEXT, b"\xff"), 1007),
    "bad-close-code": (frame(CLOSE, close_payload(999)), 1002),
}


@pytest.mark.parametrize(("wire", "code"), AFTER_THE_HANDSHAKE.values(), ids=AFTER_THE_HANDSHAKE)
def test_frames_sent_with_the_handshake_are_answered_after_it(
    raw_clients: RawClients, echo_server: LiveServer, wire: bytes, code: int | None
) -> None:
    """A control frame or an error in the same write as the handshake is answered after the
    101, as if it had come later: a pong, or the close for the error, and no ERROR logged."""
    since = echo_server.log_end()
    client = raw_clients(echo_server, handshake=False)
    client.send(handshake_request(f"{HOST}:{echo_server.port}") + wire)
    assert client.read_response().status == 101
    if code is None:
        pong = client.recv_frame()
        assert (pong.opcode, pong.payload) == (PONG, b"early")
    else:
        assert client.expect_close().close_code == code
    time.sleep(0.2)  # the server's log lines follow its answer
    assert " ERROR " not in echo_server.log()[since:]

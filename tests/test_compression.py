"""permessage-deflate (RFC 7692) on the wire, under every server: negotiation, RSV1, windows,
context takeover, and the bound on what a message may inflate to."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest

from tests.conftest import RawClients, ServerFactory
from tests.deflate import TAIL, ClientDeflate, negotiated
from tests.live import LiveServer, connect_echo, rss_bytes
from tests.rawws import BINARY, CLOSE, CONTINUATION, PING, TEXT, RawClient, frame
from tests.timing import bound

pytestmark = pytest.mark.live

MIB = 1024 * 1024
EXTENSIONS = "Sec-WebSocket-Extensions"


def open_with(server: LiveServer, raw_clients: RawClients, offer: str) -> tuple[RawClient, str]:
    """A connection whose handshake offers ``offer``; the server's extension answer."""
    client = raw_clients(server, handshake=False)
    response = client.handshake(headers={EXTENSIONS: offer} if offer else {})
    assert response.status == 101
    return client, response.header(EXTENSIONS) or ""


def recv_compressed(client: RawClient) -> tuple[int, bool, bytes]:
    """The next data message: its opcode, whether it was compressed (RSV1), its payload."""
    opcode, compressed, parts = None, False, []
    while True:
        received = client.recv_frame()
        if received.opcode >= CLOSE:
            assert received.opcode != CLOSE, f"closed with {received.close_code}"
            continue
        if opcode is None:
            opcode, compressed = received.opcode, bool(received.rsv & 4)
        parts.append(received.payload)
        if received.fin:
            return opcode, compressed, b"".join(parts)


# Negotiation.

OFFERS = {
    "bare": ("permessage-deflate", {}),
    "client-window-any": (
        "permessage-deflate; client_max_window_bits",
        {"client_max_window_bits": "12"},
    ),
    "client-window-10": (
        "permessage-deflate; client_max_window_bits=10",
        {"client_max_window_bits": "10"},
    ),
    "server-window-10": (
        "permessage-deflate; server_max_window_bits=10",
        {"server_max_window_bits": "10"},
    ),
    "server-no-takeover": (
        "permessage-deflate; server_no_context_takeover",
        {"server_no_context_takeover": None},
    ),
    "client-no-takeover": ("permessage-deflate; client_no_context_takeover", {}),
    "server-window-quoted": (
        'permessage-deflate; server_max_window_bits="10"',
        {"server_max_window_bits": "10"},
    ),
    "spaces-around-equals": (
        "permessage-deflate; server_max_window_bits = 10",
        {"server_max_window_bits": "10"},
    ),
    "second-offer-after-a-bad-one": (
        "permessage-deflate; server_max_window_bits=8, "
        "permessage-deflate; server_max_window_bits=11",
        {"server_max_window_bits": "11"},
    ),
}


@pytest.mark.parametrize(("offer", "expected"), OFFERS.values(), ids=OFFERS.keys())
def test_offer_is_accepted_within_its_terms(
    echo_server: LiveServer, raw_clients: RawClients, offer: str, expected: dict[str, str]
) -> None:
    """An offer is accepted with every parameter it asks for, and windows within what it
    allows (the server's own choice where it lets the server choose)."""
    _, answer = open_with(echo_server, raw_clients, offer)
    response = negotiated(answer)
    assert response is not None, f"{offer!r} was declined"
    for name, value in expected.items():
        assert name in response, answer
        if name == "client_max_window_bits":
            assert response[name] is not None
            assert int(response[name]) <= int(value or 15), answer
        else:
            assert response[name] == value, answer
    for name in ("server_max_window_bits", "client_max_window_bits"):
        if response.get(name) is not None:
            assert 9 <= int(response[name] or 0) <= 15, answer


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; unknown_parameter",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        # RFC 7692 section 7.1.2: a decimal integer without leading zeros.
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; client_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=+10",
        "permessage-deflate; client_max_window_bits=+10",
        'permessage-deflate; server_max_window_bits=" 10"',
        'permessage-deflate; client_max_window_bits="10 "',
        "permessage-deflate; server_max_window_bits=1_0",
        "permessage-deflate;;;",
        "x-webkit-deflate-frame",
        "permessage-bzip2",
    ],
)
def test_unacceptable_offer_is_declined_not_refused(
    echo_server: LiveServer, raw_clients: RawClients, offer: str
) -> None:
    """An offer the server cannot accept is declined, and the connection goes on without
    compression: the handshake never fails over it."""
    client, answer = open_with(echo_server, raw_clients, offer)
    assert answer == ""
    client.send(frame(TEXT, b"plain"))
    assert recv_compressed(client) == (TEXT, False, b"plain")


def test_client_window_of_8_never_fails_the_handshake(
    echo_server: LiveServer, raw_clients: RawClients
) -> None:
    """RFC 7692 allows a client window of 8 bits, which zlib cannot compress with: daphne
    (autobahn) declines such an offer, uvicorn (websockets) accepts it as offered."""
    _, answer = open_with(echo_server, raw_clients, "permessage-deflate; client_max_window_bits=8")
    response = negotiated(answer)
    assert response is None or response.get("client_max_window_bits") == "8"


def test_compression_off_negotiates_nothing(
    live_servers: ServerFactory, server_kind: str, raw_clients: RawClients
) -> None:
    server = live_servers(server_kind, ECHO_COMPRESSION="off")
    _, answer = open_with(server, raw_clients, "permessage-deflate; client_max_window_bits")
    assert answer == ""


# Echo semantics with compression on.

TAKEOVER = {
    "takeover": "",
    "server-no-takeover": "; server_no_context_takeover",
    "client-no-takeover": "; client_no_context_takeover",
    "no-takeover": "; server_no_context_takeover; client_no_context_takeover",
}


@pytest.mark.parametrize("takeover", TAKEOVER.values(), ids=TAKEOVER.keys())
@pytest.mark.parametrize("bits", range(9, 16))
def test_compressed_messages_echo_intact(
    echo_server: LiveServer, raw_clients: RawClients, bits: int, takeover: str
) -> None:
    """Compressed messages, whole and fragmented, text and binary, come back intact with every
    window size and context-takeover combination, in both directions."""
    offer = (
        f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
        + takeover
    )
    client, answer = open_with(echo_server, raw_clients, offer)
    deflate = ClientDeflate.agreed(negotiated(answer), client_window=bits)
    record = json.dumps({"name": "echo", "values": list(range(300))}).encode()
    messages = [
        (TEXT, record),
        (BINARY, bytes(range(256)) * 64),
        (TEXT, "é🎉 ".encode() * 1000),
        (TEXT, record),  # the same again: context takeover has something to refer to
        (BINARY, b""),
    ]
    for opcode, payload in messages:
        client.send(frame(opcode, deflate.compress(payload), rsv=4))
        received_opcode, compressed, data = recv_compressed(client)
        assert received_opcode == opcode
        assert (deflate.decompress(data) if compressed else data) == payload
    # One compressed message in three frames: RSV1 on the first only.
    payload = record * 20
    compressed = deflate.compress(payload)
    thirds = [compressed[: len(compressed) // 3], compressed[len(compressed) // 3 : -5]]
    client.send(frame(TEXT, thirds[0], rsv=4, fin=False))
    client.send(frame(PING, b"between fragments"))
    client.send(frame(CONTINUATION, thirds[1], fin=False) + frame(CONTINUATION, compressed[-5:]))
    received_opcode, was_compressed, data = recv_compressed(client)
    assert received_opcode == TEXT
    assert (deflate.decompress(data) if was_compressed else data) == payload


def test_uncompressed_message_on_a_compressed_connection_echoes(
    echo_server: LiveServer, raw_clients: RawClients
) -> None:
    """RSV1 is per message: a message sent plain on a compressing connection is fine."""
    client, answer = open_with(echo_server, raw_clients, "permessage-deflate")
    deflate = ClientDeflate.agreed(negotiated(answer))
    client.send(frame(BINARY, b"not compressed"))
    opcode, compressed, data = recv_compressed(client)
    assert (opcode, deflate.decompress(data) if compressed else data) == (
        BINARY,
        b"not compressed",
    )


@pytest.mark.parametrize(
    "wire",
    [
        frame(TEXT, b"x", fin=False) + frame(CONTINUATION, b"y", rsv=4),
        frame(PING, b"", rsv=4),
    ],
    ids=["rsv1-on-continuation", "rsv1-on-ping"],
)
def test_rsv1_where_rfc_7692_forbids_it_is_1002(
    echo_server: LiveServer, raw_clients: RawClients, wire: bytes
) -> None:
    client, _ = open_with(echo_server, raw_clients, "permessage-deflate")
    client.send(wire)
    assert client.expect_close().close_code == 1002


def test_corrupt_compressed_data_is_1007(echo_server: LiveServer, raw_clients: RawClients) -> None:
    client, _ = open_with(echo_server, raw_clients, "permessage-deflate")
    client.send(frame(BINARY, b"\xff\xff\xff\xff not deflate", rsv=4))
    assert client.expect_close().close_code in (1002, 1007)


# The bound: ECHO_MAX_MESSAGE_SIZE counts the inflated message.

BOMB_SIZE = 64 * MIB
LIMIT = 65536


@pytest.mark.parametrize("overshoot", [0, 1, 2, 100])
def test_limit_counts_inflated_bytes_exactly(
    live_servers: ServerFactory, server_kind: str, raw_clients: RawClients, overshoot: int
) -> None:
    """A message that inflates to exactly ECHO_MAX_MESSAGE_SIZE echoes whole; one that inflates
    to a byte more ends with 1009, never with a message cut short."""
    server = live_servers(server_kind, ECHO_MAX_MESSAGE_SIZE=str(LIMIT))
    client, answer = open_with(server, raw_clients, "permessage-deflate")
    deflate = ClientDeflate.agreed(negotiated(answer))
    payload = b"x" * (LIMIT + overshoot)
    client.send(frame(BINARY, deflate.compress(payload), rsv=4))
    if overshoot:
        assert client.expect_close().close_code == 1009
    else:
        opcode, compressed, data = recv_compressed(client)
        assert (opcode, deflate.decompress(data) if compressed else data) == (BINARY, payload)


def bomb() -> bytes:
    """64 MiB of zeros, compressed as one message (about 64 KiB)."""
    compressor = zlib.compressobj(wbits=-15)
    zeros = bytes(MIB)
    compressed = b"".join(compressor.compress(zeros) for _ in range(BOMB_SIZE // MIB))
    return (compressed + compressor.flush(zlib.Z_SYNC_FLUSH))[: -len(TAIL)]


def test_message_that_inflates_past_the_limit_is_1009(
    echo_server: LiveServer, raw_clients: RawClients
) -> None:
    """64 MiB of zeros, about 64 KiB compressed, ends with 1009 and grows the server by less
    than 8 MiB."""
    payload = bomb()
    client, _ = open_with(echo_server, raw_clients, "permessage-deflate")
    before = rss_bytes(echo_server)
    client.send(frame(BINARY, payload, rsv=4))
    assert client.expect_close().close_code == 1009
    assert rss_bytes(echo_server) - before < 8 * MIB


def test_fifty_bombs_at_once_stay_bounded(
    live_servers: ServerFactory, server_kind: str, raw_clients: RawClients
) -> None:
    """50 connections sending such a message at once grow the server by less than twice the
    limit each."""
    server = live_servers(server_kind)
    payload = frame(BINARY, bomb(), rsv=4)
    clients = [open_with(server, raw_clients, "permessage-deflate")[0] for _ in range(50)]
    before = rss_bytes(server)
    for client in clients:
        client.send(payload)
    for client in clients:
        assert client.expect_close().close_code == 1009
    assert rss_bytes(server) - before < 50 * 2 * MIB


# A real client that compresses.


async def test_websockets_client_compresses(echo_server: LiveServer) -> None:
    """The websockets client, which offers permessage-deflate by default, gets it, and a large
    compressible message echoes intact."""
    async with connect_echo(f"{echo_server.ws_url}/echo", compression="deflate") as ws:
        assert (ws.response.headers.get(EXTENSIONS) or "").startswith("permessage-deflate")
        message = json.dumps([{"id": n, "name": "echo", "ok": True} for n in range(20_000)])
        await ws.send(message)
        assert await asyncio.wait_for(ws.recv(), timeout=bound(10)) == message

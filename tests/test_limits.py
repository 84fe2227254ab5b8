"""Bounded resources: keepalive, slow readers, the connection cap and connection churn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServerFactory
from tests.deflate import ClientDeflate
from tests.live import (
    HOST,
    LiveServer,
    connect_echo,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    start_server,
)
from tests.rawws import BINARY, CLOSE, PING, TEXT, RawClient, frame
from tests.timing import bound

pytestmark = pytest.mark.live

MIB = 1024 * 1024


def health(server: LiveServer) -> dict[str, object]:
    with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=bound(10)) as response:  # noqa: S310
        assert response.headers["Content-Type"] == "application/json"
        return json.load(response)


def wait_for_connections(server: LiveServer, expected: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + bound(timeout)
    while (count := health(server)["connections"]) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return count  # type: ignore[return-value]


# Keepalive.


def test_unanswered_pings_drop_the_client(live_servers: ServerFactory, server_kind: str) -> None:
    """A client that never answers the server's pings is dropped after interval + timeout,
    without a close frame: it is not listening."""
    server = live_servers(server_kind, ECHO_PING_INTERVAL="1", ECHO_PING_TIMEOUT="1")
    with RawClient.open(HOST, server.port) as client:
        started = time.monotonic()
        ping = client.recv_frame()
        assert ping.opcode == PING
        assert time.monotonic() - started < bound(3)
        assert CLOSE not in [received.opcode for received in client.read_until_eof()]
        assert time.monotonic() - started < bound(6)


async def test_answered_pings_keep_the_client(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """A client that answers pings stays connected over several ping intervals."""
    server = live_servers(server_kind, ECHO_PING_INTERVAL="1", ECHO_PING_TIMEOUT="1")
    async with connect_echo(f"{server.ws_url}/echo", ping_interval=None) as ws:
        await asyncio.sleep(3.5)
        await ws.send("still connected")
        assert await asyncio.wait_for(ws.recv(), timeout=bound(5)) == "still connected"


# Slow readers.

FLOOD_BYTES = 256 * MIB
FLOOD_FRAME = 64 * 1024
RSS_HEADROOM = 64 * MIB
STALL_SECONDS = 3


class Flood:
    """Pushes binary messages without ever reading, until 256 MiB are out or a send stalls;
    ``compressed``: with permessage-deflate negotiated, every message sent compressed (random
    bytes, so the echoes are as large as without it)."""

    def __init__(self, server: LiveServer, compressed: bool = False) -> None:
        self.server = server
        self.compressed = compressed
        self.sent = 0
        self.stalled = threading.Event()
        self.finished = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        if self.compressed:
            # Deflated from a fresh stream, the same bytes are valid again as the next message.
            deflated = ClientDeflate().compress(os.urandom(FLOOD_FRAME))
            message = frame(BINARY, deflated, rsv=4)
            offer = {"headers": {"Sec-WebSocket-Extensions": "permessage-deflate"}}
        else:
            message, offer = frame(BINARY, bytes(FLOOD_FRAME)), {}
        with RawClient.open(HOST, self.server.port, **offer) as client:
            client.sock.settimeout(STALL_SECONDS)
            while self.sent < FLOOD_BYTES and not self.release.is_set():
                try:
                    client.send(message)
                except TimeoutError:
                    self.stalled.set()
                    break
                self.sent += FLOOD_FRAME
            self.finished.set()
            self.release.wait(30)
            client.reset()


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
async def test_slow_reader_is_paused_not_buffered(
    live_servers: ServerFactory, server_kind: str, compressed: bool
) -> None:
    """A client pushing 256 MiB without reading leaves RSS bounded; others still get echoes.
    With permessage-deflate the bound is the same."""
    server = live_servers(server_kind)
    async with connect_echo(f"{server.ws_url}/echo") as ws:
        await ws.send(bytes(FLOOD_FRAME))
        await ws.recv()
    idle_rss = peak_rss = rss_bytes(server)
    flood = Flood(server, compressed)
    flood.thread.start()
    try:
        async with connect_echo(f"{server.ws_url}/echo") as ws:
            deadline = time.monotonic() + bound(60)
            while not flood.finished.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                await ws.send("are you still there?")
                assert (
                    await asyncio.wait_for(ws.recv(), timeout=bound(2)) == "are you still there?"
                )
                assert time.monotonic() - started < bound(1), "the flood starved another client"
                peak_rss = max(peak_rss, rss_bytes(server))
                await asyncio.sleep(0.05)
            peak_rss = max(peak_rss, rss_bytes(server))
    finally:
        flood.release.set()
        flood.thread.join(timeout=bound(40))
    assert flood.stalled.is_set(), f"the server read {flood.sent / MIB:.0f} MiB and never paused"
    assert peak_rss - idle_rss <= RSS_HEADROOM, (
        f"RSS grew by {(peak_rss - idle_rss) / MIB:.1f} MiB while buffering for a slow reader"
    )


# Connection cap.


async def test_connection_cap_closes_newcomers_with_1013(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """Over ECHO_MAX_CONNECTIONS a new client is closed with 1013; existing ones carry on."""
    server = live_servers(server_kind, ECHO_MAX_CONNECTIONS="3")
    url = f"{server.ws_url}/echo"
    async with connect_echo(url) as first, connect_echo(url) as second, connect_echo(url) as third:
        async with connect_echo(url) as over_the_cap:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(over_the_cap.recv(), timeout=bound(5))
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        for ws in (first, second, third):
            await ws.send("unaffected")
            assert await asyncio.wait_for(ws.recv(), timeout=bound(5)) == "unaffected"
        assert health(server)["connections"] == 3
    assert wait_for_connections(server, 0) == 0
    async with connect_echo(url) as after:
        await after.send("room again")
        assert await asyncio.wait_for(after.recv(), timeout=bound(5)) == "room again"


def test_healthz_counts_open_connections(echo_server: LiveServer) -> None:
    """/healthz reports the open WebSockets of the process and its cap, as JSON."""
    assert wait_for_connections(echo_server, 0) == 0
    with RawClient.open(HOST, echo_server.port), RawClient.open(HOST, echo_server.port):
        assert wait_for_connections(echo_server, 2) == 2
        report = health(echo_server)
        assert report["status"] == "ok"
        assert isinstance(report["max_connections"], int)
    assert wait_for_connections(echo_server, 0) == 0


# Churn.

CHURN_CONNECTIONS = 2000
# A few connections first, so one-off start-up allocations do not count as growth.
WARM_UP_CONNECTIONS = 200


def reset_mid_message(server: LiveServer, count: int) -> None:
    """Opens ``count`` connections, each sending half a message, then resetting TCP."""
    half_message = frame(TEXT, b"x" * 1000)[:600]
    for _ in range(count):
        client = RawClient.open(HOST, server.port)
        client.send(half_message)
        client.reset()


def test_churn_leaves_nothing_behind(live_servers: ServerFactory, server_kind: str) -> None:
    """After 2,000 connections reset mid-message, count is 0, RSS is back, the log is clean."""
    server = live_servers(server_kind, LOG_LEVEL="WARNING")
    reset_mid_message(server, WARM_UP_CONNECTIONS)
    assert wait_for_connections(server, 0) == 0
    rss_before = rss_bytes(server)
    reset_mid_message(server, CHURN_CONNECTIONS)
    assert wait_for_connections(server, 0) == 0
    time.sleep(1)
    rss_after = rss_bytes(server)
    assert rss_after <= rss_before * 1.10, (
        f"RSS went from {rss_before / MIB:.1f} MiB to {rss_after / MIB:.1f} MiB"
    )
    log = server.log()
    for trouble in ("Traceback", "Task was destroyed", "Exception inside application", "ERROR"):
        assert trouble not in log, f"the server log shows {trouble!r}:\n{log[-3000:]}"


# What a client can make the server hold without reading, in ways other than messages.


def test_pings_without_reading_stay_within_the_memory_bound(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """A client that floods pings and never reads the pongs is paused like any slow reader:
    the server's peak memory grows by less than 16 times ECHO_MAX_MESSAGE_SIZE."""
    server = live_servers(server_kind)
    client = RawClient.open(HOST, server.port)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.sock.settimeout(0.5)
    flood = frame(PING, b"p" * 125) * 2000
    before = reset_peak_rss(server)
    deadline = time.monotonic() + bound(3)
    try:
        while time.monotonic() < deadline:  # about 100 MB at most, in 3 s
            client.sock.sendall(flood)
    except TimeoutError:
        pass  # the server stopped reading: the flood is held back in TCP, not in the server
    finally:
        client.close()
    assert peak_rss_bytes(server) - before < 16 * MIB


def test_one_byte_fragments_stay_within_the_memory_bound(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """A message sent as 200,000 one-byte fragments echoes whole, and the server's peak memory
    grows by less than 16 times ECHO_MAX_MESSAGE_SIZE (kept as a list of fragments, it took
    over 130 bytes for each)."""
    server = live_servers(server_kind)
    client = RawClient(HOST, server.port, bound(60))
    assert client.handshake().status == 101
    count = 200_000
    message = frame(BINARY, b"x", fin=False) + frame(0, b"x", fin=False) * (count - 2)
    before = reset_peak_rss(server)
    client.send(message + frame(0, b"x"))
    assert client.recv_message() == (BINARY, b"x" * count)
    assert peak_rss_bytes(server) - before < 16 * MIB
    client.close()


def test_shutdown_ends_a_client_that_does_not_read(
    server_kind: str, tmp_path_factory: pytest.TempPathFactory, static_root: Path
) -> None:
    """SIGTERM ends a connection whose client reads nothing within the close timeout, and the
    process exits, the connection logged as closed: it does not wait for the client to read."""
    server = start_server(
        server_kind,
        tmp_path_factory.mktemp("shutdown-logs"),
        {"DJANGO_STATIC_ROOT": str(static_root)},
    )
    client = RawClient.open(HOST, server.port)
    try:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sock.settimeout(0.5)
        chunk = frame(BINARY, os.urandom(60_000))
        with contextlib.suppress(TimeoutError):
            for _ in range(1000):  # 60 MB at most: the server stops reading long before
                client.sock.sendall(chunk)
        started = time.monotonic()
        server.terminate()
        server.wait()
        assert time.monotonic() - started < bound(12)
        # Closed once: 1001 where the application heard the close sent, 1006 where it was
        # ended at the deadline with its client still silent.
        assert len(re.findall(r"event=closed client=\S+ code=100[16] ", server.log())) == 1
    finally:
        client.close()
        server.stop()

"""The benchmark's load generator: one process driving many WebSocket connections.

It speaks RFC 6455 directly on asyncio transports (frames built and parsed here) because a full
client library would spend more CPU per message than the servers under test, and the client
must never be the bottleneck. Every echo is compared byte for byte with what was sent; any
difference, close or failed handshake is counted as an error. The result is one JSON object on
standard output, read by ``bench/run.py``.

    python -m bench.loadgen ping-pong --url ws://127.0.0.1:8000/echo --connections 50 \\
        --size 32 --seconds 10
    python -m bench.loadgen idle --url ws://127.0.0.1:8000/echo --connections 5000 --hold 3
    python -m bench.loadgen chat --url ws://127.0.0.1:8000/ws/chat/lobby/ --connections 20 \\
        --seconds 10

``--compress`` offers permessage-deflate as browsers do (``client_max_window_bits``), requires
the server to accept it, compresses every message sent and inflates every echo; ``--json``
sends compressible JSON-like text instead of filler.

``chat`` drives a chat room (the tutorial's, ``tests/chat.py``): every connection is a member
of the room, and sends a message, waits for it to come back through the room, and sends the
next. Each member checks every message it receives against the next one due from its sender:
a receipt counts only if it is exactly that message, in that sender's order. Once the time is
up, every message sent must reach every member within a bounded wait; each receipt missing
then is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import struct
import sys
import time
import zlib
from collections import defaultdict
from urllib.parse import urlsplit

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
RSV1 = 0x40
OPEN_CONCURRENCY = 200
OFFER = "permessage-deflate; client_max_window_bits"
# RFC 7692 section 7.2.1: the end of a sync flush, left off the wire.
TAIL = b"\x00\x00\xff\xff"
# One record of W5's JSON-like text.
RECORD = b'{"id": 1042, "name": "echo", "tags": ["websocket", "django"], "ok": true}, '
# A chat message as a member sends it and as the room's consumer sends it on to every member
# (json.dumps of {"message": ...}): the sender's number, then its message's number.
CHAT_MESSAGE = b'{"message": "%04d:%012d"}'
CHAT_SENDER = slice(len(b'{"message": "'), len(b'{"message": "') + 4)
# Seconds a chat room has, after the last message was sent, to deliver it to every member.
CHAT_DRAIN = 10.0


def mask(payload: bytes, key: bytes) -> bytes:
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        len(payload), "little"
    )


def frame_head(opcode: int, length: int, flags: int = 0) -> bytes:
    first = 0x80 | flags | opcode
    if length < 126:
        return struct.pack("!BB", first, 0x80 | length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, 0x80 | 126, length)
    return struct.pack("!BBQ", first, 0x80 | 127, length)


def client_frame(opcode: int, payload: bytes, flags: int = 0) -> bytes:
    key = os.urandom(4)
    return frame_head(opcode, len(payload), flags) + key + mask(payload, key)


class Deflate:
    """The client's half of permessage-deflate, with the parameters the server answered."""

    def __init__(self, response: str) -> None:
        params = {}
        for part in response.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            params[name] = value
        self.client_takeover = "client_no_context_takeover" not in params
        self.server_takeover = "server_no_context_takeover" not in params
        self.client_window = int(params.get("client_max_window_bits") or 15)
        self.server_window = int(params.get("server_max_window_bits") or 15)
        self.compressor = zlib.compressobj(wbits=-self.client_window)
        self.decompressor = zlib.decompressobj(wbits=-self.server_window)

    def compress(self, payload: bytes) -> bytes:
        if not self.client_takeover:
            self.compressor = zlib.compressobj(wbits=-self.client_window)
        data = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        return data[: -len(TAIL)]

    def decompress(self, data: bytes) -> bytes:
        if not self.server_takeover:
            self.decompressor = zlib.decompressobj(wbits=-self.server_window)
        return self.decompressor.decompress(data + TAIL)


class MessageMaker:
    """Each message of one connection: a unique stamp followed by the same filler.

    Masking 64 KiB in Python for every frame would make the client, not the server, the
    bottleneck; so the filler is masked once with the connection's key, and each frame masks
    only its stamp, whose length (a multiple of 4) keeps the key aligned for the filler.
    """

    STAMP_BYTES = 20

    def __init__(self, index: int, size: int, binary: bool, json_text: bool = False) -> None:
        self.index = index
        self.opcode = BINARY if binary else TEXT
        self.key = os.urandom(4)
        filler_size = max(0, size - self.STAMP_BYTES)
        if binary:
            self.filler = os.urandom(filler_size)
        elif json_text:
            self.filler = (RECORD * (filler_size // len(RECORD) + 1))[:filler_size]
        else:
            self.filler = b"x" * filler_size
        self.masked_filler = mask(self.filler, self.key)
        self.head = frame_head(self.opcode, filler_size + self.STAMP_BYTES) + self.key

    def make(self, sequence: int, deflate: Deflate | None = None) -> tuple[bytes, bytes]:
        """The frame to send and the payload it must come back as."""
        stamp = f"{self.index:06d}:{sequence:012d}:".encode()
        if deflate is not None:
            payload = stamp + self.filler
            return client_frame(self.opcode, deflate.compress(payload), RSV1), payload
        return self.head + mask(stamp, self.key) + self.masked_filler, stamp + self.filler


class EchoConnection(asyncio.Protocol):
    """One client connection: handshake, then whole messages handed to a waiting future."""

    # The subprotocol it offers and requires the server to choose; None offers none.
    SUBPROTOCOL: str | None = "echo"

    def __init__(self, host: str, path: str, compress: bool = False) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        headers = f"Sec-WebSocket-Extensions: {OFFER}\r\n" if compress else ""
        if self.SUBPROTOCOL is not None:
            headers += f"Sec-WebSocket-Protocol: {self.SUBPROTOCOL}\r\n"
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}"
            f"\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        ).encode()
        self.compress = compress
        self.deflate: Deflate | None = None
        self.buffer = bytearray()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting: asyncio.Future[tuple[int, bytes]] | None = None
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").lower()
            del self.buffer[: end + 4]
            chosen = (
                self.SUBPROTOCOL is None or f"sec-websocket-protocol: {self.SUBPROTOCOL}" in head
            )
            if not head.startswith("http/1.1 101") or not chosen:
                self.fail(ConnectionError(f"handshake refused: {head.splitlines()[0]}"))
                return
            if self.compress:
                answer = [
                    line.split(":", 1)[1].strip()
                    for line in head.split("\r\n")
                    if line.startswith("sec-websocket-extensions:")
                ]
                if not answer or not answer[0].startswith("permessage-deflate"):
                    self.fail(ConnectionError("permessage-deflate was not negotiated"))
                    return
                self.deflate = Deflate(answer[0])
            self.upgraded = True
            self.opened.set_result(None)
        self.parse_frames()

    def parse_frames(self) -> None:
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                (length,) = struct.unpack_from("!H", self.buffer, 2)
                offset = 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                (length,) = struct.unpack_from("!Q", self.buffer, 2)
                offset = 10
            if len(self.buffer) < offset + length:
                return
            payload = bytes(self.buffer[offset : offset + length])
            del self.buffer[: offset + length]
            opcode = first & 0x0F
            if opcode == PING:
                self.transport.write(client_frame(PONG, payload))  # type: ignore[union-attr]
            elif opcode == CLOSE:
                self.fail(ConnectionError(f"server closed: {payload[:2].hex()} {payload[2:]!r}"))
            elif not first & 0x80:
                self.fail(ConnectionError("fragmented echo: not expected from these servers"))
            else:
                if first & RSV1 and self.deflate is not None:
                    payload = self.deflate.decompress(payload)
                self.message_received(opcode, payload)

    def message_received(self, opcode: int, payload: bytes) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result((opcode, payload))

    def fail(self, error: Exception) -> None:
        for future in (self.opened, self.waiting):
            if future is not None and not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"connection lost: {exc}"))

    async def echo(self, wire: bytes) -> tuple[int, bytes]:
        """Sends one ready-made frame and waits for the next message."""
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(wire)  # type: ignore[union-attr]
        return await self.waiting

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(CLOSE, struct.pack("!H", 1000)))
            self.transport.close()


class ChatMember(EchoConnection):
    """One member of a chat room: checks every message of the room it receives, and hands its
    own messages back to the waiting sender."""

    SUBPROTOCOL = None

    def __init__(self, host: str, path: str, compress: bool = False) -> None:
        super().__init__(host, path, compress)
        self.sender = 0
        # The number of the message due next from each sender.
        self.due: defaultdict[int, int] = defaultdict(int)
        self.receipts = 0
        self.wrong = 0

    def message_received(self, opcode: int, payload: bytes) -> None:
        try:
            sender = int(payload[CHAT_SENDER])
        except ValueError:
            sender = -1
        if opcode != TEXT or payload != CHAT_MESSAGE % (sender, self.due[sender]):
            self.wrong += 1
            return
        self.due[sender] += 1
        self.receipts += 1
        if sender == self.sender:
            super().message_received(opcode, payload)


async def open_connection(
    url: str, compress: bool = False, kind: type[EchoConnection] = EchoConnection
) -> EchoConnection:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(
        lambda: kind(f"{parts.hostname}:{parts.port}", parts.path or "/", compress),
        parts.hostname,
        parts.port,
    )
    await asyncio.wait_for(connection.opened, timeout=30)
    return connection


async def open_many(
    url: str, count: int, compress: bool = False, kind: type[EchoConnection] = EchoConnection
) -> tuple[list[EchoConnection], int]:
    """Opens ``count`` connections, at most OPEN_CONCURRENCY handshakes at a time."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    errors = 0

    async def one() -> EchoConnection | None:
        nonlocal errors
        async with gate:
            try:
                return await open_connection(url, compress, kind)
            except (OSError, ConnectionError, TimeoutError):
                errors += 1
                return None

    opened = await asyncio.gather(*(one() for _ in range(count)))
    return [connection for connection in opened if connection is not None], errors


async def ping_pong(args: argparse.Namespace) -> dict[str, object]:
    connections, errors = await open_many(args.url, args.connections, args.compress)
    opcode = BINARY if args.binary else TEXT
    latencies: list[float] = []
    echoes = 0
    deadline = time.perf_counter() + args.seconds

    async def drive(index: int, connection: EchoConnection) -> None:
        nonlocal echoes, errors
        maker = MessageMaker(index, args.size, args.binary, args.json)
        sequence = 0
        while time.perf_counter() < deadline:
            wire, payload = maker.make(sequence, connection.deflate)
            started = time.perf_counter()
            try:
                received = await asyncio.wait_for(connection.echo(wire), timeout=10)
            except (ConnectionError, TimeoutError):
                errors += 1
                return
            latencies.append(time.perf_counter() - started)
            if received != (opcode, payload):
                errors += 1
                return
            echoes += 1
            sequence += 1

    started = time.perf_counter()
    await asyncio.gather(*(drive(i, c) for i, c in enumerate(connections)))
    elapsed = time.perf_counter() - started
    return {
        "echoes": echoes,
        "errors": errors,
        "seconds": elapsed,
        "bytes_each_way": echoes * max(args.size, MessageMaker.STAMP_BYTES),
        **close_all(connections, latencies),
        "mean_us": statistics.fmean(latencies) * 1e6 if latencies else None,
    }


def close_all(connections: list[EchoConnection], latencies: list[float]) -> dict[str, float]:
    """Closes ``connections``; the median and 99th percentile of their round trips, in µs."""
    for connection in connections:
        connection.close()
    latencies.sort()
    return {
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
    }


async def chat(args: argparse.Namespace) -> dict[str, object]:
    opened, errors = await open_many(args.url, args.connections, kind=ChatMember)
    members: list[ChatMember] = opened  # type: ignore[assignment]
    for index, member in enumerate(members):
        member.sender = index
    latencies: list[float] = []
    sent = 0
    deadline = time.perf_counter() + args.seconds

    async def speak(member: ChatMember) -> None:
        nonlocal sent, errors
        number = 0
        while time.perf_counter() < deadline:
            wire = client_frame(TEXT, CHAT_MESSAGE % (member.sender, number))
            started = time.perf_counter()
            try:
                await asyncio.wait_for(member.echo(wire), timeout=10)
            except (ConnectionError, TimeoutError):
                errors += 1
                return
            latencies.append(time.perf_counter() - started)
            number += 1
            sent += 1

    started = time.perf_counter()
    await asyncio.gather(*(speak(member) for member in members))
    elapsed = time.perf_counter() - started
    deliveries = sum(member.receipts for member in members)
    # Every member must receive every message sent, its own included.
    drain_deadline = time.perf_counter() + CHAT_DRAIN
    while time.perf_counter() < drain_deadline:
        if all(member.receipts >= sent for member in members):
            break
        await asyncio.sleep(0.01)
    missing = sum(max(0, sent - member.receipts) for member in members)
    return {
        "deliveries": deliveries,
        "messages": sent,
        "errors": errors + missing + sum(member.wrong for member in members),
        "seconds": elapsed,
        **close_all(members, latencies),
    }


async def idle(args: argparse.Namespace) -> dict[str, object]:
    started = time.perf_counter()
    connections, errors = await open_many(args.url, args.connections, args.compress)
    open_seconds = time.perf_counter() - started
    print(json.dumps({"phase": "open", "opened": len(connections)}), flush=True)
    # Hold them until told (a line on stdin) or the hold time is up, so the server can be measured.
    await asyncio.wait_for(
        asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline), args.hold
    )
    # Check that every held connection still echoes.
    results = await asyncio.gather(
        *(c.echo(client_frame(TEXT, b"still here")) for c in connections), return_exceptions=True
    )
    errors += sum(1 for result in results if result != (TEXT, b"still here"))
    for connection in connections:
        connection.close()
    return {"opened": len(connections), "errors": errors, "open_seconds": open_seconds}


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("ping-pong", "idle", "chat"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--binary", action="store_true")
    parser.add_argument("--json", action="store_true", help="JSON-like text (compressible)")
    parser.add_argument("--compress", action="store_true", help="negotiate permessage-deflate")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--hold", type=float, default=60.0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    modes = {"ping-pong": ping_pong, "idle": idle, "chat": chat}
    result = runner(modes[args.mode](args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

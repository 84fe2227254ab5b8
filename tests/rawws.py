"""A WebSocket client at the byte level, for sending what well-behaved libraries refuse to send.

Everything a test does on the wire is spelled out here: the handshake request as bytes, frames
with any FIN/RSV/opcode/mask/length, writes split at any byte, and connections ended by a TCP
reset. Sockets are blocking with a timeout, so every wait in a test is bounded.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from dataclasses import dataclass

from tests.timing import bound

# Opcodes of RFC 6455 section 5.2.
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

DEFAULT_TIMEOUT = bound(10.0)


def handshake_request(
    host: str,
    path: str = "/echo",
    *,
    key: str | None = None,
    subprotocol: str | None = "echo",
    headers: dict[str, str] | None = None,
) -> bytes:
    """An RFC 6455 opening handshake; ``headers`` adds, replaces or (with "") drops any field."""
    fields = {
        "Host": host,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key or base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if subprotocol is not None:
        fields["Sec-WebSocket-Protocol"] = subprotocol
    for name, value in (headers or {}).items():
        for existing in [f for f in fields if f.lower() == name.lower()]:
            del fields[existing]
        if value != "":
            fields[name] = value
    lines = [f"GET {path} HTTP/1.1", *(f"{name}: {value}" for name, value in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length: int | None = None,
) -> bytes:
    """One frame; ``length`` overrides the declared payload length, ``rsv`` sets bits 1-3."""
    declared = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode])
    mask_bit = 0x80 if mask else 0
    if declared < 126:
        head += bytes([mask_bit | declared])
    elif declared < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", declared)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", declared)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


def apply_mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass(frozen=True)
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]


@dataclass(frozen=True)
class HandshakeResponse:
    status: int
    headers: dict[str, str]  # names lower-cased

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class ConnectionEnded(Exception):
    """The server closed TCP before the expected bytes arrived."""


class RawClient:
    """One TCP connection to the server, driven byte by byte."""

    def __init__(self, host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    @classmethod
    def open(cls, host: str, port: int, path: str = "/echo", **options: object) -> RawClient:
        """Connects and completes a handshake that the server must accept."""
        client = cls(host, port)
        response = client.handshake(path, **options)  # type: ignore[arg-type]
        if response.status != 101:
            client.close()
            raise AssertionError(f"expected 101, got {response.status}: {response.headers}")
        return client

    def handshake(self, path: str = "/echo", **options: object) -> HandshakeResponse:
        self.send(handshake_request(f"{self.host}:{self.port}", path, **options))  # type: ignore[arg-type]
        return self.read_response()

    def read_response(self) -> HandshakeResponse:
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return HandshakeResponse(int(status_line.split()[1]), headers)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_split(self, data: bytes, chunk: int = 1, pause: float = 0.0) -> None:
        """Writes ``data`` in pieces of ``chunk`` bytes, each its own TCP write."""
        for start in range(0, len(data), chunk):
            self.sock.sendall(data[start : start + chunk])
            if pause:
                time.sleep(pause)

    def recv_frame(self) -> Frame:
        b0, b1 = self._read_exactly(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exactly(8))
        if b1 & 0x80:
            raise AssertionError("the server sent a masked frame")
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F, self._read_exactly(length))

    def recv_message(self) -> tuple[int, bytes]:
        """The next data message, reassembled; control frames in between are skipped."""
        opcode, parts = None, []
        while True:
            received = self.recv_frame()
            if received.opcode >= CLOSE:
                if received.opcode == CLOSE:
                    raise AssertionError(f"closed with {received.close_code}")
                continue
            opcode = received.opcode if opcode is None else opcode
            parts.append(received.payload)
            if received.fin:
                return opcode, b"".join(parts)

    def expect_close(self, reply: bool = True) -> Frame:
        """Reads to the server's close frame, answers it as a client must, and expects TCP to end.

        ``reply=False`` is for a client that sent its own close first and must not send another.
        """
        while True:
            received = self.recv_frame()
            if received.opcode == CLOSE:
                break
        if reply:
            self.send(frame(CLOSE, received.payload[:2]))
        self.expect_eof()
        return received

    def expect_eof(self) -> None:
        """Nothing more may arrive: the server ends TCP (a reset counts as ending it too)."""
        try:
            extra = self.buffer or self.sock.recv(65536)
        except ConnectionResetError:
            return
        if extra:
            raise AssertionError(f"the server sent {len(extra)} bytes after its close frame")

    def read_until_eof(self) -> list[Frame]:
        """Every frame the server sends until it ends TCP (a reset counts as ending it)."""
        frames = []
        try:
            while True:
                frames.append(self.recv_frame())
        except (ConnectionEnded, ConnectionResetError):
            return frames

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Ends the connection with a TCP RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        data, _, self.buffer = self.buffer.partition(marker)
        return data

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionEnded(f"connection ended; {len(self.buffer)} bytes unread")
        self.buffer += chunk

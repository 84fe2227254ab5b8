"""The client's half of permessage-deflate (RFC 7692), for the raw client in ``tests/rawws.py``.

It compresses what a test sends and inflates what the server sends, with the window sizes and
context takeover that the handshake agreed on, so a test can build any compressed frame.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

# RFC 7692 section 7.2.1: the end of a sync flush, left off the wire.
TAIL = b"\x00\x00\xff\xff"


def negotiated(response_header: str | None) -> dict[str, str | None] | None:
    """The parameters of the server's permessage-deflate response; None if it declined."""
    if not response_header:
        return None
    name, *params = (part.strip() for part in response_header.split(";"))
    assert name == "permessage-deflate", response_header
    parsed: dict[str, str | None] = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip()] = value.strip() or None
    return parsed


@dataclass
class ClientDeflate:
    """What the client compresses with, and what it inflates the server's messages with."""

    client_window: int = 15
    server_window: int = 15
    client_takeover: bool = True
    server_takeover: bool = True
    compressor: zlib._Compress | None = field(default=None, repr=False)
    decompressor: zlib._Decompress | None = field(default=None, repr=False)

    @classmethod
    def agreed(
        cls, response: dict[str, str | None] | None, client_window: int = 15
    ) -> ClientDeflate:
        """The client's side of what the server answered; ``client_window`` is what the client
        would use if the server set no limit."""
        assert response is not None, "the server declined permessage-deflate"
        limit = response.get("client_max_window_bits")
        return cls(
            client_window=min(client_window, int(limit)) if limit else client_window,
            server_window=int(response.get("server_max_window_bits") or 15),
            client_takeover="client_no_context_takeover" not in response,
            server_takeover="server_no_context_takeover" not in response,
        )

    def compress(self, data: bytes) -> bytes:
        if self.compressor is None or not self.client_takeover:
            self.compressor = zlib.compressobj(wbits=-self.client_window)
        compressed = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert compressed.endswith(TAIL)
        return compressed[: -len(TAIL)]

    def decompress(self, data: bytes) -> bytes:
        if self.decompressor is None or not self.server_takeover:
            self.decompressor = zlib.decompressobj(wbits=-self.server_window)
        return self.decompressor.decompress(data + TAIL)

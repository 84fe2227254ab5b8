"""WebSocket frames as they arrive over TCP (RFC 6455 section 5.2), for a server whose protocol
library reads only whole frames.

websockets, under uvicorn, hands nothing on until a frame is complete, which leaves two things
to be done before that: knowing where frames begin and end, so that a read can be handed over a
frame at a time (``servers.uvicorn``'s ``feed_frames``), and checking the UTF-8 of a text frame
while its payload is still arriving, so that bad bytes fail the connection when they arrive
(section 8.1), as they do under daphne, rather than once the frame is complete.
"""

from __future__ import annotations

import codecs

from websockets.frames import Opcode
from websockets.utils import apply_mask

UTF8_DECODER = codecs.getincrementaldecoder("utf-8")
# A masked client frame's shortest header, and the most a payload length of 125 or less takes.
MIN_HEADER = 6
MAX_SHORT_LENGTH = 125


def frame_header(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """The header size and payload length of the frame at ``start``, or None while its header
    is incomplete."""
    if len(buffer) < start + 2:
        return None
    second = buffer[start + 1]
    length = second & 0x7F
    size_bytes = 0 if length <= MAX_SHORT_LENGTH else 2 if length == 126 else 8
    header_size = 2 + size_bytes + (4 if second & 0x80 else 0)
    if len(buffer) < start + header_size:
        return None
    if size_bytes:
        length = int.from_bytes(buffer[start + 2 : start + 2 + size_bytes], "big")
    return header_size, length


class TextFrameCheck:
    """Follows the frames of a connection read by read, and checks the payload of a text frame
    that a read leaves incomplete as far as it has arrived.

    ``read`` is given each read after the whole frames in it have been handled, and the UTF-8
    decoder of the text message they left open (a fragmented one), if any: a frame left
    incomplete continues that message's text.
    """

    __slots__ = ("cut_header", "decoder", "frame_left", "mask", "offset")

    def __init__(self) -> None:
        # The bytes of the frame being read that are still to come...
        self.frame_left = 0
        # ...or the start of a header cut off by the end of a read.
        self.cut_header = b""
        # For a text frame still arriving: its decoder, mask, and how much of it has arrived.
        self.decoder: codecs.IncrementalDecoder | None = None
        self.mask = b""
        self.offset = 0

    def read(
        self, data: bytes, message_decoder: codecs.IncrementalDecoder | None
    ) -> UnicodeDecodeError | None:
        """Follows ``data``; the error if the text frame still arriving is not UTF-8."""
        if not self.frame_left and not self.cut_header and len(data) >= MIN_HEADER:
            length = data[1] & 0x7F
            if length <= MAX_SHORT_LENGTH and len(data) == MIN_HEADER + length:
                return None  # one small whole frame: nearly every read
        if self.cut_header:
            data, self.cut_header = self.cut_header + data, b""
        position = 0
        if self.frame_left:
            position = min(self.frame_left, len(data))
            self.frame_left -= position
            if self.decoder is not None:
                error = self.check(data[:position])
                if error is not None:
                    self.decoder = None
                    return error
                if not self.frame_left:
                    self.decoder = None
        while position < len(data):
            header = frame_header(data, position)
            if header is None:
                self.cut_header = data[position:]
                return None
            header_size, length = header
            end = position + header_size + length
            if end <= len(data):
                position = end
                continue
            # This frame runs on past the read: its payload so far is checked if it is text
            # (uncompressed and masked: anything else is checked, or refused, once whole).
            self.frame_left = end - len(data)
            first, second = data[position], data[position + 1]
            opcode = first & 0x0F
            if first & 0x40 or not second & 0x80:
                return None
            if opcode == Opcode.TEXT:
                self.decoder = UTF8_DECODER()
            elif opcode == Opcode.CONT and message_decoder is not None:
                self.decoder = UTF8_DECODER()
                self.decoder.setstate(message_decoder.getstate())
            else:
                return None
            payload = position + header_size
            self.mask, self.offset = bytes(data[payload - 4 : payload]), 0
            error = self.check(data[payload:])
            if error is not None:
                self.decoder = None
            return error
        return None

    def check(self, payload: bytes) -> UnicodeDecodeError | None:
        assert self.decoder is not None
        turn = self.offset % 4
        mask = self.mask[turn:] + self.mask[:turn]
        self.offset += len(payload)
        try:
            self.decoder.decode(apply_mask(payload, mask), False)
        except UnicodeDecodeError as error:
            return error
        return None

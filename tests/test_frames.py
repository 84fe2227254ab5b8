"""``servers/frames.py``: frame boundaries and early UTF-8 checks, on generated streams of frames
cut into generated reads."""

from __future__ import annotations

import codecs

from hypothesis import given
from hypothesis import strategies as st

from servers.frames import TextFrameCheck, frame_header
from tests.rawws import BINARY, CONTINUATION, TEXT, frame

UTF8 = codecs.getincrementaldecoder("utf-8")

# Payloads around the lengths where the header grows (125/126, 65535/65536), valid or not.
payloads = st.one_of(
    st.text(max_size=200).map(str.encode),
    st.binary(max_size=200),
    # Bad bytes early in a longer payload: most cuts of the frame fall after them.
    st.tuples(st.text(max_size=20), st.sampled_from([b"\xff", b"\xe2\x28", b"\xc0\xaf"])).map(
        lambda parts: parts[0].encode() + parts[1] + b"." * 100
    ),
    st.integers(120, 130).map(lambda size: b"a" * size),
    st.integers(65530, 65540).map(lambda size: "é".encode() * (size // 2) + b"x" * (size % 2)),
).flatmap(lambda data: st.tuples(st.just(data), st.integers(0, min(len(data), 24))))


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[int, bytes, bool]], bytes]:
    """Frames as a client sends them (text, binary, fragmented text), and their bytes."""
    frames: list[tuple[int, bytes, bool]] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["text", "binary", "fragmented"]))
        (data, cut) = draw(payloads)
        if kind == "fragmented":
            frames += [(TEXT, data[:cut], False), (CONTINUATION, data[cut:], True)]
        else:
            frames.append((TEXT if kind == "text" else BINARY, data, True))
    return frames, b"".join(frame(opcode, data, fin=fin) for opcode, data, fin in frames)


Frames = list[tuple[int, bytes, bool]]


def spans(frames: Frames) -> list[tuple[int, int]]:
    """Where each frame's payload starts on the wire, and where the frame ends."""
    result, position = [], 0
    for opcode, payload, fin in frames:
        size = len(frame(opcode, payload, fin=fin))
        result.append((position + size - len(payload), position + size))
        position += size
    return result


def first_bad_text(frames: Frames) -> tuple[int, int | None] | None:
    """The frame in which text first stops being UTF-8, and the wire offset by which its bad
    byte has arrived (None where only the message's end shows it)."""
    decoder = None
    for number, ((opcode, payload, fin), (start, _)) in enumerate(
        zip(frames, spans(frames), strict=True)
    ):
        if opcode != CONTINUATION:
            decoder = UTF8() if opcode == TEXT else None
        if decoder is None:
            continue
        for index in range(len(payload)):
            try:
                decoder.decode(payload[index : index + 1], False)
            except UnicodeDecodeError:
                return number, start + index + 1
        if fin:
            try:
                decoder.decode(b"", True)
            except UnicodeDecodeError:
                return number, None
    return None


def open_message(frames: Frames, whole: int) -> codecs.IncrementalDecoder | None:
    """The decoder of the text message the first ``whole`` frames leave open, as the
    connection keeps it."""
    decoder = None
    for opcode, payload, fin in frames[:whole]:
        if opcode != CONTINUATION:
            decoder = UTF8() if opcode == TEXT else None
        if decoder is not None:
            decoder.decode(payload, False)
        if fin:
            decoder = None
    return decoder


@given(streams(), st.data())
def test_bad_text_is_found_as_soon_as_it_arrives(
    stream: tuple[Frames, bytes], data: st.DataObject
) -> None:
    """However a stream is cut into reads, bad UTF-8 in a text frame is reported by the read
    that brings the bad byte, before the frame is whole; valid text and binary never are."""
    frames, wire = stream
    ends = [end for _, end in spans(frames)]
    bad = first_bad_text(frames)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(wire)), max_size=6))))
    check = TextFrameCheck()
    start = 0
    for end in [*cuts, len(wire)]:
        if end == start:
            continue
        if bad is not None and ends[bad[0]] <= end:
            return  # the frame is whole: the connection's own decoding reports it
        whole = sum(frame_end <= end for frame_end in ends)
        error = check.read(wire[start:end], open_message(frames, whole))
        arrived = bad is not None and bad[1] is not None and bad[1] <= end
        assert (error is not None) == arrived
        if error is not None:
            return
        start = end


def test_header_is_read_only_once_complete() -> None:
    """A header cut anywhere, the mask included, is incomplete; whole, it gives its sizes."""
    for payload, header_size in ((b"x" * 5, 6), (b"x" * 200, 8), (b"x" * 70_000, 14)):
        wire = frame(TEXT, payload)
        for cut in range(header_size):
            assert frame_header(wire[:cut]) is None
        assert frame_header(wire[:header_size]) == (header_size, len(payload))

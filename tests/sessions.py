"""WebSocket sessions described as data, what docs/protocol.md says each must get back, and a
raw client that plays one against a live server.

A ``Session`` is what a client does: the compression it offers, its messages (type, size,
content, compressed or not, where each is fragmented, where pings go between the fragments,
how many copies are sent in a row) and how its bytes are cut into TCP writes. ``expected``
is the model: a pure function from a session and the server's message-size limit to what the
server must answer. ``play`` sends the session from a writer thread while reading everything the
server sends, so a client that writes faster than it reads never deadlocks, and reports what
came back as an ``Outcome``. ``tests/test_sessions.py`` generates sessions and compares the two.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import select
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.deflate import ClientDeflate, negotiated
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
)
from tests.timing import bound

EXTENSIONS = "Sec-WebSocket-Extensions"
# The last frame of every session, a ping: its pong says the server has read the whole session.
FINAL_PING = b"end of session"
# RFC 6455 close codes the model predicts.
NORMAL, INVALID_DATA, TOO_BIG = 1000, 1007, 1009

# Contents a message can have. "invalid" is a text message that is not UTF-8.
ZEROS, REPEATED, RANDOM, INVALID = "zeros", "repeated", "random", "invalid"
REPEATED_TEXT = "channels-echo répète 🎉 "
# Byte sequences that are never UTF-8 wherever they stand among valid characters: a stray byte,
# an overlong form, a surrogate, a code point past U+10FFFF, and a character cut short.
NOT_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82")
# Code points by the length of their UTF-8 encoding (surrogates are left out of the 3-byte range).
CODE_POINTS = {
    1: [(0x20, 0x7E)],
    2: [(0x80, 0x7FF)],
    3: [(0x800, 0xD7FF), (0xE000, 0xFFFF)],
    4: [(0x10000, 0x10FFFF)],
}
# A writer cuts the session into at most about this many TCP writes (this many when it pauses
# after each), and pauses this many times at most.
MAX_WRITES = 3000
MAX_PAUSED_WRITES = 100
MAX_PAUSES = 100
# The longest a client waits for the server to send anything, and how often it looks.
SILENCE = 10.0
POLL_INTERVAL = 0.02


@dataclass(frozen=True)
class Message:
    """One message as the client sends it, ``copies`` times in a row."""

    opcode: int  # TEXT or BINARY
    content: str  # ZEROS, REPEATED, RANDOM or INVALID (text that is not UTF-8)
    size: int  # bytes of the message itself: inflated, and UTF-8 for text
    seed: int = 0
    compressed: bool = False  # sent with RSV1 (on a connection that negotiated compression)
    cuts: tuple[int, ...] = ()  # fragment boundaries, in thousandths of the bytes on the wire
    pings: tuple[int, ...] = ()  # a ping before fragment i (i = the number of fragments: after)
    copies: int = 1

    def payload(self) -> bytes:
        return message_payload(self.opcode, self.content, self.size, self.seed)


@dataclass(frozen=True)
class Session:
    """What one client sends on one connection, then the final ping, then its close."""

    offer: str | None  # the Sec-WebSocket-Extensions offer; None offers nothing
    messages: tuple[Message, ...]
    largest_write: int | None = None  # None: the whole session in one TCP write
    write_seed: int = 0
    # Each frame written on its own, its last byte in a write of its own (largest_write unused).
    frame_ends: bool = False
    # Seconds between writes: long enough that the server reads each write on its own.
    pause: float = 0.0
    ping_size: int = 8  # bytes of each ping's payload (a control frame carries 125 at most)
    # The client's own window when the server does not limit it (an offer with
    # client_max_window_bits=N must keep to N).
    client_window: int = 15


@dataclass
class Expected:
    """What the server must answer a session with."""

    replies: list[tuple[int, bytes]]  # in order; empty for an application that never replies
    read: int  # messages the application reads
    close_code: int  # NORMAL: the client's own close answered; else the server's error


@dataclass
class Outcome:
    """What came back."""

    replies: list[tuple[int, bytes]] = field(default_factory=list)
    reply_count: int = 0
    pongs: list[bytes] = field(default_factory=list)
    close_code: int | None = None
    # Seconds from the client's last write to the pong of FINAL_PING; None if it never came.
    answer_delay: float | None = None
    # Seconds after the client's last write that FINAL_PING was still unanswered, when reading
    # gave up on it.
    late: float | None = None
    write_error: str | None = None
    problem: str | None = None  # how the exchange broke off, if it did
    local_port: int = 0


@functools.lru_cache(maxsize=64)
def message_payload(opcode: int, content: str, size: int, seed: int) -> bytes:
    """The bytes of a message: ``size`` of them, UTF-8 for text except INVALID."""
    generator = random.Random(seed)
    if content == ZEROS:
        return bytes(size)
    if opcode == BINARY:
        if content == REPEATED:
            return (REPEATED_TEXT.encode() * (size // 20 + 1))[:size]
        return generator.randbytes(size)
    if content == REPEATED:
        return exact_utf8((REPEATED_TEXT.encode() * (size // 20 + 1))[:size], size)
    if content == RANDOM:
        return random_text(generator, size)
    # Text that is not UTF-8: valid characters around one bad sequence, anywhere (size >= 4).
    bad = generator.choice(NOT_UTF8)
    before = generator.randint(0, max(0, size - len(bad)))
    after = max(0, size - len(bad) - before)
    return random_text(generator, before) + bad + random_text(generator, after)


def exact_utf8(data: bytes, size: int) -> bytes:
    """``data`` cut back to whole characters, padded with spaces to ``size`` bytes."""
    text = data.decode("utf-8", errors="ignore").encode()
    return text + b" " * (size - len(text))


def random_text(generator: random.Random, size: int) -> bytes:
    """Random characters of every UTF-8 length, exactly ``size`` bytes of UTF-8: drawn from an
    alphabet of 1,024 random characters (so that a megabyte takes milliseconds), and cut back
    to whole characters and padded with random ASCII at the end."""
    alphabet = [random_character(generator) for _ in range(1024)] * 64  # indexed by any uint16
    text = b""
    while len(text) < size:
        indices = array("H", generator.randbytes(2 * ((size - len(text)) // 2 + 1)))
        text += "".join(map(alphabet.__getitem__, indices)).encode()
    text = text[:size].decode("utf-8", errors="ignore").encode()
    return text + bytes(generator.randint(0x20, 0x7E) for _ in range(size - len(text)))


def random_character(generator: random.Random) -> str:
    low, high = generator.choice(CODE_POINTS[generator.randint(1, 4)])
    return chr(generator.randint(low, high))


def expected(session: Session, limit: int, *, replies: bool = True) -> Expected:
    """docs/protocol.md's rules for one session: every message within ``limit`` (inflated,
    UTF-8 bytes for text, however fragmented or compressed) is read, and echoed exactly in order
    by an application that replies; text that is not UTF-8 ends the connection with 1007 and a
    message over the limit with 1009, after the echoes of the messages before it, and nothing
    after it is read. A session without an error ends with the client's close answered."""
    read: list[tuple[int, bytes]] = []
    code = NORMAL
    for message in session.messages:
        if message.content == INVALID:
            code = INVALID_DATA
        elif message.size > limit:
            code = TOO_BIG
        if code != NORMAL:
            break
        read.extend([(message.opcode, message.payload())] * message.copies)
    return Expected(read if replies else [], len(read), code)


def session_bytes(
    session: Session, deflate: ClientDeflate | None
) -> tuple[list[bytes], list[bytes]]:
    """The session's frames on the wire, and the payloads of its pings, in order."""
    wire: list[bytes] = []
    pings: list[bytes] = []
    for message in session.messages:
        payload = message.payload()
        for _ in range(message.copies):
            compressed = message.compressed and deflate is not None
            body = deflate.compress(payload) if compressed and deflate else payload
            cuts = sorted(round(len(body) * cut / 1000) for cut in message.cuts)
            bounds = [0, *cuts, len(body)]
            fragments = [body[start:end] for start, end in itertools.pairwise(bounds)]
            for index, fragment in enumerate(fragments):
                for _ in range(message.pings.count(index)):
                    pings.append(ping_payload(len(pings), session.ping_size))
                    wire.append(frame(PING, pings[-1]))
                wire.append(
                    frame(
                        message.opcode if index == 0 else CONTINUATION,
                        fragment,
                        fin=index == len(fragments) - 1,
                        rsv=4 if compressed and index == 0 else 0,
                    )
                )
            for _ in range(message.pings.count(len(fragments))):
                pings.append(ping_payload(len(pings), session.ping_size))
                wire.append(frame(PING, pings[-1]))
    pings.append(FINAL_PING)
    wire.append(frame(PING, FINAL_PING))
    return wire, pings


def ping_payload(number: int, size: int) -> bytes:
    """The payload of the session's ``number``-th ping: its number, padded to ``size`` bytes."""
    return f"{number}.".encode().ljust(size, b"-")[:size]


def write_sizes(session: Session, frames: list[bytes]) -> list[int]:
    """How the session's ``frames`` are cut into TCP writes."""
    if session.frame_ends:
        return [size for sent in frames for size in (len(sent) - 1, 1)]
    total = sum(map(len, frames))
    if session.largest_write is None:
        return [total]
    most = MAX_PAUSED_WRITES if session.pause else MAX_WRITES
    largest = max(session.largest_write, -(-total // most))
    generator = random.Random(session.write_seed)
    sizes = []
    while total > 0:
        sizes.append(min(total, generator.randint(1, largest)))
        total -= sizes[-1]
    return sizes


class Writer(threading.Thread):
    """Sends bytes in the given writes while the test reads, as a client that does not wait."""

    def __init__(
        self, client: RawClient, data: bytes, sizes: list[int], pause: float = 0.0
    ) -> None:
        super().__init__(daemon=True)
        self.client, self.data, self.sizes, self.pause = client, data, sizes, pause
        self.error: str | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        start = 0
        try:
            for number, size in enumerate(self.sizes):
                self.client.sock.sendall(self.data[start : start + size])
                start += size
                if self.pause and number < MAX_PAUSES:
                    time.sleep(self.pause)
        except OSError as error:
            self.error = f"{type(error).__name__} after {start} of {len(self.data)} bytes"
        self.finished_at = time.monotonic()


def open_client(server: LiveServer, path: str, offer: str | None) -> tuple[RawClient, str | None]:
    """A connection to ``path`` offering ``echo`` and ``offer``; the server's extension answer."""
    client = RawClient(HOST, server.port)
    response = client.handshake(path, headers={EXTENSIONS: offer} if offer else {})
    if response.status != 101:
        client.close()
        raise AssertionError(f"handshake refused with {response.status}: {response.headers}")
    return client, response.header(EXTENSIONS)


def play(
    server: LiveServer,
    path: str,
    session: Session,
    wanted: Expected,
    answer_within: float | None = None,
) -> Outcome:
    """Plays ``session`` on a new connection to ``path`` and reads until the server closes, or
    until it has answered the final ping and sent ``wanted``'s replies; a session the server
    did not close is then closed by the client with 1000. With ``answer_within``, a final ping
    still unanswered that many seconds after the last write ends the reading (``late``). Every
    wait is bounded."""
    client, answer = open_client(server, path, session.offer)
    outcome = Outcome(local_port=client.sock.getsockname()[1])
    deflate = None
    if session.offer is not None:
        assert answer, f"the server declined {session.offer!r}"
        deflate = ClientDeflate.agreed(negotiated(answer), client_window=session.client_window)
    frames, _ = session_bytes(session, deflate)
    client.sock.settimeout(bound(SILENCE))
    writer = Writer(client, b"".join(frames), write_sizes(session, frames), session.pause)
    writer.start()
    try:
        read_replies(
            client, deflate, outcome, writer, len(wanted.replies), answer_within=answer_within
        )
        if outcome.late is not None or outcome.problem is not None:
            return outcome
        writer.join(bound(SILENCE))
        outcome.write_error = writer.error or (None if not writer.is_alive() else "still writing")
        if outcome.close_code is None:
            client.send(frame(CLOSE, close_payload(NORMAL)))
            read_replies(client, deflate, outcome, writer, None)
        else:
            client.send(frame(CLOSE, close_payload(outcome.close_code)))
        if outcome.problem is None:
            expect_end(client, outcome)
    finally:
        client.close()
        writer.join(bound(SILENCE))
    return outcome


def read_replies(
    client: RawClient,
    deflate: ClientDeflate | None,
    outcome: Outcome,
    writer: Writer | None,
    replies_wanted: int | None,
    on_reply: Callable[[int, bytes], None] | None = None,
    answer_within: float | None = None,
) -> None:
    """Reads frames into ``outcome`` until the server's close frame, or (with
    ``replies_wanted``) until FINAL_PING is answered and that many replies have come. Replies
    are kept in ``outcome``, or handed to ``on_reply`` when it is given. With
    ``answer_within``, it stops once FINAL_PING has gone that long after the writer's last
    write without an answer, and records how long in ``outcome.late``."""
    opcode, compressed, parts = None, False, []
    last_heard = time.monotonic()
    while True:
        if (
            replies_wanted is not None
            and (outcome.answer_delay is not None or writer is None)
            and outcome.reply_count >= replies_wanted
        ):
            return
        if not client.buffer and not select.select([client.sock], [], [], POLL_INTERVAL)[0]:
            now = time.monotonic()
            written = writer.finished_at if writer is not None else None
            if (
                answer_within is not None
                and written is not None
                and outcome.answer_delay is None
                and now - written > answer_within
            ):
                outcome.late = now - written
                return
            if now - last_heard > bound(SILENCE):
                outcome.problem = (
                    f"nothing came for {bound(SILENCE):.0f} s "
                    f"({'after' if written else 'before'} the client's last write)"
                )
                return
            continue
        try:
            received = client.recv_frame()
        except TimeoutError:
            outcome.problem = f"a frame stopped short for {bound(SILENCE):.0f} s"
            return
        except (ConnectionEnded, ConnectionResetError) as error:
            outcome.problem = f"TCP ended without a close frame: {error!r}"
            return
        last_heard = time.monotonic()
        if received.opcode == CLOSE:
            outcome.close_code = received.close_code
            return
        if received.opcode == PONG:
            outcome.pongs.append(received.payload)
            if received.payload == FINAL_PING and outcome.answer_delay is None:
                written = writer.finished_at if writer is not None else None
                outcome.answer_delay = max(0.0, last_heard - (written or last_heard))
            continue
        if received.opcode == PING:
            continue
        if opcode is None:
            opcode, compressed = received.opcode, bool(received.rsv & 4)
        parts.append(received.payload)
        if received.fin:
            payload = b"".join(parts)
            if compressed:
                assert deflate is not None, "a compressed message on an uncompressed connection"
                payload = deflate.decompress(payload)
            outcome.reply_count += 1
            if on_reply is None:
                outcome.replies.append((opcode, payload))
            else:
                on_reply(opcode, payload)
            opcode, compressed, parts = None, False, []


def expect_end(client: RawClient, outcome: Outcome) -> None:
    """After the close frames, the server ends TCP and sends nothing more."""
    try:
        extra = client.buffer or client.sock.recv(65536)
    except ConnectionResetError:
        return
    except TimeoutError:
        outcome.problem = "TCP stayed open after the close handshake"
        return
    if extra:
        outcome.problem = f"{len(extra)} bytes came after the close frame"


def describe(replies: list[tuple[int, bytes]]) -> list[str]:
    """Replies as a test failure shows them: type and size, never the whole payload."""
    return [
        f"{'text' if opcode == TEXT else 'binary'}:{len(payload)}" for opcode, payload in replies
    ]


def first_difference(got: list[tuple[int, bytes]], wanted: list[tuple[int, bytes]]) -> str:
    for index, (reply, want) in enumerate(zip(got, wanted, strict=False)):
        if reply != want:
            return (
                f"reply {index} is {describe([reply])[0]}, not {describe([want])[0]}"
                f" (differing from byte {differing_byte(reply[1], want[1])})"
            )
    if len(got) == len(wanted):
        return "the replies are the ones wanted"
    return f"{len(got)} replies where {len(wanted)} were wanted"


def differing_byte(got: bytes, wanted: bytes) -> int:
    return next(
        (i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b),
        min(len(got), len(wanted)),
    )


def is_subsequence(items: list[bytes], of: list[bytes]) -> bool:
    remaining = iter(of)
    return all(item in remaining for item in items)


def log_problems(log: str) -> list[str]:
    """Lines of a server log that a client must never cause: errors and tracebacks."""
    return [
        line
        for line in log.splitlines()
        if re.search(r"\b(ERROR|CRITICAL)\b|Traceback|Exception inside application", line)
    ]

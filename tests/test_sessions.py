"""Generated sessions against live servers, checked against the rules of docs/protocol.md.

Hypothesis draws whole client sessions (``tests/sessions.py``): text and binary messages, small
or around the message-size limit, of zeros, repeated text or random bytes and characters (every
UTF-8 length), now and then text that is not UTF-8; sent with or without permessage-deflate,
compressed or not, fragmented anywhere, with pings between the fragments, several copies in a
row, and written in TCP pieces of any size. Each session goes to three applications: the
project's echo, one that reads every message and never replies, and one that echoes after a
short wait (``tests/apps.py``). What comes back must be what the model in ``tests/sessions.py``
says, the server's log must show no error, and its memory must stay within the documented
16 times ECHO_MAX_MESSAGE_SIZE per client.

The cheapest attacks on the documented bounds follow as fixed inputs: compressed messages that
each inflate to nearly the limit, sent without reading; a burst of messages at the limit sent
without reading; and a burst to an application that never replies, which must be read at once.

``ECHO_TEST_EXAMPLES`` (default 80) sets how many sessions each server and application get;
the default set is the same on every run, a raised count draws new ones at random.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ServerFactory
from tests.deflate import ClientDeflate, negotiated
from tests.live import HOST, SERVER_KINDS, LiveServer, peak_rss_bytes, reset_peak_rss
from tests.rawws import BINARY, CLOSE, PING, TEXT, close_payload, frame
from tests.sessions import (
    FINAL_PING,
    INVALID,
    NORMAL,
    RANDOM,
    REPEATED,
    ZEROS,
    Expected,
    Message,
    Outcome,
    Session,
    Writer,
    describe,
    expected,
    first_difference,
    is_subsequence,
    log_problems,
    message_payload,
    open_client,
    play,
    read_replies,
    session_bytes,
)
from tests.timing import bound

pytestmark = pytest.mark.live

KIB, MIB = 1024, 1024 * 1024
DEFAULT_EXAMPLES = 80


def examples() -> int:
    value = os.environ.get("ECHO_TEST_EXAMPLES", "").strip() or str(DEFAULT_EXAMPLES)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"ECHO_TEST_EXAMPLES={value!r} is invalid: it accepts a whole number ≥ 1")
    return int(value)


EXAMPLES = examples()
GENERATED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # The default set is fixed, so CI fails or passes the same way on every run; a raised count
    # is for finding new failures, so it draws new sessions each time.
    derandomize="ECHO_TEST_EXAMPLES" not in os.environ,
    print_blob=True,
)

# The generated sessions run against servers with this limit: above 65,535 so that messages at
# the limit take the 8-byte length, not a power of two, small enough to keep sessions quick.
LIMIT = 70_000
DEFAULT_LIMIT = MIB
# docs/protocol.md: a client holds at most about 16 times ECHO_MAX_MESSAGE_SIZE of the server's
# memory. The slack is what a process grows by without any client holding anything: allocator
# arenas, zlib streams, buffers the interpreter keeps.
MESSAGES_HELD = 16
MEMORY_SLACK = 24 * MIB
# An answer to the last ping of a session comes at most this long after the session's last byte
# is written (plus the slow echo's wait for each message): the server reads as the bytes come.
ANSWER_WITHIN = 1.0


@dataclass(frozen=True)
class Application:
    """An application the sessions go to, under the servers that can serve it."""

    name: str
    path: str
    module: str  # what the server serves, ``module:attribute``
    replies: bool
    delay: float  # seconds the application waits before each reply
    kinds: tuple[str, ...]

    def server(self, live_servers: ServerFactory, kind: str, **overrides: str) -> LiveServer:
        return live_servers(kind, application=self.module, **overrides)

    def closing_line(self, port: int) -> str:
        """How the log line the application writes when the connection from ``port`` ends
        begins."""
        event = "closed" if self.name == "echo" else f"{self.name.replace('-', '_')}_closed"
        return f"event={event} client={HOST}:{port} "

    def messages_read(self, log: str, line: str) -> int | None:
        """The messages the application read, from its closing line; None without one."""
        count = "messages_in" if self.name == "echo" else "messages"
        found = re.search(re.escape(line) + rf"code=\S+ (?:\S+ )*?{count}=(\d+)", log)
        return int(found[1]) if found else None


# tests/apps.py serves these two at these paths, and the slow echo waits this long before each
# reply; it is not imported here, since importing it sets Django up as a server's application.
RECEIVE_ONLY_PATH, SLOW_ECHO_PATH, SLOW_ECHO_DELAY = "/receive-only", "/slow-echo", 0.005
TEST_APPLICATIONS = "tests.apps:application"
ECHO = Application(
    "echo", "/echo", "project.asgi:application", True, 0.0, ("daphne", "runserver", "uvicorn")
)
RECEIVE_ONLY = Application(
    "receive-only", RECEIVE_ONLY_PATH, TEST_APPLICATIONS, False, 0.0, ("daphne", "uvicorn")
)
SLOW_ECHO = Application(
    "slow-echo", SLOW_ECHO_PATH, TEST_APPLICATIONS, True, SLOW_ECHO_DELAY, ("daphne", "uvicorn")
)
CASES = [
    pytest.param(kind, application, id=f"{kind}-{application.name}")
    for application in (ECHO, RECEIVE_ONLY, SLOW_ECHO)
    for kind in SERVER_KINDS
    if kind in application.kinds
]


# What is generated.

# Seconds a client pauses after each write when it writes slowly.
PAUSE = 0.002
# Compression offers, with the window the client compresses with when the server lets it choose.
OFFERS = [
    (None, 15),
    ("permessage-deflate", 15),
    ("permessage-deflate; client_max_window_bits", 15),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15),
    ("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9", 9),
]


@st.composite
def messages(draw: st.DrawFn, limit: int, compression: bool) -> Message | None:
    """A message, or None for one left out, from draws of the same shape whatever their values,
    so that shrinking can simplify any message without misreading the draws of the next.

    Shrinking deletes the last messages of a list easily and the first ones hardly at all; a
    message left out is the simplest draw, so shrinking can drop any message.
    """
    present = draw(st.integers(0, 3)) > 0
    opcode = draw(st.sampled_from([BINARY, TEXT]))
    # Random content three times as often: it is what compression cannot shrink. Binary has no
    # UTF-8 to get wrong, so INVALID stands for random bytes there.
    content = draw(st.sampled_from([ZEROS, REPEATED, RANDOM, RANDOM, RANDOM, INVALID]))
    if content == INVALID and opcode == BINARY:
        content = RANDOM
    near_limit = draw(st.booleans())
    offset = draw(st.integers(-2, 2))
    small = draw(st.integers(0, 300))
    # Where the frame length takes 7, 16 or 64 bits.
    edge = draw(st.sampled_from([None, 125, 126, 127, 65_535, 65_536]))
    size = limit + offset if near_limit else small if edge is None else edge
    if content == INVALID:
        # Small, so that it is invalid and never also over the limit.
        size = max(4, small)
    # Sent compressed three times in four, when the connection allows it.
    compressed = draw(st.integers(0, 3)) > 0
    # Half the cuts at either end: an empty first or last fragment, as some clients send.
    cuts = draw(st.lists(st.integers(0, 1000) | st.sampled_from([0, 1000]), max_size=3))
    pings = draw(st.lists(st.integers(0, 4), max_size=2))
    burst = draw(st.integers(0, 3)) == 3
    extra = draw(st.integers(0, 24))
    seed = draw(st.integers(0, 255))
    if not present:
        return None
    return Message(
        opcode=opcode,
        content=content,
        size=size,
        seed=seed,
        compressed=compression and compressed,
        cuts=tuple(cuts),
        pings=tuple(min(ping, len(cuts) + 1) for ping in pings),
        # Now and then a burst of copies, more than the 16 messages a server may hold.
        copies=16 + extra if burst else 1 + extra % 3,
    )


@st.composite
def sessions(draw: st.DrawFn, limit: int) -> Session:
    offer, window = draw(st.sampled_from(OFFERS))
    drawn = draw(st.lists(messages(limit, offer is not None), min_size=1, max_size=6))
    frame_ends = draw(st.integers(0, 3)) == 3
    return Session(
        offer=offer,
        messages=tuple(message for message in drawn if message is not None),
        largest_write=draw(st.sampled_from([None, 1, 2, 3, 7, 100, 1500, 65_536])),
        write_seed=draw(st.integers(0, 255)),
        frame_ends=frame_ends,
        # A pause after each write, so that the server reads the pieces apart: always when the
        # last byte of each frame is written apart, and now and then otherwise.
        pause=PAUSE if frame_ends else draw(st.sampled_from([0.0, 0.0, 0.0, PAUSE])),
        ping_size=draw(st.integers(0, 125)),
        client_window=window,
    )


# What is checked.


def memory_bound(limit: int) -> int:
    return MESSAGES_HELD * limit + MEMORY_SLACK


def summary(outcome: Outcome, wanted: Expected) -> str:
    return (
        f"\n  got:    close {outcome.close_code}, replies {describe(outcome.replies)[:8]}"
        f"{'...' if len(outcome.replies) > 8 else ''} ({len(outcome.replies)})"
        f"\n  wanted: close {wanted.close_code}, replies {describe(wanted.replies)[:8]}"
        f"{'...' if len(wanted.replies) > 8 else ''} ({len(wanted.replies)}),"
        f" {wanted.read} read"
    )


def closing_log(server: LiveServer, start: int, line: str) -> str:
    """The log since ``start`` once it has ``line`` (the application's last word on the
    connection), or as it stands after the bound."""
    deadline = time.monotonic() + bound(5)
    while line not in (log := server.log()[start:]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


def assert_log_clean(log: str, context: str = "") -> None:
    problems = log_problems(log)
    assert not problems, "the server logged an error:\n" + "\n".join(problems[:20]) + context


def check_session(
    server: LiveServer, application: Application, session: Session, limit: int
) -> None:
    """Plays ``session`` and checks everything the rules say of it."""
    wanted = expected(session, limit, replies=application.replies)
    answer_within = None
    if wanted.close_code == NORMAL:
        answer_within = bound(ANSWER_WITHIN) + wanted.read * application.delay
    log_start = server.log_end()
    rss_before = reset_peak_rss(server)
    outcome = play(server, application.path, session, wanted, answer_within)
    growth = peak_rss_bytes(server) - rss_before
    context = summary(outcome, wanted)
    assert outcome.problem is None, outcome.problem + context
    # An error is logged by the time the client hears of it; the connection's last log line
    # is looked for at the end.
    assert_log_clean(server.log()[log_start:], context)
    assert growth <= memory_bound(limit), (
        f"the server grew by {growth / MIB:.1f} MiB for one client; the bound is "
        f"{memory_bound(limit) / MIB:.1f} MiB" + context
    )
    assert outcome.late is None, (
        f"the last ping was still unanswered {outcome.late:.2f} s after the session was written "
        f"(the server answers within {answer_within:.2f} s): the server stopped reading" + context
    )
    line = application.closing_line(outcome.local_port)
    log = closing_log(server, log_start, line)
    assert_log_clean(log, context)
    read = application.messages_read(log, line)
    # One check for all three: a message refused early shows as a wrong code, as missing
    # replies, or as messages the application never read.
    assert (outcome.close_code, outcome.replies, read) == (
        wanted.close_code,
        wanted.replies,
        wanted.read,
    ), (
        f"closed with {outcome.close_code} after {len(outcome.replies)} replies and "
        f"{'no closing log line' if read is None else f'{read} messages read'}; the rules say "
        f"{wanted.close_code} after {len(wanted.replies)} and {wanted.read}: "
        + first_difference(outcome.replies, wanted.replies)
        + context
    )
    assert outcome.write_error is None, f"the client's writes failed: {outcome.write_error}"
    _, pings = session_bytes(session, None)
    assert is_subsequence(outcome.pongs, pings), f"pongs {outcome.pongs} answer no ping sent"


@pytest.mark.parametrize(("kind", "application"), CASES)
# Room for the examples, and for Hypothesis to shrink a failure (five minutes at most).
@pytest.mark.timeout(120 + 5 * EXAMPLES + 300)
@GENERATED
@given(session=sessions(LIMIT))
def test_generated_session_gets_what_the_rules_say(
    live_servers: ServerFactory, kind: str, application: Application, session: Session
) -> None:
    """Every generated session gets what docs/protocol.md says: each message within the limit
    read, and echoed exactly and in order by an application that replies; 1009 or 1007 after
    the echoes of the messages before; no error logged, memory within the bound, and the
    connection answering at once."""
    server = application.server(live_servers, kind, ECHO_MAX_MESSAGE_SIZE=str(LIMIT))
    check_session(server, application, session, LIMIT)


# The cheapest attacks on the bounds, as fixed inputs, under the default limit.

BOMBS = 1000
BOMB_SIZE = 900 * KIB
BURST = 48
RECEIVE_ONLY_BURST, RECEIVE_ONLY_SIZE = 200, 16 * KIB
# The 200 messages of 16 KiB are read in milliseconds; this allows for a loaded machine, not
# for a server that waits seconds before reading on.
RECEIVE_ONLY_WITHIN = 2.0
# The peak memory is read once it has stopped rising for this long.
SETTLE = 1.0


def settled_growth(server: LiveServer, rss_before: int) -> int:
    """How far the server's memory rose above ``rss_before``, read once its peak has stopped
    rising for SETTLE seconds (or after the bound)."""
    deadline = time.monotonic() + bound(15)
    peak, since = peak_rss_bytes(server), time.monotonic()
    while time.monotonic() - since < SETTLE and time.monotonic() < deadline:
        time.sleep(0.1)
        if (now := peak_rss_bytes(server)) != peak:
            peak, since = now, time.monotonic()
    return peak - rss_before


def burst_without_reading(
    server: LiveServer,
    application: Application,
    offer: str | None,
    messages: Callable[[ClientDeflate | None], bytes],
    wanted: list[tuple[int, bytes]],
) -> None:
    """Sends ``messages`` (built for the compression agreed) and reads nothing until the
    server's memory has stopped growing, which must stay within the bound; then reads every
    reply, checking each against ``wanted`` as it comes, and closes. The application must have
    read every message, and the log must show no error."""
    log_start = server.log_end()
    client, answer = open_client(server, application.path, offer)
    with client:
        port = client.sock.getsockname()[1]
        deflate = ClientDeflate.agreed(negotiated(answer)) if offer else None
        data = messages(deflate) + frame(PING, FINAL_PING)
        # The writer waits while the server rightly stops reading, for as long as the memory
        # takes to settle.
        client.sock.settimeout(bound(30))
        rss_before = reset_peak_rss(server)
        writer = Writer(client, data, [len(data)])
        writer.start()
        growth = settled_growth(server, rss_before)
        # The documented bound itself, with no slack: the peak is taken from just before the
        # burst, and nothing else is served meanwhile.
        assert growth <= MESSAGES_HELD * DEFAULT_LIMIT, (
            f"the server grew by {growth / MIB:.1f} MiB for one client that sent "
            f"{len(data) / MIB:.1f} MiB without reading; the bound is "
            f"{MESSAGES_HELD * DEFAULT_LIMIT / MIB:.0f} MiB"
        )
        expected_replies = iter(wanted if application.replies else [])

        def check(opcode: int, payload: bytes) -> None:
            want = next(expected_replies, None)
            assert want is not None, f"an extra reply: {describe([(opcode, payload)])}"
            assert (opcode, payload) == want, first_difference([(opcode, payload)], [want])

        outcome = Outcome()
        replies_wanted = len(wanted) if application.replies else 0
        read_replies(client, deflate, outcome, writer, replies_wanted, check)
        assert outcome.problem is None, outcome.problem
        assert outcome.close_code is None, f"closed with {outcome.close_code}"
        writer.join(bound(10))
        assert writer.error is None, f"the client's writes failed: {writer.error}"
        client.send(frame(CLOSE, close_payload(NORMAL)))
        read_replies(client, deflate, outcome, None, None, check)
        assert outcome.close_code == NORMAL
        assert outcome.reply_count == replies_wanted
    line = application.closing_line(port)
    log = closing_log(server, log_start, line)
    assert_log_clean(log)
    read = application.messages_read(log, line)
    assert read == len(wanted), f"the application read {read} of {len(wanted)} messages"


@pytest.mark.parametrize(("kind", "application"), CASES)
def test_compressed_messages_inflating_to_the_limit_stay_within_the_memory_bound(
    live_servers: ServerFactory, kind: str, application: Application
) -> None:
    """1,000 compressed messages of 900 KiB of zeros (under 1 MB on the wire), sent without
    reading, hold no more than 16 times the limit of the server's memory; every one is then
    read, and echoed by an application that replies."""
    server = application.server(live_servers, kind)
    zeros = bytes(BOMB_SIZE)

    def bombs(deflate: ClientDeflate | None) -> bytes:
        assert deflate is not None
        # Without client context takeover every message compresses to the same bytes.
        return frame(BINARY, deflate.compress(zeros), rsv=4) * BOMBS

    offer = "permessage-deflate; client_no_context_takeover"
    burst_without_reading(server, application, offer, bombs, [(BINARY, zeros)] * BOMBS)


@pytest.mark.parametrize(("kind", "application"), CASES)
def test_burst_at_the_limit_without_reading_stays_within_the_memory_bound(
    live_servers: ServerFactory, kind: str, application: Application
) -> None:
    """48 messages of exactly the limit, random binary and random text in turn, sent without
    reading, hold no more than 16 times the limit of the server's memory; every one is then
    read, and echoed exactly and in order by an application that replies."""
    server = application.server(live_servers, kind)
    wanted = [
        (opcode, message_payload(opcode, RANDOM, DEFAULT_LIMIT, seed))
        for seed, opcode in enumerate([BINARY, TEXT] * (BURST // 2))
    ]
    wire = b"".join(frame(opcode, payload) for opcode, payload in wanted)
    burst_without_reading(server, application, None, lambda _: wire, wanted)


@pytest.mark.parametrize("kind", [kind for kind in SERVER_KINDS if kind in RECEIVE_ONLY.kinds])
def test_application_that_never_replies_reads_a_burst_at_once(
    live_servers: ServerFactory, kind: str
) -> None:
    """200 messages of 16 KiB sent at once to an application that never replies are all read
    within a second or two: the server reads on without waiting for a reply."""
    server = RECEIVE_ONLY.server(live_servers, kind)
    log_start = server.log_end()
    client, _ = open_client(server, RECEIVE_ONLY.path, None)
    with client:
        port = client.sock.getsockname()[1]
        wire = frame(BINARY, bytes(RECEIVE_ONLY_SIZE)) * RECEIVE_ONLY_BURST
        client.sock.settimeout(bound(60))
        started = time.monotonic()
        client.send(wire + frame(CLOSE, close_payload(NORMAL)))
        # The server reads the client's close after the 200 messages, and answers it at once.
        close = client.expect_close(reply=False)
        elapsed = time.monotonic() - started
    assert close.close_code == NORMAL
    assert elapsed <= bound(RECEIVE_ONLY_WITHIN), (
        f"{RECEIVE_ONLY_BURST} messages of {RECEIVE_ONLY_SIZE // KIB} KiB took {elapsed:.1f} s "
        f"to be read (at most {bound(RECEIVE_ONLY_WITHIN):.1f} s): the server stopped reading "
        "while the application waited for more"
    )
    line = RECEIVE_ONLY.closing_line(port)
    log = closing_log(server, log_start, line)
    assert_log_clean(log)
    read = RECEIVE_ONLY.messages_read(log, line)
    assert read == RECEIVE_ONLY_BURST, f"the application read {read} of {RECEIVE_ONLY_BURST}"

"""The project's adjustments to uvicorn: protocol classes that uvicorn loads by name.

Run the project under uvicorn as::

    uvicorn project.asgi:application --no-proxy-headers --lifespan off \\
        --http servers.uvicorn:EchoHTTPProtocol \\
        --ws servers.uvicorn:EchoWebSocketProtocol

and it behaves as it does under daphne (``servers/daphne.py``): the project's limits, timeouts
and compression settings, RFC 6455's close behaviour, log lines for what clients get wrong, and
memory bounded per connection. ``EchoHTTPProtocol`` is uvicorn's httptools protocol, and
``EchoWebSocketProtocol`` its ``websockets-sansio`` one, each with the adjustments uvicorn 0.54
and websockets 17.4 need; ``servers.frames`` reads frames as they arrive for them, and both
servers share their constants and log lines through ``servers``. docs/servers.md says how to
run it.

Each adjustment cites its entry of docs/upstream.md, which says what stock uvicorn does wrong,
the test that shows it still does, and when the adjustment can be deleted. The internals used
here are listed in ``tests/test_server_contracts.py``, and the releases they were checked
against are pinned in ``pyproject.toml``: ``send_receive_event_to_app`` is uvicorn's own with
one branch changed.
"""

from __future__ import annotations

import asyncio
import codecs
import zlib
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import httptools
from django.conf import settings
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeaderFormat, PayloadTooBig, SecurityError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import ExtensionParameter

from servers import (
    CLOSE_TIMEOUT,
    COMPRESSION_MEMORY_LEVEL,
    COMPRESSION_WINDOW_BITS,
    FAILURE_GRACE,
    SHUTDOWN_REASON,
    TOO_BIG_REASON,
    Connection,
    compressed_size_bound,
    connection,
    log_handshake_timeout,
    log_http_refused,
    log_ping_timeout,
    log_protocol_error,
    log_refused_handshake,
    log_too_big,
    new_connection_id,
    plain_response,
    with_connection_id,
)
from servers.frames import UTF8_DECODER, TextFrameCheck, frame_header

SUPPORTED_VERSION = "13"
# The largest request head read, as daphne's (Twisted's)
# (docs/upstream.md#uvicorn-unreadable-handshake).
MAX_REQUEST_HEAD = 16 * 1024


def close_frame(close: Close) -> bytes:
    return Frame(Opcode.CLOSE, close.serialize()).serialize(mask=False)


# A client's close without a code is answered with this (docs/upstream.md#uvicorn-codeless-close).
NORMAL_CLOSE_FRAME = close_frame(Close(CloseCode.NORMAL_CLOSURE, ""))


# The opcodes that start a message.
DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY)
# websockets' limit is given room for a control frame between fragments, and the project's own
# is applied to the messages themselves, ``within_limit``
# (docs/upstream.md#uvicorn-ping-between-fragments).
CONTROL_FRAME_ROOM = 125


def without_close(writes: list[bytes]) -> list[bytes]:
    """websockets' writes without its close frame and end of stream: the pongs before them."""
    return [chunk for chunk in writes if chunk and chunk[0] & 0x0F != Opcode.CLOSE]


class LazyPerMessageDeflate(PerMessageDeflate):
    """websockets' permessage-deflate, starting each zlib stream at the first message that
    needs it instead of at the handshake, so that an idle connection holds none
    (docs/upstream.md#uvicorn-idle-zlib).

    It also bounds what a message inflates to by ``max_message_size`` itself, exactly, output
    zlib holds back included (docs/upstream.md#uvicorn-compressed-limit)."""

    decoder: zlib._Decompress | None = None
    encoder: zlib._Compress | None = None
    # What the message being read has inflated to so far.
    inflated = 0

    def __init__(self, *args: Any, max_message_size: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_message_size = max_message_size
        # Let go of the streams websockets has just started; the class's None stands in.
        self.__dict__.pop("decoder", None)
        self.__dict__.pop("encoder", None)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if self.decoder is None and not self.remote_no_context_takeover:
            self.decoder = zlib.decompressobj(wbits=-self.remote_max_window_bits)
        if frame.opcode in DATA_OPCODES:
            self.inflated = 0  # a new message; control frames may come between its fragments
        budget = self.max_message_size - self.inflated
        try:
            # One byte more than the budget: output that reaches it is a message over the limit.
            decoded = super().decode(frame, max_size=budget + 1)
        except PayloadTooBig:
            raise PayloadTooBig(None, budget) from None
        if decoded is not frame:
            self.inflated += len(decoded.data)
            if self.inflated > self.max_message_size:
                raise PayloadTooBig(None, budget)
        return decoded

    def encode(self, frame: Frame) -> Frame:
        if self.encoder is None and not self.local_no_context_takeover:
            self.encoder = zlib.compressobj(
                wbits=-self.local_max_window_bits, **self.compress_settings
            )
        return super().encode(frame)


class LazyDeflateFactory(ServerPerMessageDeflateFactory):
    """websockets' negotiation, RFC 7692's rules and all, making ``LazyPerMessageDeflate``
    (docs/upstream.md#uvicorn-idle-zlib)."""

    def __init__(self, *, max_message_size: int, **options: Any) -> None:
        super().__init__(**options)
        self.max_message_size = max_message_size

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, extension = super().process_request_params(params, accepted_extensions)
        return response, LazyPerMessageDeflate(
            extension.remote_no_context_takeover,
            extension.local_no_context_takeover,
            extension.remote_max_window_bits,
            extension.local_max_window_bits,
            extension.compress_settings,
            max_message_size=self.max_message_size,
        )


class EchoServerProtocol(ServerProtocol):
    """websockets' server side of the handshake, declining an extensions header it cannot
    parse (docs/upstream.md#uvicorn-unparsable-extensions)."""

    def process_extensions(self, headers: Headers) -> tuple[str | None, list[Extension]]:
        try:
            return super().process_extensions(headers)
        except InvalidHeaderFormat:
            return None, []


class RequestHeadTooLarge(Exception):
    """A complete request head over MAX_REQUEST_HEAD."""


class EchoHTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline (docs/upstream.md#uvicorn-silent-connection)
    and a size limit (docs/upstream.md#uvicorn-unreadable-handshake) for the request head."""

    # The first request head must be complete by this; after a refusal, the client must have
    # gone by it.
    deadline: asyncio.TimerHandle | None = None
    reading_head = True
    head_size = 0
    heads_read = 0
    refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.connection_id = new_connection_id()
        self.timeout_keep_alive = settings.ECHO_HANDSHAKE_TIMEOUT
        self.deadline = self.loop.call_later(
            settings.ECHO_HANDSHAKE_TIMEOUT, self.handshake_expired
        )

    def data_received(self, data: bytes) -> None:
        """uvicorn's, except that a malformed request, or a head over MAX_REQUEST_HEAD, is
        refused and logged as the client's error, and an unsupported ``Upgrade`` is left to the
        application (which answers it as plain HTTP) without a WARNING
        (docs/upstream.md#uvicorn-malformed-request-log,
        docs/upstream.md#uvicorn-unreadable-handshake); and bytes that follow a WebSocket
        handshake in the same read reach the WebSocket
        (docs/upstream.md#uvicorn-message-with-handshake)."""
        if self.refused:
            return  # read and dropped until the client closes, or the deadline passes
        self._unset_keepalive_if_required()
        heads_before = self.heads_read
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, RequestHeadTooLarge):
                self.refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            else:
                self.refuse(HTTPStatus.BAD_REQUEST)
            return
        except httptools.HttpParserUpgrade as upgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                (offset,) = upgrade.args
                if offset < len(data):
                    self.transport.get_protocol().data_received(data[offset:])
            return
        if self.reading_head and self.heads_read == heads_before:
            # All of this read is part of a request head that is still not complete.
            self.head_size += len(data)
            if self.head_size > MAX_REQUEST_HEAD:
                self.refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def on_headers_complete(self) -> None:
        # A whole request head arrived in time: from here on the request, or the WebSocket,
        # governs the connection.
        self.cancel_deadline()
        self.heads_read += 1
        self.reading_head, self.head_size = False, 0
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_REQUEST_HEAD:
            raise RequestHeadTooLarge(size)  # httptools raises it on, as a parser error
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True

    def refuse(self, status: HTTPStatus) -> None:
        """Answers ``status`` and ends the server's side of TCP, reading on, so that the answer
        is not lost to a reset while the client is still sending its request."""
        self.refused = True
        log_http_refused(connection(self.connection_id, self.client), status)
        self.cancel_deadline()
        self.transport.write(plain_response(status))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.deadline = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_deadline()
        super().connection_lost(exc)

    def handshake_expired(self) -> None:
        self.deadline = None
        log_handshake_timeout(
            connection(self.connection_id, self.client), settings.ECHO_HANDSHAKE_TIMEOUT
        )
        self.transport.close()

    def cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None


class EchoWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with the project's limits and close rules."""

    # The close frame of a failed connection (1002, 1007, 1009), with any control frames
    # written before it, waiting for the application to answer the messages before the error
    # (docs/upstream.md#uvicorn-messages-before-error).
    held_writes: list[bytes] | None = None
    # The pongs websockets wrote in a read that ended in the client's close or in an error,
    # sent with the close frame once the messages before it are handled.
    pongs_before_close: list[bytes] | None = None
    failed = False
    client_finished = False
    application_done = False
    text_decoder: codecs.IncrementalDecoder | None = None
    # The raw bytes of a fragmented text message, checked as each fragment arrives.
    text_bytes: bytearray | None = None
    # What has been read and not yet handed to websockets: everything after the handshake
    # request until the application has accepted, then, on a compressed connection, what
    # feed_frames hands over a frame at a time; None on other connections once open.
    unread: bytearray | None = None
    # Reading paused while what came after the handshake request waits for the accept.
    paused_for_accept = False
    # The bytes of the frame being handed over that are still to come.
    frame_left = 0
    # The message being read: whether it is compressed, and its frames' size on the wire.
    message_compressed = False
    message_wire_size = 0
    # The size of the message being read, as far as websockets has handed it over.
    message_size = 0
    # A message refused with 1009 before websockets read it, with its size where known.
    too_big_size: int | None = None
    # Checks a text frame's UTF-8 as it arrives, once the connection is open.
    text_check: TextFrameCheck | None = None

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.connection_id = new_connection_id()
        # The handshake's headers, once read: they name the client behind a trusted proxy.
        self.request_headers: Any = ()
        # Rebuilt with the project's size limit and compression settings
        # (docs/upstream.md#uvicorn-settings).
        extensions = []
        if settings.ECHO_COMPRESSION:
            extensions.append(
                LazyDeflateFactory(
                    max_message_size=settings.ECHO_MAX_MESSAGE_SIZE,
                    server_max_window_bits=COMPRESSION_WINDOW_BITS,
                    client_max_window_bits=COMPRESSION_WINDOW_BITS,
                    compress_settings={"memLevel": COMPRESSION_MEMORY_LEVEL},
                )
            )
        self.max_message_size = settings.ECHO_MAX_MESSAGE_SIZE
        self.conn = EchoServerProtocol(
            extensions=extensions,
            max_size=self.max_message_size + CONTROL_FRAME_ROOM,
            logger=self.conn.logger,
        )
        self.ping_interval = settings.ECHO_PING_INTERVAL
        self.ping_timeout = settings.ECHO_PING_TIMEOUT
        self.close_timeout = CLOSE_TIMEOUT

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return  # RFC 6455 section 7.1.7: nothing after the error is read
        if self.unread is not None:
            self.unread += data
            if not self.handshake_complete:
                if len(self.unread) > MAX_REQUEST_HEAD and not self.paused_for_accept:
                    self.paused_for_accept = True
                    self.transport.pause_reading()
                return
            self.feed_frames()
            return
        text_check = self.text_check  # None for the handshake, which sets it up
        self.process(data)
        if text_check is not None:
            self.check_text(data)

    def feed_frames(self) -> None:
        """Hands websockets what a compressed connection has read, a frame at a time, and none
        past the end of a message until the application has taken it
        (docs/upstream.md#uvicorn-frames-already-read). Sizes are checked before websockets
        reads a frame (``admit_frame``).
        """
        unread = self.unread
        assert unread is not None
        if not self.handshake_complete:
            return
        while unread and not self.failed:
            if self.frame_left == 0:
                if self.read_paused and not self.close_sent:
                    return  # receive() feeds on once the application has caught up
                header = frame_header(unread)
                if header is None:
                    return
                header_size, length = header
                if not self.admit_frame(unread[0], length):
                    return
                self.frame_left = header_size + length
            chunk = unread[: self.frame_left]
            del unread[: len(chunk)]
            self.frame_left -= len(chunk)
            self.process(chunk)
            self.check_text(chunk)

    def admit_frame(self, first_byte: int, length: int) -> bool:
        """Whether a frame keeps its message within the limit; if not, the connection fails
        with 1009 before websockets reads it. Uncompressed, the wire bytes are the message's;
        compressed, they are bounded by what deflate can make of the limit at worst, and
        ``LazyPerMessageDeflate`` bounds what they inflate to
        (docs/upstream.md#uvicorn-compressed-limit)."""
        opcode = first_byte & 0x0F
        if opcode >= Opcode.CLOSE:
            return True  # a control frame: websockets bounds and checks it
        if opcode != Opcode.CONT:
            self.message_compressed = bool(first_byte & 0x40)
            self.message_wire_size = 0
        self.message_wire_size += length
        if self.message_compressed:
            if self.message_wire_size <= compressed_size_bound(self.max_message_size):
                return True
            self.refuse_too_big(None)
        elif self.message_wire_size <= self.max_message_size:
            return True
        else:
            self.refuse_too_big(self.message_wire_size)
        return False

    def check_text(self, data: bytes | bytearray) -> None:
        """Fails the connection with 1007 as soon as a text frame still arriving is not UTF-8
        (docs/upstream.md#uvicorn-utf8-partial-frame)."""
        if self.failed or self.text_check is None:
            return
        message = None if self.message_compressed else self.text_decoder
        error = self.text_check.read(data, message)
        if error is not None:
            self.invalid_utf8(error)

    async def receive(self) -> Any:
        message = await super().receive()
        if not self.writable.is_set():
            # docs/upstream.md#uvicorn-ping-flood
            self.transport.pause_reading()  # uvicorn resumed it: the client is still not reading
        elif self.unread and not self.read_paused:
            self.feed_frames()
        return message

    def process(self, data: bytes | bytearray) -> None:
        """What the connection does with bytes it has read: websockets parses them, and the
        handshake, the messages, a close or an error are answered."""
        self.conn.receive_data(data)
        if self.conn.handshake_exc is not None and not self.handshake_initiated:
            self.refuse_handshake()
            return
        if self.conn.close_rcvd is None and self.conn.parser_exc is None:
            self.handle_events()
            return
        if self.conn.close_rcvd is not None and self.close_sent:
            self.transport.close()  # the client answered the server's close
            return
        # websockets answered the client's close, or failed the connection, as it read the
        # frame; its close frame waits until the messages before it are handled, as one of them
        # may fail the connection first (docs/upstream.md#uvicorn-close-read-ahead).
        written = self.conn.data_to_send()
        self.pongs_before_close = without_close(written)
        self.handle_events()
        if self.failed:
            return
        if self.conn.close_rcvd is not None:
            self.answer_close()
            return
        self.pongs_before_close = None
        close = self.conn.close_sent
        if isinstance(self.conn.parser_exc, PayloadTooBig):
            # websockets' reason names its own limit, which is not the project's.
            close = Close(CloseCode.MESSAGE_TOO_BIG, TOO_BIG_REASON)
            written = [*without_close(written), close_frame(close)]
        self.fail(written, close)

    def handle_connect(self, event: Request) -> None:
        # 426 for an unsupported version (docs/upstream.md#uvicorn-version-426); a missing or
        # malformed one is left to websockets' checks (400).
        self.request_headers = event.headers
        versions = event.headers.get_all("Sec-WebSocket-Version")
        if len(versions) == 1 and versions[0].isdigit() and versions[0] != SUPPORTED_VERSION:
            log_refused_handshake(
                self.connection(),
                HTTPStatus.UPGRADE_REQUIRED,
                f"unsupported version {versions[0]}",
            )
            response = self.conn.reject(
                HTTPStatus.UPGRADE_REQUIRED,
                f"Unsupported WebSocket version; this server speaks {SUPPORTED_VERSION}.\n",
            )
            response.headers["Sec-WebSocket-Version"] = SUPPORTED_VERSION
            self.handshake_initiated = self.handshake_complete = self.close_sent = True
            self.conn.send_response(response)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
            return
        super().handle_connect(event)
        if self.response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            error = self.conn.handshake_exc
            log_refused_handshake(self.connection(), self.response.status_code, str(error))
            return
        # The application starts once this returns; it names the connection by the same id.
        self.scope = with_connection_id(  # type: ignore[assignment]
            self.scope, self.connection_id, self.max_message_size
        )
        self.text_check = TextFrameCheck()
        # What follows the request waits for the application's accept
        # (docs/upstream.md#uvicorn-frames-with-handshake).
        self.unread = bytearray()
        if self.conn.extensions:
            # Compression is on: frames reach websockets through feed_frames, which checks the
            # limit; websockets' own bound is then for a frame on the wire
            # (docs/upstream.md#uvicorn-compressed-limit).
            self.conn.max_message_size = (
                compressed_size_bound(self.max_message_size) + CONTROL_FRAME_ROOM
            )

    def connection(self) -> Connection:
        """The connection as every log line names it, the application's included."""
        return connection(self.connection_id, self.client, self.request_headers)

    def refuse_handshake(self) -> None:
        """Answers a request head websockets could not read: its 431, or a 400 for a head it
        cannot parse at all (docs/upstream.md#uvicorn-unreadable-handshake)."""
        error = self.conn.handshake_exc
        written = b"".join(self.conn.data_to_send())
        if isinstance(error, SecurityError):
            status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        else:
            status = HTTPStatus.BAD_REQUEST
        if not written:
            written = self.conn.reject(status, f"{status.phrase}.\n").serialize()
        log_http_refused(self.connection(), status)
        self.handshake_initiated = self.handshake_complete = self.close_sent = True
        self.transport.write(written)
        self.transport.close()

    def within_limit(self, event: Frame) -> bool:
        """Whether a data frame keeps its message within the limit; if not, the connection
        fails with 1009 (websockets' own limit leaves room for a control frame)."""
        size = len(event.data)
        if event.opcode is Opcode.CONT:
            size += self.message_size
        self.message_size = size
        if size <= self.max_message_size:
            return True
        self.refuse_too_big(size)
        return False

    def handle_bytes(self, event: Frame) -> None:
        if self.within_limit(event):
            super().handle_bytes(event)

    def handle_text(self, event: Frame) -> None:
        if not self.within_limit(event):
            return
        if event.fin:
            super().handle_text(event)
            return
        # The first fragment of a text message: its UTF-8 is checked as each fragment arrives
        # (docs/upstream.md#uvicorn-utf8-first-fragment).
        self.curr_msg_data_type = "text"
        self.frames = []
        self.text_decoder = UTF8_DECODER()
        self.text_bytes = bytearray()
        self.decode_fragment(event.data, final=False)

    def handle_cont(self, event: Frame) -> None:
        if self.failed or not self.within_limit(event):
            return  # after an error, what websockets read with it is dropped
        if self.text_decoder is None:
            # A binary fragment: into one buffer (docs/upstream.md#uvicorn-fragment-list).
            message = self.frames[0]
            if not isinstance(message, bytearray):
                message = self.frames[0] = bytearray(message)
            message += event.data
            if event.fin:
                self.send_receive_event_to_app()
            return
        text = self.decode_fragment(event.data, final=event.fin)
        if text is not None and event.fin:
            self.text_decoder = self.text_bytes = None
            self.deliver({"type": "websocket.receive", "text": text.decode()})

    def decode_fragment(self, data: bytes, final: bool) -> bytearray | None:
        """The message's bytes so far, checked as UTF-8 to here; None if they are not UTF-8,
        the connection then failed."""
        assert self.text_decoder is not None
        assert self.text_bytes is not None
        try:
            self.text_decoder.decode(data, final)
        except UnicodeDecodeError as error:
            self.text_decoder = self.text_bytes = None
            self.invalid_utf8(error)
            return None
        self.text_bytes += data
        return self.text_bytes

    def send_receive_event_to_app(self) -> None:
        """uvicorn's, except that text which is not UTF-8 fails the connection as the client's
        error (docs/upstream.md#uvicorn-invalid-utf8-error-log)."""
        data = bytes(self.frames[0]) if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError as error:
                self.invalid_utf8(error)
                return
            self.deliver({"type": "websocket.receive", "text": text})
        else:
            self.deliver({"type": "websocket.receive", "bytes": data})

    def deliver(self, message: dict[str, Any]) -> None:
        """Hands a message to the application; reading pauses until it takes it (uvicorn's
        backpressure)."""
        if self.close_sent or self.failed:
            return
        self.queue.put_nowait(message)  # type: ignore[arg-type]
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def invalid_utf8(self, error: UnicodeDecodeError) -> None:
        self.fail_for(CloseCode.INVALID_DATA, f"{error.reason} at position {error.start}")

    def refuse_too_big(self, size: int | None) -> None:
        """Fails the connection with 1009 for a message the project's limit refuses, logged
        with ``size`` (None: not known)."""
        self.too_big_size = size
        self.fail_for(CloseCode.MESSAGE_TOO_BIG, TOO_BIG_REASON)

    def fail_for(self, code: CloseCode, reason: str) -> None:
        """Fails the connection for an error websockets did not see (the project's checks)."""
        if self.failed:
            return
        if self.pongs_before_close is None:
            self.conn.fail(code, reason)
            self.fail(self.conn.data_to_send(), self.conn.close_sent)
            return
        # The client's close, or an error, came after this message, in the same read: the
        # message fails the connection first, and websockets' close frame is not sent.
        close = Close(code, reason)
        held, self.pongs_before_close = [*self.pongs_before_close, close_frame(close)], None
        self.fail(held, close)

    def handle_close(self, event: Frame) -> None:
        """Nothing to do here: ``data_received`` answers the client's close (``answer_close``)
        after the messages read with it, or ends TCP when it answers the server's close
        (docs/upstream.md#uvicorn-close-read-ahead)."""

    def answer_close(self) -> None:
        """Answers the client's close with its own code and reason, or 1000 for a close without
        a code (docs/upstream.md#uvicorn-codeless-close), also between the fragments of a
        message, which are dropped (docs/upstream.md#uvicorn-close-between-fragments)."""
        close = self.conn.close_rcvd
        assert close is not None
        assert self.pongs_before_close is not None
        self.frames, self.text_decoder, self.text_bytes = [], None, None
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
        )
        if close.code == CloseCode.NO_STATUS_RCVD:
            reply = NORMAL_CLOSE_FRAME
        else:
            reply = close_frame(close)
        self.transport.write(b"".join(self.pongs_before_close) + reply)
        self.pongs_before_close = None
        self.transport.close()

    def fail(self, held: list[bytes], close: Close | None) -> None:
        """Fails the connection (RFC 6455 section 7.1.7) with ``close``, whose frame is in
        ``held``, sent once the application has answered the messages before the error
        (docs/upstream.md#uvicorn-messages-before-error): as under daphne, the application is
        told the connection is ending, after those messages, and the close frame follows when
        it is done, or FAILURE_GRACE later.
        """
        if self.failed:
            assert self.held_writes is not None
            self.held_writes.extend(held)
            return
        assert close is not None
        self.failed = True
        self.held_writes = held
        self.log_failure(close)
        self.stop_keepalive()
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
        )
        if self.close_timer is not None:
            self.close_timer.cancel()
        if self.application_done:
            self.release_close()
        else:
            self.close_timer = self.loop.call_later(FAILURE_GRACE, self.release_close)

    def log_failure(self, close: Close) -> None:
        # docs/upstream.md#uvicorn-unlogged-failures
        if close.code != CloseCode.MESSAGE_TOO_BIG:
            log_protocol_error(self.connection(), close.code, close.reason)
            return
        size = self.too_big_size
        error = self.conn.parser_exc
        if isinstance(error, PayloadTooBig) and error.size is not None:
            # A frame websockets refused by its header: the message's size is known, unless
            # the frame was compressed.
            size = None if self.message_compressed else error.size + (error.current_size or 0)
        log_too_big(self.connection(), size, self.max_message_size)

    def release_close(self) -> None:
        """Sends the held close frame and ends the server's side of TCP, as websockets asks
        (``SEND_EOF``); what the client still sends is read and dropped until it ends its side,
        CLOSE_TIMEOUT at most, so the close frame is never cut off by a reset."""
        if self.held_writes is None:
            return
        held, self.held_writes = self.held_writes, None
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_sent = True
        self.transport.write(b"".join(held))
        if self.client_finished or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.close_timer = self.loop.call_later(self.close_timeout, self.close_wait_expired)

    def close_wait_expired(self) -> None:
        self.close_timer = None
        if self.transport.get_write_buffer_size():
            # The client has not even read the close frame: it is not listening.
            self.transport.abort()
        else:
            self.transport.close()

    def eof_received(self) -> bool | None:
        if self.held_writes is None:
            return None
        # The client has finished sending; its echoes and the close frame still go out.
        self.client_finished = True
        return True

    def keepalive_timeout(self) -> None:
        """A client that does not answer a ping is not listening: it is dropped without a
        close frame (docs/upstream.md#uvicorn-ping-timeout)."""
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        log_ping_timeout(self.connection(), self.ping_timeout)
        self.transport.abort()

    def on_task_complete(self, task: asyncio.Task[None]) -> None:
        super().on_task_complete(task)
        self.application_done = True
        self.release_close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.handshake_complete and not self.close_sent and self.conn.close_rcvd is None:
            # Gone without a closing handshake: 1006, as under daphne
            # (docs/upstream.md#uvicorn-client-disconnected).
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": CloseCode.ABNORMAL_CLOSURE}
            )
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.held_writes = None
        super().connection_lost(exc)

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if self.held_writes is not None:
                # An answer to a message from before the error: it goes out ahead of the close.
                self.transport.write(self.data_frame(message))
                return
            if self.conn.state is not State.OPEN:
                # The close has begun: nothing may follow a close frame, and the application
                # hears of the end from websocket.disconnect, as under daphne.
                return
            try:  # noqa: SIM105 (contextlib.suppress costs an object per message)
                await super().send(message)
            except ClientDisconnected:
                # The client is gone, perhaps while the send waited for it to read (a slow
                # reader): websocket.disconnect tells the application
                # (docs/upstream.md#uvicorn-client-disconnected).
                pass
            return
        if kind == "websocket.close" and self.failed:
            return
        await super().send(message)
        if kind == "websocket.accept" and self.handshake_complete:
            self.read_after_accept()
        elif self.unread and kind == "websocket.close":
            self.feed_frames()  # the client's answer may be among what waits

    def read_after_accept(self) -> None:
        """Reads what the client sent after its handshake request, now that the 101 is out;
        on a connection without compression, later reads then go to websockets directly."""
        held = self.unread
        if held is None:
            return
        if self.paused_for_accept:
            self.paused_for_accept = False
            self.transport.resume_reading()
        if self.conn.extensions:
            self.feed_frames()
            return
        self.unread = None
        if held:
            self.data_received(bytes(held))

    def pause_writing(self) -> None:
        """The client is not reading what it is sent: it is not read from either
        (docs/upstream.md#uvicorn-ping-flood)."""
        super().pause_writing()
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self.read_paused and not self.paused_for_accept:
            self.transport.resume_reading()

    def data_frame(self, message: dict[str, Any]) -> bytes:
        text = message.get("text")
        if text is not None:
            frame = Frame(Opcode.TEXT, text.encode())
        else:
            frame = Frame(Opcode.BINARY, message.get("bytes") or b"")
        return frame.serialize(mask=False, extensions=self.conn.extensions)

    def shutdown(self) -> None:
        # 1001 with a reason, and 503 to a handshake not yet answered
        # (docs/upstream.md#uvicorn-shutdown-close), with the client given CLOSE_TIMEOUT
        # (docs/upstream.md#uvicorn-shutdown-silent-client).
        if self.close_sent or self.failed or self.initial_response is not None:
            super().shutdown()
            self.abort_later()
            return
        self.stop_keepalive()
        if self.handshake_complete:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": CloseCode.GOING_AWAY})
            self.conn.send_close(CloseCode.GOING_AWAY, SHUTDOWN_REASON)
            self.close_sent = True
            self.transport.write(b"".join(self.conn.data_to_send()))
            # The client has CLOSE_TIMEOUT to answer, as under daphne; data_received ends TCP
            # when it does.
            if self.close_timer is not None:
                self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self.close_wait_expired)
            return
        # The application has not answered the handshake yet. As after uvicorn's own 403,
        # nothing more may go out: not its accept, nor uvicorn's 500 when it gives up.
        response = self.conn.reject(HTTPStatus.SERVICE_UNAVAILABLE, f"{SHUTDOWN_REASON}\n")
        self.conn.send_response(response)
        self.handshake_complete = self.close_sent = True
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()
        self.abort_later()

    def abort_later(self) -> None:
        """Ends TCP after CLOSE_TIMEOUT if closing has not
        (docs/upstream.md#uvicorn-shutdown-silent-client)."""
        self.loop.call_later(self.close_timeout, self.transport.abort)

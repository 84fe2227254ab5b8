"""The project's adjustments to daphne, and to autobahn and Twisted beneath it, kept in this one
module.

daphne 4.2 serves the project, under ``manage.py runserver`` and the ``daphne`` command alike,
only with these adjustments: the project's limits, timeouts and compression settings, RFC 6455's
close behaviour, log lines for what clients get wrong, and memory bounded per connection.
``EchoServer`` is daphne's server built from the classes below. Nothing here changes a class of
daphne's, autobahn's or Twisted's: ``manage.py runserver`` serves with ``EchoServer`` through its
``server_cls`` (``servers/management/commands/runserver.py``), and the ``daphne`` command is told
to when it imports the application (``servers/daphne_command.py``); no other process imports
this module. ``servers.uvicorn`` does the same for uvicorn, and the two share their constants
and log lines through ``servers``.

Each adjustment cites its entry of docs/upstream.md, which says what stock daphne does wrong,
the test that shows it still does, and when the adjustment can be deleted. The internals of
daphne, autobahn and Twisted used here are listed in ``tests/test_server_contracts.py``, and the
releases they were checked against are pinned in ``pyproject.toml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any

from autobahn.exception import PayloadExceededError
from autobahn.util import encode_truncate
from autobahn.websocket.compress import PERMESSAGE_COMPRESSION_EXTENSION
from autobahn.websocket.compress_deflate import (
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from autobahn.websocket.types import ConnectionDeny
from daphne.http_protocol import HTTPFactory
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from twisted.internet import defer, reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import STDLibLogObserver, globalLogBeginner
from twisted.web import http

from servers import (
    CLOSE_TIMEOUT,
    COMPRESSION_MEMORY_LEVEL,
    COMPRESSION_WINDOW_BITS,
    FAILURE_GRACE,
    SHUTDOWN_REASON,
    TOO_BIG_REASON,
    Client,
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
    peer_name,
    plain_response,
    with_connection_id,
)

logger = logging.getLogger(__name__)

SUPPORTED_VERSION = 13
# A close frame is a control frame: 125 bytes at most, two of them for the code.
MAX_CLOSE_REASON_BYTES = 123
# Reading from a client pauses while more than this waits in Twisted's write buffer for it...
WRITE_HIGH_WATER = 256 * 1024
# ...or while this many of its messages, or ECHO_MAX_MESSAGE_SIZE bytes of them, wait for the
# application.
MAX_PENDING_MESSAGES = 16
# On shutdown, open WebSockets get this long to answer their 1001 close before the process exits.
SHUTDOWN_GRACE = 5.0


class BoundedPerMessageDeflate(PerMessageDeflate):
    """autobahn's permessage-deflate, refusing every message that inflates past the limit:
    output still waiting in zlib means the same as input left over
    (docs/upstream.md#daphne-inflate-past-limit).
    """

    def decompress_message_data(self, data: bytes, max_output_len: int | None = None) -> bytes:
        output: bytes = super().decompress_message_data(data, max_output_len)
        if self._decompressor.decompress(b"", 1):
            raise PayloadExceededError("WebSocket message exceeds decompression limit")
        return output


def socket_peer(transport: Any) -> Client:
    """The address at the other end of a Twisted transport, as ``peer_name`` takes it."""
    peer = transport.getPeer()
    return [getattr(peer, "host", "unknown"), getattr(peer, "port", 0)]


# A window size as RFC 7692 (section 7.1.2) writes it: a decimal integer without leading zeros.
WINDOW_BITS_FORM = re.compile(r"[1-9][0-9]*")


def readable_offer(params: dict[str, list[str | bool]]) -> bool:
    """Whether a permessage-deflate offer can be accepted as RFC 7692 reads it: autobahn's
    parser can read it, and its window sizes are written as section 7.1.2 says
    (docs/upstream.md#daphne-window-bits-form)."""
    for name in ("server_max_window_bits", "client_max_window_bits"):
        for value in params.get(name, ()):
            if isinstance(value, str) and not WINDOW_BITS_FORM.fullmatch(value):
                return False
    try:
        PerMessageDeflateOffer.parse(params)
    except Exception:  # autobahn raises Exception itself for every flaw
        return False
    return True


def offered_subprotocols(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The subprotocols of a handshake's ``Sec-WebSocket-Protocol``, as the client wrote them,
    not URL-unquoted (docs/upstream.md#daphne-unquoted-subprotocols)."""
    subprotocols: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            subprotocols = [offer.strip() for offer in value.decode("latin-1").split(",")]
    return subprotocols


@dataclass(frozen=True, slots=True)
class OpenedRequest:
    """What is left of a handshake request once the connection is open."""

    path: str


class EchoWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol with the project's limits and RFC 6455's close behaviour."""

    flush_deadline: IDelayedCall | None = None
    # The permessage-deflate offer accepted in the handshake, until the connection opens.
    compression: PerMessageDeflateOfferAccept | None = None
    # A failure (code and reason) whose close frame waits for the application; see
    # _fail_connection.
    held_failure: tuple[int, str] | None = None
    held_failure_deadline: IDelayedCall | None = None
    closed_by_client_while_held = False
    # After a failure's close frame: what the client sends is read and dropped until it closes.
    discarding = False
    client_backlogged = False
    reading_paused = False
    max_message_size = 0
    # The bytes the message being read has taken on the wire so far.
    message_wire_size = 0
    # The message being read, gathered from its frames once it has more than one.
    message_buffer: bytearray | None = None
    # How the log names the connection, once the handshake's headers are gone (onOpen).
    identity: Connection | None = None

    def connectionMade(self) -> None:
        self.connection_id = new_connection_id()
        # Set before autobahn starts, these options win over the factory's
        # (docs/upstream.md#daphne-settings). autobahn's limits are off: the project's applies
        # in inflated bytes (docs/upstream.md#daphne-compressed-limit). Then the versions
        # (docs/upstream.md#daphne-protocol-versions) and the close behaviour
        # (docs/upstream.md#daphne-fail-by-drop, docs/upstream.md#daphne-close-code-echo).
        self.maxMessagePayloadSize = 0
        self.maxFramePayloadSize = 0
        self.max_message_size = settings.ECHO_MAX_MESSAGE_SIZE
        self.openHandshakeTimeout = settings.ECHO_HANDSHAKE_TIMEOUT
        self.autoPingInterval = settings.ECHO_PING_INTERVAL
        self.autoPingTimeout = settings.ECHO_PING_TIMEOUT
        self.closeHandshakeTimeout = CLOSE_TIMEOUT
        self.versions = [SUPPORTED_VERSION]
        self.failByDrop = False
        self.echoCloseCodeReason = True
        super().connectionMade()
        # Take over as the socket's producer from daphne's HTTP channel, so that Twisted tells
        # this connection when the client stops taking what is written to it
        # (docs/upstream.md#daphne-backpressure).
        self.transport.unregisterProducer()
        self.transport.bufferSize = WRITE_HIGH_WATER
        self.transport.registerProducer(self, True)

    def _parseExtensionsHeader(
        self, header: str, removeQuotes: bool = True
    ) -> list[tuple[str, dict[str, list[str | bool]]]]:
        """autobahn's, keeping of the compression offers only the permessage-deflate ones it can
        read (docs/upstream.md#daphne-unreadable-offer)."""
        extensions = super()._parseExtensionsHeader(header, removeQuotes)
        return [
            (name, params)
            for name, params in extensions
            if name not in PERMESSAGE_COMPRESSION_EXTENSION
            or (name == PerMessageDeflateOffer.EXTENSION_NAME and readable_offer(params))
        ]

    def perMessageCompressionAccept(
        self, offers: list[PerMessageDeflateOffer]
    ) -> PerMessageDeflateOfferAccept | None:
        """autobahn's hook for the client's permessage-deflate offers: the first is accepted,
        within what it allows, with the project's window and memory level (ECHO_COMPRESSION;
        docs/upstream.md#daphne-compression-off)."""
        if not settings.ECHO_COMPRESSION:
            return None
        offer = offers[0]
        # autobahn keeps whether the client lets the server choose its window, not the largest
        # value it allows: that is read from the offer itself.
        params = next(
            params
            for name, params in self.websocket_extensions
            if name == PerMessageDeflateOffer.EXTENSION_NAME
        )
        client_limit = params.get("client_max_window_bits", [True])[0]
        client_window = 0
        if offer.accept_max_window_bits:
            client_window = COMPRESSION_WINDOW_BITS
            if client_limit is not True:
                client_window = min(client_window, int(client_limit))
        self.compression = PerMessageDeflateOfferAccept(
            offer,
            request_max_window_bits=client_window,
            window_bits=min(COMPRESSION_WINDOW_BITS, offer.request_max_window_bits or 15),
            mem_level=COMPRESSION_MEMORY_LEVEL,
            max_message_size=settings.ECHO_MAX_MESSAGE_SIZE,
        )
        return self.compression

    def onConnect(self, request: Any) -> Any:
        # docs/upstream.md#daphne-shutdown-close
        if self.factory.server_class.draining:
            raise ConnectionDeny(503, SHUTDOWN_REASON)
        # docs/upstream.md#daphne-non-ascii-subprotocol (the other values daphne hands on as
        # bytes).
        if not request.headers.get("sec-websocket-protocol", "").isascii():
            raise ConnectionDeny(400, "Sec-WebSocket-Protocol is not ASCII")
        return super().onConnect(request)

    def onOpen(self) -> None:
        self.server.websocket_opened(self)
        if self.compression is not None:
            # What autobahn built from the accepted offer, with the bound made exact
            # (docs/upstream.md#daphne-inflate-past-limit); no message has been read with it yet.
            self._perMessageCompress = BoundedPerMessageDeflate.create_from_offer_accept(
                True, self.compression
            )
            self.websocket_extensions_in_use = [self._perMessageCompress]
            self.compression = None
        self.identity = self.connection()
        # docs/upstream.md#daphne-handshake-kept
        self.http_request_data = self.http_response_data = None
        self.http_headers = {}
        # daphne reads only the path of the parsed request from here on (for its access log).
        self.request = OpenedRequest(self.request.path)
        super().onOpen()

    def pauseProducing(self) -> None:
        self.client_backlogged = True
        self.update_reading()

    def resumeProducing(self) -> None:
        self.client_backlogged = False
        self.update_reading()

    def stopProducing(self) -> None:
        """Twisted's signal that the connection is gone; connectionLost does the cleaning up."""

    def update_reading(self) -> None:
        """Reads from the client only while its echoes flow out and the application keeps up
        (docs/upstream.md#daphne-backpressure); the application's queue calls back as soon as
        it has caught up."""
        queue = getattr(self, "application_queue", None)
        application_behind = queue is not None and queue.behind()
        if application_behind:
            queue.on_caught_up = self.update_reading
        pause = not self.discarding and (
            self.client_backlogged or application_behind or self.held_failure is not None
        )
        if pause != self.reading_paused and self.transport is not None:
            self.reading_paused = pause
            if pause:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()
                if self.data:
                    self.consumeData()  # the frames read before the pause

    def processData(self) -> bool:
        """autobahn's parsing of what has been read, one frame at a time, stopping between
        frames while reading is paused (docs/upstream.md#daphne-frames-already-read)."""
        if self.reading_paused and self.current_frame is None:
            return False
        return super().processData()  # type: ignore[no-any-return]

    def onMessageBegin(self, isBinary: bool) -> None:
        super().onMessageBegin(isBinary)
        self.message_wire_size = 0
        self.message_buffer = None

    def onMessageFrame(self, payload: list[bytes]) -> None:
        """From its second frame on, a message is gathered in one buffer
        (docs/upstream.md#daphne-fragment-list)."""
        if self.failedByMe:
            return
        if self.message_buffer is None:
            if not self.message_data:
                self.message_data.extend(payload)  # a first frame, kept as autobahn keeps it
                return
            self.message_buffer = bytearray().join(self.message_data)
            self.message_data = [self.message_buffer]
        for chunk in payload:
            self.message_buffer += chunk

    def onMessageFrameBegin(self, length: int) -> None:
        """Refuses a message over the limit as soon as its frame headers say so
        (docs/upstream.md#daphne-compressed-limit). Uncompressed,
        the wire bytes are the message's; compressed, inflation is bounded by the extension
        (``BoundedPerMessageDeflate``), and the wire bytes only by what deflate can make of
        the limit at worst."""
        super().onMessageFrameBegin(length)
        if self.failedByMe:
            return
        self.message_wire_size += length
        if self._isMessageCompressed:
            if self.message_wire_size > compressed_size_bound(self.max_message_size):
                self.refuse_too_big(None)
        elif self.message_wire_size > self.max_message_size:
            self.refuse_too_big(self.message_wire_size)

    def _max_message_size_exceeded(self, msg_size: int, max_msg_size: int, reason: str) -> None:
        """autobahn's hook, called (its own size checks being off) when a compressed message
        inflates past the limit; inflation stops there, so its whole size is unknown."""
        self.refuse_too_big(None)

    def refuse_too_big(self, size: int | None) -> None:
        """Fails the connection with 1009, logged here: the application never sees the message
        (docs/upstream.md#daphne-too-big-log)."""
        log_too_big(self.connection(), size, self.max_message_size)
        self._fail_connection(self.CLOSE_STATUS_CODE_MESSAGE_TOO_BIG, TOO_BIG_REASON)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.message_buffer = None  # joined into payload: an idle connection keeps no copy
        if self.state != self.STATE_OPEN:
            # After the server's close frame, a message has nowhere to go (its echo could not
            # be sent), and queueing it would let a closing client grow the server
            # (docs/upstream.md#daphne-frames-already-read).
            return
        super().onMessage(payload, isBinary)
        # All a message can change is whether the application has fallen behind; the other
        # reasons to pause are taken up where they change (docs/upstream.md#daphne-backpressure).
        if self.reading_paused or self.application_queue.behind():
            self.update_reading()

    def _fail_connection(self, code: int = 1001, reason: str = "going away") -> None:
        """autobahn's failing of the connection (1002, 1007, 1009), with the close frame held
        back until the application has answered the messages that arrived before the error
        (docs/upstream.md#daphne-messages-before-error): the application is told the connection
        is ending, after those messages, and the close frame follows once it is done (at most
        FAILURE_GRACE later). Nothing after the error is delivered: ``failedByMe`` is autobahn's
        own flag for that. The error is logged (docs/upstream.md#daphne-unlogged-events).
        """
        if self.held_failure is not None:
            return
        # too_big is logged where it is found (refuse_too_big).
        if self.state == self.STATE_OPEN and code != self.CLOSE_STATUS_CODE_MESSAGE_TOO_BIG:
            log_protocol_error(self.connection(), code, reason)
        application = self.running_application()
        if self.state != self.STATE_OPEN or application is None:
            super()._fail_connection(code, reason)
            return
        self.failedByMe = True
        self.held_failure = (code, reason)
        self.application_queue.put_nowait({"type": "websocket.disconnect", "code": code})
        self.held_failure_deadline = reactor.callLater(FAILURE_GRACE, self.release_failure)
        application.add_done_callback(lambda _: self.release_failure())
        self.update_reading()

    def _protocol_violation(self, reason: str) -> bool:
        super()._protocol_violation(reason)
        # Stop reading frames while the close frame is held: autobahn would go on to the next.
        return self.held_failure is not None

    def _invalid_payload(self, reason: str) -> bool:
        super()._invalid_payload(reason)
        return self.held_failure is not None

    def onCloseFrame(self, code: int | None, reasonRaw: bytes | None) -> bool | None:
        if self.held_failure is not None:
            # The client closed before hearing of the error: it is told once its echoes are out.
            self.closed_by_client_while_held = True
            return True
        return super().onCloseFrame(code, reasonRaw)

    def release_failure(self) -> None:
        """Sends the held close frame; from here on autobahn fails the connection as usual."""
        if self.held_failure is None:
            return
        code, reason = self.held_failure
        self.held_failure = None
        if self.held_failure_deadline is not None and self.held_failure_deadline.active():
            self.held_failure_deadline.cancel()
        self.held_failure_deadline = None
        super()._fail_connection(code, reason)
        if self.closed_by_client_while_held:
            self.dropConnection()
        else:
            self.discard_until_closed()
        self.update_reading()

    def discard_until_closed(self) -> None:
        """Ends the server's side of TCP after the close frame and reads on, dropping every byte,
        until the client closes (autobahn's close-handshake timeout, CLOSE_TIMEOUT, at most;
        docs/upstream.md#daphne-messages-before-error). The client's close frame is dropped like
        the rest; its FIN, or the timeout, ends the connection.
        """
        self.discarding = True
        self.data = b""
        self.transport.loseWriteConnection()

    def dataReceived(self, data: bytes) -> None:
        if self.discarding:
            return
        super().dataReceived(data)

    def __repr__(self) -> str:
        # daphne's reads attributes set only once the handshake is read; autobahn formats the
        # connection (as the owner of perMessageCompressionAccept) before that.
        return f"<EchoWebSocketProtocol client={peer_name(self.client())}>"

    def client(self) -> Client:
        """The client's address: daphne's, once it has read the handshake, else the socket's."""
        address = getattr(self, "client_addr", None)
        return address or socket_peer(self.transport)  # type: ignore[no-any-return]

    def connection(self) -> Connection:
        """The connection as every log line names it, the application's included."""
        if self.identity is not None:
            return self.identity
        return connection(self.connection_id, self.client(), getattr(self, "http_headers", {}))

    def running_application(self) -> asyncio.Future[Any] | None:
        instance = self.server.connections.get(self, {}).get("application_instance")
        return None if instance is None or instance.done() else instance

    def failHandshake(
        self, reason: str, code: int = 400, responseHeaders: list[tuple[str, str]] | None = None
    ) -> None:
        # 426 (docs/upstream.md#daphne-protocol-versions): autobahn names the supported
        # versions only when the client's version is the problem. Logged:
        # docs/upstream.md#daphne-unlogged-events.
        if any(name.lower() == "sec-websocket-version" for name, _ in responseHeaders or []):
            code = 426
        if code in (400, 405, 426):  # autobahn's own checks; 403 and 503 are logged elsewhere
            log_refused_handshake(self.connection(), code, reason)
        super().failHandshake(reason, code, responseHeaders)

    def sendCloseFrame(
        self, code: int | None = None, reasonUtf8: bytes | None = None, isReply: bool = False
    ) -> None:
        # A client's close without a code is answered with 1000 rather than an empty close
        # (docs/upstream.md#daphne-close-code-echo).
        if isReply and code is None:
            code = 1000
        super().sendCloseFrame(code=code, reasonUtf8=reasonUtf8, isReply=isReply)

    def onAutoPingTimeout(self) -> None:
        # docs/upstream.md#daphne-unlogged-events
        log_ping_timeout(self.connection(), self.autoPingTimeout)
        super().onAutoPingTimeout()

    def dropConnection(self, abort: bool = False) -> None:
        """Close gracefully so a queued close frame is still delivered, but never wait forever
        (docs/upstream.md#daphne-fail-by-drop)."""
        super().dropConnection(abort=False)
        if self.flush_deadline is None and self.transport is not None:
            self.flush_deadline = reactor.callLater(CLOSE_TIMEOUT, self.transport.abortConnection)

    def connectionLost(self, reason: Any) -> None:
        self.server.websocket_closed(self)
        for deadline in (self.flush_deadline, self.held_failure_deadline):
            if deadline is not None and deadline.active():
                deadline.cancel()
        self.held_failure = None
        super().connectionLost(reason)
        self.forget_when_finished()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        # docs/upstream.md#daphne-unanswered-close-code
        if not wasClean and self.localCloseCode is not None:
            code = self.localCloseCode
        super().onClose(wasClean, code, reason)

    def applicationCreateWorked(self, application_queue: Any) -> None:
        super().applicationCreateWorked(application_queue)
        instance = self.running_application()
        if instance is not None:
            instance.add_done_callback(lambda _: self.forget_when_finished())

    def forget_when_finished(self) -> None:
        """Drops daphne's record of a connection once it is closed and its application is done
        (docs/upstream.md#daphne-finished-connections). An application that failed is left to
        daphne's sweep, which logs its exception.
        """
        details = self.server.connections.get(self)
        if details is None or "disconnected" not in details:
            return
        instance = details.get("application_instance")
        if instance is None or not instance.done():
            return
        if instance.cancelled() or instance.exception() is None:
            del self.server.connections[self]

    def check_timeouts(self) -> None:
        """daphne's two-second sweep: here only a backstop for resuming a paused read.

        Keepalive and handshake deadlines are autobahn's own, set in ``connectionMade``
        (docs/upstream.md#daphne-sweep).
        """
        self.update_reading()

    def handle_reply(self, message: dict[str, Any]) -> None:
        # Reading resumes when the application takes its messages (ApplicationQueue.get), not
        # when it replies (docs/upstream.md#daphne-resume-reading).
        kind = message.get("type")
        if kind == "websocket.send" and self.state != self.STATE_CONNECTING:
            self.send_application_message(message)
        elif kind == "websocket.close" and self.state != self.STATE_CONNECTING:
            # Not sendClose(), which refuses 1009 and 1013 (docs/upstream.md#daphne-close-reason).
            reason = message.get("reason") or ""
            self.sendCloseFrame(
                code=message.get("code") or 1000,
                reasonUtf8=encode_truncate(reason, MAX_CLOSE_REASON_BYTES) if reason else None,
            )
        else:
            super().handle_reply(message)

    def send_application_message(self, message: dict[str, Any]) -> None:
        """Sends ``text`` or ``bytes`` even when empty: only a missing key means "not this one"
        (docs/upstream.md#daphne-empty-send)."""
        text, data = message.get("text"), message.get("bytes")
        if (text is None) == (data is None):
            raise ValueError(f"websocket.send needs exactly one of 'text' or 'bytes': {message!r}")
        if self.state != self.STATE_OPEN:
            # A close frame has gone out: nothing may follow it (RFC 6455 section 5.5.1), and an
            # echo still on its way from the application is simply not sent.
            return
        if data is not None:
            self.sendMessage(data, isBinary=True)
        else:
            self.sendMessage(text.encode("utf-8"), isBinary=False)


class EchoHTTPChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with a deadline for the first complete request
    (docs/upstream.md#daphne-slow-request).

    Twisted's idle timeout (``timeOut``) closes a connection that goes silent; the deadline
    also closes one that trickles bytes to stay just inside it. Using the channel directly,
    rather than Twisted's wrapper that can switch to HTTP/2 after TLS negotiation, costs
    nothing here: TLS ends at the proxy (docs/deployment.md).
    """

    first_request_deadline: IDelayedCall | None = None
    refused = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self.connection_id = new_connection_id()
        self.first_request_deadline = self.callLater(
            settings.ECHO_HANDSHAKE_TIMEOUT, self.handshake_expired
        )

    def client(self) -> Client:
        return socket_peer(self.transport)

    def connection(self) -> Connection:
        """The connection as the log names it: by its socket, its request unread."""
        return connection(self.connection_id, self.client())

    def handshake_expired(self) -> None:
        self.first_request_deadline = None
        log_handshake_timeout(self.connection(), settings.ECHO_HANDSHAKE_TIMEOUT)
        self.transport.abortConnection()

    def allContentReceived(self) -> None:
        # A whole request, upgrade or not, arrived in time: from here on the request, or the
        # WebSocket's own handshake timeout, governs the connection.
        self.cancel_deadline()
        request = self.requests[-1] if self.requests else None
        super().allContentReceived()
        # An upgraded request is finished the moment it hands the socket over
        # (docs/upstream.md#daphne-finished-connections).
        connections = self.factory.server.connections
        details = connections.get(request)
        if (
            details is not None
            and "disconnected" in details
            and "application_instance" not in details
        ):
            del connections[request]
            # The channel and its request refer to each other; let go now rather than at the
            # next cyclic garbage collection.
            self.requests.clear()

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            return  # read and dropped until the client closes, or the deadline passes
        super().dataReceived(data)

    def lineLengthExceeded(self, line: bytes) -> None:
        """A request or header line over 16 KiB (docs/upstream.md#daphne-request-too-large)."""
        self.refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def _respondToBadRequestAndDisconnect(self) -> None:
        """Twisted's answer to a request it cannot parse (400), logged as the client's error
        (docs/upstream.md#daphne-request-too-large)."""
        self.refuse(HTTPStatus.BAD_REQUEST)

    def refuse(self, status: HTTPStatus) -> None:
        """Answers ``status`` and ends the server's side of TCP, reading on, so that the answer
        is not lost to a reset while the client is still sending its request."""
        if self.refused:
            return
        self.refused = True
        log_http_refused(self.connection(), status)
        self.clearLineBuffer()
        self.transport.write(plain_response(status))
        self.transport.loseWriteConnection()

    def rawDataReceived(self, data: bytes) -> None:
        """Bytes that came after a WebSocket handshake, in the same read, go to the WebSocket
        (docs/upstream.md#daphne-message-with-handshake)."""
        if self.transport is not None:
            receiver = getattr(self.transport, "wrappedProtocol", None) or getattr(
                self.transport, "protocol", self
            )
            if receiver is not self:
                receiver.dataReceived(data)
                return
        super().rawDataReceived(data)

    def connectionLost(self, reason: Any) -> None:
        self.cancel_deadline()
        super().connectionLost(reason)

    def cancel_deadline(self) -> None:
        if self.first_request_deadline is not None and self.first_request_deadline.active():
            self.first_request_deadline.cancel()
        self.first_request_deadline = None


class EchoHTTPFactory(HTTPFactory):
    """daphne's HTTP factory, building ``EchoHTTPChannel`` with the handshake timeout
    (docs/upstream.md#daphne-slow-request)."""

    protocol = EchoHTTPChannel

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.timeOut = settings.ECHO_HANDSHAKE_TIMEOUT


class EchoWebSocketFactory(WebSocketFactory):
    """daphne's WebSocket factory, building ``EchoWebSocketProtocol``."""

    protocol = EchoWebSocketProtocol


def payload_size(message: dict[str, Any]) -> int:
    """The size of a message's payload, as far as memory goes: bytes, or characters of text."""
    return len(message.get("bytes") or message.get("text") or "")


class ApplicationQueue:
    """The messages daphne has read for one application and it has not, in order: what
    ``receive`` returns. It does what daphne's ``asyncio.Queue`` did for it (``put_nowait``,
    ``get``, ``qsize``) in a list and one future (docs/upstream.md#daphne-application-queue).
    ASGI has one reader per connection; a second ``get`` while one waits is an error, where
    ``asyncio.Queue`` would serve both.

    It also keeps the back-pressure account: the connection stops reading while the queue is
    ``behind()`` (docs/upstream.md#daphne-frames-already-read), and ``on_caught_up`` tells it,
    the moment the application has taken enough, to read on
    (docs/upstream.md#daphne-resume-reading)."""

    __slots__ = (
        "first",
        "max_pending_bytes",
        "messages",
        "on_caught_up",
        "pending_bytes",
        "waiter",
    )

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        # Where the unread messages start: consumed ones are cut off in batches, so that a
        # long queue costs no more per message than a short one.
        self.first = 0
        self.waiter: asyncio.Future[None] | None = None
        self.pending_bytes = 0
        self.max_pending_bytes = settings.ECHO_MAX_MESSAGE_SIZE
        self.on_caught_up: Callable[[], None] | None = None

    def qsize(self) -> int:
        return len(self.messages) - self.first

    def behind(self) -> bool:
        """Whether the application has more waiting than a connection may hold for it."""
        return self.qsize() >= MAX_PENDING_MESSAGES or self.pending_bytes >= self.max_pending_bytes

    def put_nowait(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.pending_bytes += payload_size(message)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> dict[str, Any]:
        while self.first == len(self.messages):
            if self.waiter is not None:
                raise RuntimeError("receive() awaited while another receive() is waiting")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        message = self.messages[self.first]
        self.first += 1
        if self.first * 2 >= len(self.messages):
            del self.messages[: self.first]
            self.first = 0
        self.pending_bytes -= payload_size(message)
        if self.on_caught_up is not None and not self.behind():
            caught_up, self.on_caught_up = self.on_caught_up, None
            caught_up()
        return message


class EchoServer(Server):
    """daphne's server, built from the project's factories and protocols, giving each
    application an ``ApplicationQueue``, and shutting down gracefully: 1001 to every open
    WebSocket and 503 to new handshakes (docs/upstream.md#daphne-shutdown-close), then it waits,
    at most SHUTDOWN_GRACE, for the clients to answer and the applications to finish, and
    cancels only what is left (docs/upstream.md#daphne-shutdown-applications).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Once shutdown starts, new handshakes get 503, which a proxy retries on another process.
        self.draining = False
        self.open_websockets: set[EchoWebSocketProtocol] = set()
        # Set once draining has left no WebSocket open.
        self.all_closed = asyncio.Event()

    def run(self) -> None:
        """daphne's ``run``, statement for statement (``tests/test_server_contracts.py``
        checks), building ``EchoHTTPFactory`` and ``EchoWebSocketFactory`` in place of its own
        (docs/upstream.md#daphne-server-class)."""
        self.connections = {}
        self.http_factory = EchoHTTPFactory(self)
        self.ws_factory = EchoWebSocketFactory(self, server=self.server_name)
        self.ws_factory.setProtocolOptions(
            autoPingTimeout=self.ping_timeout,
            allowNullOrigin=True,
            openHandshakeTimeout=self.websocket_handshake_timeout,
            maxMessagePayloadSize=self.websocket_max_message_size,
            maxFramePayloadSize=self.websocket_max_frame_size,
        )
        if self.verbosity <= 1:
            globalLogBeginner.beginLoggingTo(
                [lambda _: None], redirectStandardIO=False, discardBuffer=True
            )
        else:
            globalLogBeginner.beginLoggingTo([STDLibLogObserver(__name__)])
        if http.H2_ENABLED:
            logger.info("HTTP/2 support enabled")
        else:
            logger.info("HTTP/2 support not enabled (install the http2 and tls Twisted extras)")
        reactor.callLater(1, self.application_checker)
        reactor.callLater(2, self.timeout_checker)
        for socket_description in self.endpoints:
            logger.info("Configuring endpoint %s", socket_description)
            ep = serverFromString(reactor, str(socket_description))
            listener = ep.listen(self.http_factory)
            listener.addCallback(self.listen_success)
            listener.addErrback(self.listen_error)
            self.listeners.append(listener)
        asyncio.set_event_loop(reactor._asyncioEventloop)
        if self.verbosity >= 3:
            asyncio.get_event_loop().set_debug(True)
        reactor.addSystemEventTrigger("before", "shutdown", self.kill_all_applications)
        if not self.abort_start:
            if self.ready_callable:
                self.ready_callable()
            reactor.run(installSignalHandlers=self.signal_handlers)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> ApplicationQueue | None:
        """Starts the application of a connection, a WebSocket's with its subprotocols as
        offered (docs/upstream.md#daphne-unquoted-subprotocols), and the connection's id."""
        if scope["type"] == "websocket":
            scope["subprotocols"] = offered_subprotocols(scope["headers"])
            connection_id = getattr(protocol, "connection_id", None)
            if connection_id is not None:
                scope = with_connection_id(scope, connection_id, settings.ECHO_MAX_MESSAGE_SIZE)
        return self.start_application(protocol, scope)

    def start_application(self, protocol: Any, scope: dict[str, Any]) -> ApplicationQueue | None:
        """daphne's ``create_application``, statement for statement
        (``tests/test_server_contracts.py`` checks), with an ``ApplicationQueue`` in place of
        its ``asyncio.Queue`` (docs/upstream.md#daphne-application-queue)."""
        assert "application_instance" not in self.connections[protocol]
        input_queue = ApplicationQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return input_queue

    def kill_all_applications(self) -> defer.Deferred[Any]:
        self.draining = True
        for websocket in list(self.open_websockets):
            websocket.sendCloseFrame(code=1001, reasonUtf8=SHUTDOWN_REASON.encode())
        if not self.open_websockets:
            self.all_closed.set()
        finished = defer.Deferred.fromFuture(asyncio.ensure_future(self.wait_for_goodbyes()))
        finished.addBoth(lambda _: super(EchoServer, self).kill_all_applications())
        return finished

    async def wait_for_goodbyes(self) -> None:
        """Until the applications have finished and the WebSockets closed, SHUTDOWN_GRACE at
        most."""
        running = [
            details["application_instance"]
            for details in self.connections.values()
            if "application_instance" in details and not details["application_instance"].done()
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE):
                if running:
                    await asyncio.wait(running)
                await self.all_closed.wait()

    def websocket_opened(self, websocket: EchoWebSocketProtocol) -> None:
        self.open_websockets.add(websocket)

    def websocket_closed(self, websocket: EchoWebSocketProtocol) -> None:
        self.open_websockets.discard(websocket)
        if self.draining and not self.open_websockets:
            self.all_closed.set()

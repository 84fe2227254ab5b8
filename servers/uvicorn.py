"""The project's adjustments to uvicorn: protocol classes that uvicorn loads by name.

Run the project under uvicorn as::

    uvicorn project.asgi:application --no-proxy-headers --lifespan off \\
        --http servers.uvicorn:EchoHTTPProtocol \\
        --ws servers.uvicorn:EchoWebSocketProtocol

and it behaves as it does under daphne (``servers/daphne.py``). uvicorn 0.54 with its
``websockets-sansio`` implementation differs in these ways, which the classes below close:

* A TCP connection that sends nothing, or trickles its request a byte at a time, is kept open
  for as long as the client likes: uvicorn's keep-alive timeout starts only after a response.
* The project's limits (``ECHO_MAX_MESSAGE_SIZE``, ``ECHO_PING_INTERVAL``,
  ``ECHO_PING_TIMEOUT``) would have to be repeated as command-line flags, and permessage-deflate
  would be negotiated, which daphne does not do.
* An unsupported ``Sec-WebSocket-Version`` gets 400 instead of RFC 6455's 426 with the version
  the server speaks.
* Text that is not UTF-8 (a client's error, answered with 1007) is logged at ERROR with a
  traceback, so any client can fill the error log; a message over the size limit is not logged
  at all.
* A client's close without a code is answered with an empty close rather than 1000.
* On shutdown open WebSockets get 1012 (service restart), and a handshake the application has
  not answered yet gets 500; the project says 1001 (going away) with a reason, and 503, under
  every server.

The supported uvicorn and websockets ranges are pinned in ``pyproject.toml``:
``send_receive_event_to_app`` is uvicorn's own with one branch changed. The internals used here
are listed in ``tests/test_server_contracts.py``; ``tests/test_uvicorn_adjustments.py`` shows each
adjustment is still needed, and docs/upstream.md says what to delete when uvicorn fixes one.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from django.conf import settings
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import PayloadTooBig
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from servers import SHUTDOWN_REASON, peer_name

logger = logging.getLogger(__name__)

# The options of the uvicorn command above, between the address and the application; the live
# tests and the benchmark start uvicorn with exactly these.
COMMAND_OPTIONS = (
    *("--no-proxy-headers", "--lifespan", "off"),
    *("--http", "project.uvicorn_server:EchoHTTPProtocol"),
    *("--ws", "project.uvicorn_server:EchoWebSocketProtocol"),
)
SUPPORTED_VERSION = "13"
# A client's close without a code is answered with this (RFC 6455 allows either).
NORMAL_CLOSE_FRAME = Frame(
    Opcode.CLOSE, Close(CloseCode.NORMAL_CLOSURE, "").serialize()
).serialize(mask=False)


class EchoHTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for the first complete request head."""

    handshake_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive = settings.ECHO_HANDSHAKE_TIMEOUT
        self.handshake_deadline = self.loop.call_later(
            settings.ECHO_HANDSHAKE_TIMEOUT, self.handshake_expired
        )

    def on_headers_complete(self) -> None:
        # A whole request head arrived in time: from here on the request, or the WebSocket,
        # governs the connection.
        self.cancel_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_deadline()
        super().connection_lost(exc)

    def handshake_expired(self) -> None:
        self.handshake_deadline = None
        logger.info(
            "event=handshake_timeout client=%s timeout=%s",
            peer_name(self.client),
            settings.ECHO_HANDSHAKE_TIMEOUT,
        )
        self.transport.close()

    def cancel_deadline(self) -> None:
        if self.handshake_deadline is not None:
            self.handshake_deadline.cancel()
            self.handshake_deadline = None


class EchoWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with the project's limits and close rules."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Rebuilt with the project's size limit and without permessage-deflate.
        self.conn = ServerProtocol(
            max_size=settings.ECHO_MAX_MESSAGE_SIZE, logger=self.conn.logger
        )
        self.ping_interval = settings.ECHO_PING_INTERVAL
        self.ping_timeout = settings.ECHO_PING_TIMEOUT

    def handle_connect(self, event: Request) -> None:
        # A missing or malformed version is left to websockets' checks (400).
        versions = event.headers.get_all("Sec-WebSocket-Version")
        if len(versions) == 1 and versions[0].isdigit() and versions[0] != SUPPORTED_VERSION:
            logger.info(
                "event=refused client=%s reason=unsupported_version offered=%s",
                peer_name(self.client),
                versions[0],
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

    def send_receive_event_to_app(self) -> None:
        """uvicorn's, except that text which is not UTF-8 is logged as the client's error."""
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type == "text":
            try:
                self.queue.put_nowait({"type": "websocket.receive", "text": data.decode()})
            except UnicodeDecodeError as error:
                logger.info(
                    "event=invalid_utf8 client=%s position=%d",
                    peer_name(self.client),
                    error.start,
                )
                self.conn.send_close(CloseCode.INVALID_DATA)
                self.handle_parser_exception()
                return
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def handle_parser_exception(self) -> None:
        error = self.conn.parser_exc
        if isinstance(error, PayloadTooBig) and error.message is None:
            size = (error.size or 0) + (error.current_size or 0)
            logger.info(
                "event=too_big client=%s size=%d limit=%d",
                peer_name(self.client),
                size,
                error.max_size,
            )
        super().handle_parser_exception()

    def handle_close(self, event: Frame) -> None:
        close = self.conn.close_rcvd
        if not self.close_sent and close is not None and close.code == CloseCode.NO_STATUS_RCVD:
            self.conn.data_to_send()  # websockets' empty echo of the empty close
            self.transport.write(NORMAL_CLOSE_FRAME)
        super().handle_close(event)

    def shutdown(self) -> None:
        if self.close_sent or self.initial_response is not None:
            super().shutdown()
            return
        self.stop_keepalive()
        if self.handshake_complete:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": CloseCode.GOING_AWAY})
            self.conn.send_close(CloseCode.GOING_AWAY, SHUTDOWN_REASON)
            self.close_sent = True
        else:
            # The application has not answered the handshake yet. As after uvicorn's own 403,
            # nothing more may go out: not its accept, nor uvicorn's 500 when it gives up.
            response = self.conn.reject(HTTPStatus.SERVICE_UNAVAILABLE, f"{SHUTDOWN_REASON}\n")
            self.conn.send_response(response)
            self.handshake_complete = self.close_sent = True
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()

"""The project's adjustments to daphne's WebSocket protocol, kept in this one module.

daphne 4.2 has two gaps that an echo service cannot live with:

* ``WebSocketProtocol.handle_reply`` tests a ``websocket.send`` payload for truthiness, so an
  empty text or binary message from the application is silently dropped instead of sent.
* ``serverClose`` drops the reason of an application's ``websocket.close``, so a client would
  not learn why it was closed (an idle timeout, say).
* autobahn, under daphne, fails a connection (an oversized message, say) by dropping TCP, so the
  client never sees the close code that says why.
* The ``daphne`` command takes its message-size limit from its own command line only, so
  ``ECHO_MAX_MESSAGE_SIZE`` would not apply under ``daphne project.asgi:application``.

``install()`` swaps daphne's protocol class for ``EchoWebSocketProtocol``, which closes these
gaps; ``project/asgi.py`` calls it, so it holds under ``manage.py runserver`` and the ``daphne``
command alike. The supported daphne range is pinned in ``pyproject.toml``, and
``tests/test_daphne_protocol.py`` fails if a daphne release changes what this relies on.
"""

from __future__ import annotations

from typing import Any

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings


class EchoWebSocketProtocol(WebSocketProtocol):
    """daphne's protocol, with empty messages, close reasons and the project's size limit."""

    def onConnect(self, request: Any) -> Any:
        # autobahn reads these per connection; setting them before the first frame arrives
        # makes the limit the project's, whatever the daphne command line said.
        self.maxMessagePayloadSize = settings.ECHO_MAX_MESSAGE_SIZE
        self.maxFramePayloadSize = settings.ECHO_MAX_MESSAGE_SIZE
        # Fail a connection with a close frame (1009 for an oversized message) rather than by
        # dropping TCP, so the client learns why.
        self.failByDrop = False
        return super().onConnect(request)

    def handle_reply(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "websocket.send" and self.state != self.STATE_CONNECTING:
            self.send_application_message(message)
        elif kind == "websocket.close" and self.state != self.STATE_CONNECTING:
            self.sendClose(code=message.get("code") or 1000, reason=message.get("reason") or None)
        else:
            super().handle_reply(message)

    def send_application_message(self, message: dict[str, Any]) -> None:
        """Sends ``text`` or ``bytes`` even when empty: only a missing key means "not this one"."""
        text, data = message.get("text"), message.get("bytes")
        if (text is None) == (data is None):
            raise ValueError(f"websocket.send needs exactly one of 'text' or 'bytes': {message!r}")
        if data is not None:
            self.sendMessage(data, isBinary=True)
        else:
            self.sendMessage(text.encode("utf-8"), isBinary=False)


def install() -> None:
    """Make every daphne server in this process build ``EchoWebSocketProtocol`` connections."""
    WebSocketFactory.protocol = EchoWebSocketProtocol

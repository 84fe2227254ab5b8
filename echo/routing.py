"""WebSocket routes of the echo app, mounted by ``project/asgi.py``.

``/echo`` is the echo consumer on the fast path, wrapped in what every connection here shares,
each an ASGI middleware of its own module that works around any consumer (README "Copying the
consumer").
"""

from typing import Any

from django.urls import path

from echo.capacity import ConnectionLimit
from echo.connection_log import ConnectionLog
from echo.consumers import SUBPROTOCOL, EchoConsumer
from echo.fastpath import FastWebsocketConsumer
from echo.idle import IdleTimeout
from echo.message_size import MessageSizeLimit
from echo.subprotocol import SubprotocolRequired


class FastEchoConsumer(FastWebsocketConsumer, EchoConsumer):
    """``EchoConsumer`` on the fast path (``echo/fastpath.py``): it changes how fast messages
    reach ``EchoConsumer``, not what it does with them; the consumer tests run against both."""


def with_shared_concerns(application: Any) -> Any:
    """A WebSocket application with what every echo connection shares, outermost first: the
    refusal of clients that do not offer ``echo``, the log and counts (which see every close
    the others send), the message size limit, the idle timeout and the connection limit."""
    return SubprotocolRequired(
        ConnectionLog(MessageSizeLimit(IdleTimeout(ConnectionLimit(application)))), SUBPROTOCOL
    )


websocket_urlpatterns = [
    path("echo", with_shared_concerns(FastEchoConsumer.as_asgi())),
]

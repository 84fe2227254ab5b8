"""One identity per connection, the same in the server's log lines and the application's.

A connection is named in every log line by two fields: ``client=``, who it is from (the
address a trusted proxy names, with the socket's port, or the socket's peer: see
``project.proxy.forwarded_client``, which ``project.proxy.TrustedProxyHeaders`` and the servers'
``servers.connection`` apply), and ``conn=``, an id of a few hex digits that no other
connection of the same process has had (a counter). The server assigns the id when it sees the
connection and hands it to the application in the ASGI scope, as the extension
``scope["extensions"]["connection"] == {"id": ...}`` (ASGI's place for what a server adds to
the spec); under a server that does not (stock daphne, ``WebsocketCommunicator`` in tests) the
application assigns one itself, the first time it asks. Only the project's adjusted servers
(``servers/``) and this project's middleware know the extension; nothing else reads it.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable
from typing import Any, NamedTuple

from asgiref.sync import markcoroutinefunction

from project.logfields import peer_name

EXTENSION = "connection"
# The project's servers also say that they refuse messages over a size limit themselves, and
# which (``scope["extensions"]["message_size_limit"] == {"bytes": ...}``), so that the
# application's own check (``echo.message_size``) can stand aside.
MESSAGE_SIZE_EXTENSION = "message_size_limit"

_ids = itertools.count(1)


def new_connection_id() -> str:
    """A connection id unique within this process: a counter, in hex."""
    return f"{next(_ids):x}"


class Connection(NamedTuple):
    """A connection as the log names it: ``client=`` (escaped) and ``conn=``."""

    client: str
    id: str


def with_connection_id(
    scope: dict[str, Any], connection_id: str, max_message_size: int | None = None
) -> dict[str, Any]:
    """``scope`` with the connection's id in its extensions, and the size limit the server
    enforces, if it does."""
    extensions = dict(scope.get("extensions") or {})
    extensions[EXTENSION] = {"id": connection_id}
    if max_message_size is not None:
        extensions[MESSAGE_SIZE_EXTENSION] = {"bytes": max_message_size}
    return {**scope, "extensions": extensions}


def scope_connection(scope: dict[str, Any]) -> Connection:
    """What the application's log lines call the connection of ``scope``.

    ``scope["client"]`` is already the one ``forwarded_client`` names (``TrustedProxyHeaders``
    rewrote it). The id is the server's; without one, the application's own, kept in the scope
    so that every piece that sees this scope names the connection alike.
    """
    extensions = scope.get("extensions")
    if extensions is None:
        extensions = scope["extensions"] = {}
    extension = extensions.get(EXTENSION)
    if extension is None:
        extension = extensions[EXTENSION] = {"id": new_connection_id()}
    return Connection(peer_name(scope.get("client")), extension["id"])


class ConnectionIds:
    """Gives every HTTP request and WebSocket an id, where the server gave it none; outermost
    in ``project/asgi.py``, so every layer of the application sees the same one."""

    def __init__(self, application: Any) -> None:
        self.application = application

    # Hands back the application's own coroutine instead of awaiting it in one of its own, so
    # that no frame of this middleware stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        if scope["type"] in ("http", "websocket") and EXTENSION not in (
            scope.get("extensions") or {}
        ):
            scope = with_connection_id(scope, new_connection_id())
        return self.application(scope, receive, send)  # type: ignore[no-any-return]

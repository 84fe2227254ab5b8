"""Client address and scheme from a trusted reverse proxy, wrapped around everything in asgi.py.

Behind nginx every connection comes from the proxy, so the real client is in
``X-Forwarded-For``. Any client can send that header, so it is believed only on connections
whose peer address is in ECHO_TRUSTED_PROXIES. daphne's own ``--proxy-headers`` believes it
from every peer, which is why the project does this itself.

Each proxy appends what it saw, on the header's last line or on a line of its own, and lines
that come before are the client's to write. So both headers are read as RFC 9110 (section 5.3)
reads a repeated field, every line joined in order, and from the right:

* the client is the right-most ``X-Forwarded-For`` entry that is not a trusted proxy (the
  left-most entry when every one is), with the port of the socket the proxy connected from:
  the address says who, the port which of its connections through the proxy. It is believed
  only if it is an IP address: anything else (``unknown``, a name, an address with a port)
  leaves the client unknown, as for a unix socket, rather than naming the proxy, whose address
  may open ``/metrics``;
* the scheme is the ``X-Forwarded-Proto`` entry at the client's position, counted from the
  right, since each proxy appends the scheme it was reached by beside the address; a proxy that
  sets the header instead of appending to it leaves fewer entries, and then the left-most,
  written by the proxy furthest out, says it. Anything but ``http`` or ``https`` is ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from ipaddress import ip_address
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.conf import settings

from project.logfields import Client
from project.networks import Network, address_in

Headers = Iterable[tuple[bytes, bytes]]

SCHEMES = {"http": {"http": "http", "https": "https"}, "websocket": {"http": "ws", "https": "wss"}}


def header_list(headers: Headers, name: bytes) -> list[str]:
    """The elements of a comma-separated header, across all its lines in order; empty ones,
    which RFC 9110 says to ignore, are left out."""
    return [
        element.strip()
        for key, value in headers
        if key == name
        for element in value.decode("latin-1").split(",")
        if element.strip()
    ]


def forwarded_client(
    peer: Client, headers: Headers, proxies: Iterable[Network] | None = None
) -> Client:
    """Who a connection is from: the client a trusted proxy names, with the socket's port, or
    the socket's peer when the peer is no trusted proxy or names nobody.

    Servers (``servers/``) and the application (``TrustedProxyHeaders``) both call it, with the
    socket's peer and the request's headers (ASGI's lower-case ``(name, value)`` byte pairs), so
    their log lines name one connection alike. ``proxies`` defaults to ECHO_TRUSTED_PROXIES.
    """
    trusted = tuple(settings.ECHO_TRUSTED_PROXIES if proxies is None else proxies)
    if not peer or not address_in(str(peer[0]), trusted):
        return peer
    hops = header_list(headers, b"x-forwarded-for")
    if not hops:
        return peer
    return client_address(hops[-1 - client_from_right(hops, trusted)], int(peer[1]))  # type: ignore[arg-type]


def client_from_right(hops: list[str], proxies: tuple[Network, ...]) -> int:
    """Where the client is among the hops, counted from the right (0: the right-most): the
    right-most hop that is not one of our proxies, since entries further left were written by
    someone we cannot vouch for. The left-most when every hop is a proxy."""
    for from_right, hop in enumerate(reversed(hops)):
        if not address_in(hop, proxies):
            return from_right
    return len(hops) - 1


class TrustedProxyHeaders:
    """Rewrites the ASGI scope's ``client`` and ``scheme`` for requests from a trusted proxy."""

    def __init__(self, application: Any) -> None:
        self.application = application
        self.proxies: tuple[Network, ...] = tuple(settings.ECHO_TRUSTED_PROXIES)

    # Hands back the application's own coroutine instead of awaiting it in one of its own, so
    # that no frame of this middleware stays alive for as long as the connection is open.
    @markcoroutinefunction
    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        client = scope.get("client")
        if scope["type"] in SCHEMES and client and address_in(client[0], self.proxies):
            scope = self.forwarded(scope)
        return self.application(scope, receive, send)  # type: ignore[no-any-return]

    def forwarded(self, scope: dict[str, Any]) -> dict[str, Any]:
        scope = dict(scope)
        headers = scope.get("headers", [])
        scope["client"] = forwarded_client(scope["client"], headers, self.proxies)
        hops = header_list(headers, b"x-forwarded-for")
        # Where the client is among the hops, counted from the right (0: the right-most).
        from_right = client_from_right(hops, self.proxies) if hops else 0
        schemes = header_list(headers, b"x-forwarded-proto")
        if schemes:
            scheme = schemes[-1 - from_right] if from_right < len(schemes) else schemes[0]
            if scheme.lower() in ("http", "https"):
                scope["scheme"] = SCHEMES[scope["type"]][scheme.lower()]
        return scope


def client_address(hop: str, port: int) -> tuple[str, int] | None:
    """An ASGI ``client`` for a forwarded address and the socket's port, or None (unknown) for
    anything else."""
    try:
        return (str(ip_address(hop)), port)
    except ValueError:
        return None

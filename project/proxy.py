"""Client address and scheme from a trusted reverse proxy, wrapped around everything in asgi.py.

Behind nginx every connection comes from the proxy, so the real client is in
``X-Forwarded-For``. Any client can send that header, so it is believed only on connections
whose peer address is in ECHO_TRUSTED_PROXIES. daphne's own ``--proxy-headers`` believes it
from every peer, which is why the project does this itself.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from project.networks import Network, address_in

SCHEMES = {"http": {"http": "http", "https": "https"}, "websocket": {"http": "ws", "https": "wss"}}


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class TrustedProxyHeaders:
    """Rewrites the ASGI scope's ``client`` and ``scheme`` for requests from a trusted proxy."""

    def __init__(self, application: Any) -> None:
        self.application = application
        self.proxies: tuple[Network, ...] = tuple(settings.ECHO_TRUSTED_PROXIES)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        client = scope.get("client")
        if scope["type"] in SCHEMES and client and address_in(client[0], self.proxies):
            scope = self.forwarded(scope)
        return await self.application(scope, receive, send)

    def forwarded(self, scope: dict[str, Any]) -> dict[str, Any]:
        scope = dict(scope)
        client = self.client_from(header(scope, b"x-forwarded-for") or "")
        if client:
            scope["client"] = (client, 0)
        forwarded_proto = (header(scope, b"x-forwarded-proto") or "").strip().lower()
        if forwarded_proto in ("http", "https"):
            scope["scheme"] = SCHEMES[scope["type"]][forwarded_proto]
        return scope

    def client_from(self, forwarded_for: str) -> str | None:
        """The right-most address that is not one of our proxies: each proxy appends what it
        saw, so entries further left were written by someone we cannot vouch for."""
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not address_in(hop, self.proxies):
                return hop
        return hops[0] if hops else None

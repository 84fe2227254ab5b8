"""Which X-Forwarded-For entry becomes the client, and from which peers it is believed."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from pytest_django import Settings

from project.proxy import TrustedProxyHeaders


async def client_seen(peer: str, headers: list[tuple[bytes, bytes]]) -> tuple[object, str]:
    seen: dict[str, object] = {}

    async def application(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.update(scope)

    scope = {"type": "websocket", "client": (peer, 5000), "scheme": "ws", "headers": headers}
    await TrustedProxyHeaders(application)(scope, None, None)
    return seen["client"], seen["scheme"]  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def trusted(settings: Settings) -> None:
    settings.ECHO_TRUSTED_PROXIES = [ip_network("127.0.0.1"), ip_network("10.0.0.0/8")]


async def test_trusted_proxy_names_the_client() -> None:
    """From a trusted proxy, X-Forwarded-For and X-Forwarded-Proto set client and scheme."""
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    assert await client_seen("127.0.0.1", headers) == (("198.51.100.1", 0), "wss")


async def test_untrusted_peer_is_taken_at_its_word() -> None:
    """From any other peer the headers are ignored: the peer address is the client."""
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    assert await client_seen("192.0.2.5", headers) == (("192.0.2.5", 5000), "ws")


async def test_chain_of_trusted_proxies_is_skipped() -> None:
    """Through two trusted proxies, the client is the right-most address neither of them is."""
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1, 10.1.2.3")]
    assert (await client_seen("127.0.0.1", headers))[0] == ("198.51.100.1", 0)

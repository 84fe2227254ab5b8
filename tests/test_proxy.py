"""Which X-Forwarded-For entry becomes the client, and from which peers it is believed."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from channels.testing.http import HttpCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_django import Settings

from project.networks import address_in
from project.proxy import TrustedProxyHeaders
from tests.timing import bound

PROXIES = [ip_network("127.0.0.1"), ip_network("10.0.0.0/8")]
PEER = ("127.0.0.1", 5000)


async def client_seen(peer: str, headers: list[tuple[bytes, bytes]]) -> tuple[object, str]:
    seen: dict[str, object] = {}

    async def application(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.update(scope)

    scope = {"type": "websocket", "client": (peer, PEER[1]), "scheme": "ws", "headers": headers}
    await TrustedProxyHeaders(application)(scope, None, None)
    return seen["client"], seen["scheme"]  # type: ignore[return-value]


def forwarded_for(*lines: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", line.encode("latin-1")) for line in lines]


@pytest.fixture(autouse=True)
def trusted(settings: Settings) -> None:
    settings.ECHO_TRUSTED_PROXIES = PROXIES


async def test_trusted_proxy_names_the_client() -> None:
    """From a trusted proxy, X-Forwarded-For and X-Forwarded-Proto set client and scheme."""
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    assert await client_seen("127.0.0.1", headers) == (("198.51.100.1", 5000), "wss")


async def test_untrusted_peer_is_taken_at_its_word() -> None:
    """From any other peer the headers are ignored: the peer address is the client."""
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    assert await client_seen("192.0.2.5", headers) == (("192.0.2.5", 5000), "ws")


async def test_chain_of_trusted_proxies_is_skipped() -> None:
    """Through two trusted proxies, the client is the right-most address neither of them is."""
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1, 10.1.2.3")]
    assert (await client_seen("127.0.0.1", headers))[0] == ("198.51.100.1", 5000)


async def test_a_line_of_the_clients_own_comes_first() -> None:
    """A proxy that appends its own header line leaves the client's line first; the proxy's,
    read from the right, names the client."""
    headers = forwarded_for("127.0.0.1", "198.51.100.1")
    assert (await client_seen("127.0.0.1", headers))[0] == ("198.51.100.1", 5000)


@pytest.mark.parametrize(
    "hop", ["unknown", "evil.example", "198.51.100.1:4711", "[2001:db8::1]:443", "127.0.0.1 x"]
)
async def test_an_entry_that_is_no_address_is_never_believed(hop: str) -> None:
    """The entry that would name the client but is not an IP address leaves it unknown: not
    the proxy, whose address may read /metrics, and not what the entry says."""
    assert (await client_seen("127.0.0.1", forwarded_for(f"{hop}, 10.1.2.3")))[0] is None


@pytest.mark.parametrize(
    ("lines", "scheme"),
    [
        (["https", "http"], "ws"),
        (["https, http"], "ws"),
        (["http", "https"], "wss"),
        (["https, http, nonsense"], "ws"),
    ],
    ids=["own-line", "same-line", "proxy-says-https", "not-a-scheme"],
)
async def test_scheme_is_the_proxys_word(lines: list[str], scheme: str) -> None:
    """X-Forwarded-Proto is read from the right across its lines too: what the client wrote
    before the proxy's entry does not make a plain connection secure."""
    headers = [(b"x-forwarded-for", b"198.51.100.1")]
    headers += [(b"x-forwarded-proto", line.encode()) for line in lines]
    assert (await client_seen("127.0.0.1", headers))[1] == scheme


async def test_scheme_follows_the_client_through_a_chain() -> None:
    """Through two proxies that each append, the scheme is the one the client used, beside its
    address; a proxy that sets the header rather than appending is taken at its word."""
    chain = [(b"x-forwarded-for", b"198.51.100.1, 10.1.2.3")]
    appended = [(b"x-forwarded-proto", b"https, http")]
    assert (await client_seen("127.0.0.1", chain + appended))[1] == "wss"
    set_once = [(b"x-forwarded-proto", b"https")]
    assert (await client_seen("127.0.0.1", chain + set_once))[1] == "wss"


async def metrics_status(lines: list[str]) -> int:
    """GET /metrics from a trusted proxy on 127.0.0.1 with these X-Forwarded-For lines, through
    the proxy check and Django as the servers run them."""
    from project.asgi import django_asgi_application

    communicator = HttpCommunicator(
        TrustedProxyHeaders(django_asgi_application),
        "GET",
        "/metrics",
        headers=[(b"host", b"127.0.0.1:8000"), *forwarded_for(*lines)],
    )
    # HttpCommunicator's scope has no client; a server's has the socket's peer.
    communicator.scope["client"] = PEER
    response = await communicator.get_response(timeout=bound(5))
    await communicator.wait(timeout=bound(5))
    return response["status"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("lines", "status"),
    [([], 200), (["127.0.0.1", "203.0.113.9"], 403), (["127.0.0.1, 203.0.113.9"], 403)],
    ids=["the-proxy-itself", "two-lines", "one-line"],
)
async def test_a_client_cannot_name_itself_local_to_read_metrics(
    static_root: Path, lines: list[str], status: int
) -> None:
    """A client that writes ``X-Forwarded-For: 127.0.0.1`` before the proxy's own line is
    still the address the proxy saw, and /metrics refuses it."""
    assert await metrics_status(lines) == status


# Generated hop lists: each hop is a trusted proxy, another address, or something that is no
# address; they reach the service split over header lines in any way, with any spacing.

PROXY_HOPS = st.sampled_from(["127.0.0.1", "10.1.2.3", "10.255.0.1", "10.0.0.7"])
CLIENT_HOPS = st.ip_addresses().map(str).filter(lambda hop: not address_in(hop, PROXIES))
EVERY_ADDRESS = [ip_network("0.0.0.0/0"), ip_network("::/0")]
JUNK_HOPS = st.one_of(
    st.sampled_from(["unknown", "evil.example", "198.51.100.1:4711", "[::1]:80", "_hidden"]),
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","), min_size=1
    ),
).filter(lambda hop: not address_in(hop, EVERY_ADDRESS))
HOPS = st.lists(
    st.one_of(
        PROXY_HOPS.map(lambda hop: (hop, "proxy")),
        CLIENT_HOPS.map(lambda hop: (hop, "client")),
        JUNK_HOPS.map(lambda hop: (hop, "junk")),
    ),
    max_size=8,
)


@st.composite
def header_lines(draw: st.DrawFn, hops: list[str]) -> list[str]:
    """``hops`` written as X-Forwarded-For lines, split and spaced in any way."""
    lines: list[str] = []
    line = ""
    for hop in hops:
        if line and draw(st.booleans()):
            lines.append(line)
            line = ""
        separator = draw(st.sampled_from([",", ", ", " ,  ", ",,"])) if line else ""
        line += separator + hop
    return [*lines, line] if line else lines


def expected_client(hops: list[tuple[str, str]]) -> object:
    """The rule: from the right, the first hop that is not a trusted proxy is the client if it
    is an address, and unknown if not; every hop a proxy: the left-most; no hop: the peer."""
    if not hops:
        return PEER
    for hop, kind in reversed(hops):
        if kind != "proxy":
            return (str(ip_address(hop)), PEER[1]) if kind == "client" else None
    return (hops[0][0], PEER[1])


# The settings fixture holds the same trusted proxies for every example.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data(), HOPS)
def test_client_follows_the_rule_for_any_hops(
    data: st.DataObject, hops: list[tuple[str, str]]
) -> None:
    """For any hops, however they are split into lines, the client is what the rule says."""
    lines = data.draw(header_lines([hop for hop, _ in hops]))
    client, _ = asyncio.run(client_seen(PEER[0], forwarded_for(*lines)))
    assert client == expected_client(hops)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF))),
    CLIENT_HOPS,
    st.lists(PROXY_HOPS, max_size=3),
    st.booleans(),
)
def test_nothing_a_client_writes_changes_who_it_is(
    written: list[str], seen: str, proxies: list[str], own_line: bool
) -> None:
    """Whatever X-Forwarded-For lines a client sends, once a trusted proxy appends the address
    it saw (on the last line or on its own), and more proxies theirs, that address is the
    client."""
    lines = list(written)
    if own_line or not lines:
        lines.append(seen)
    else:
        lines[-1] += f", {seen}"
    lines += proxies
    peer = proxies[-1] if proxies else "127.0.0.1"
    client, _ = asyncio.run(client_seen(peer, forwarded_for(*lines)))
    assert client == (str(ip_address(seen)), PEER[1])

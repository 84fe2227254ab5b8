"""One connection, one identity: under every server, the server's own lines and the
application's name a connection by the same ``client=`` (behind a trusted proxy, the address it
forwards with the socket's port) and the same ``conn=``, and the server's refusals are counted in
/metrics as the application's are."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerFactory
from tests.live import HOST, LOG_POLL_INTERVAL, LiveServer
from tests.rawws import BINARY, RawClient, frame
from tests.timing import bound

pytestmark = pytest.mark.live

# What a trusted proxy says the client is.
FORWARDED = "203.0.113.9"
LIMIT = 1000


def fields(line: str) -> dict[str, str]:
    """A log line's key=value pairs."""
    return dict(pair.split("=", 1) for pair in line.split() if "=" in pair)


def event_lines(
    server: LiveServer, event: str, client: str, since: int, count: int = 1
) -> list[str]:
    """The log lines of ``event`` naming ``client`` after ``since``, once there are ``count``."""
    pattern = re.compile(rf"event={event} client={re.escape(client)} ")
    deadline = time.monotonic() + bound(10)
    while True:
        lines = [line for line in server.log()[since:].splitlines() if pattern.search(line)]
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) == count, f"{event} for {client}:\n{server.log()[since:]}"
            return lines
        time.sleep(LOG_POLL_INTERVAL)


def refused_too_big(server: LiveServer, headers: dict[str, str]) -> int:
    """Opens a connection with ``headers``, sends a message over the limit, which the server
    refuses with 1009; the client's port."""
    with RawClient.open(HOST, server.port, headers=headers) as client:
        port: int = client.sock.getsockname()[1]
        client.send(frame(BINARY, bytes(LIMIT + 1)))
        assert client.expect_close().close_code == 1009
    return port


def test_server_and_application_lines_name_one_connection_alike(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """Behind a trusted proxy, the server's too_big line and the consumer's accepted and closed
    lines of one connection name the forwarded address with the socket's port, and one id."""
    server = live_servers(
        server_kind, ECHO_MAX_MESSAGE_SIZE=str(LIMIT), ECHO_TRUSTED_PROXIES="127.0.0.1"
    )
    since = server.log_end()
    port = refused_too_big(server, {"X-Forwarded-For": FORWARDED})
    client = f"{FORWARDED}:{port}"
    (too_big,) = event_lines(server, "too_big", client, since)
    (accepted,) = event_lines(server, "accepted", client, since)
    (closed,) = event_lines(server, "closed", client, since)
    assert " INFO servers event=too_big " in too_big  # the server's own line, not the consumer's
    assert " INFO echo.consumers event=accepted " in accepted
    ids = {fields(line)["conn"] for line in (too_big, accepted, closed)}
    assert len(ids) == 1, (too_big, accepted, closed)
    assert re.fullmatch(r"[0-9a-f]+", ids.pop())


def test_two_connections_from_one_address_have_two_ids(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """Two connections a trusted proxy forwards for one address get different ids, and keep
    their own ports."""
    server = live_servers(server_kind, ECHO_TRUSTED_PROXIES="127.0.0.1")
    since = server.log_end()
    headers = {"X-Forwarded-For": FORWARDED}
    with (
        RawClient.open(HOST, server.port, headers=headers) as first,
        RawClient.open(HOST, server.port, headers=headers) as second,
    ):
        names = [f"{FORWARDED}:{client.sock.getsockname()[1]}" for client in (first, second)]
        lines = [event_lines(server, "accepted", name, since)[0] for name in names]
    assert names[0] != names[1]
    assert fields(lines[0])["conn"] != fields(lines[1])["conn"]


def test_forged_forwarded_for_is_not_believed(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """X-Forwarded-For from a peer that is no trusted proxy changes neither the server's lines
    nor the application's: both name the socket's peer."""
    server = live_servers(
        server_kind, ECHO_MAX_MESSAGE_SIZE=str(LIMIT), ECHO_TRUSTED_PROXIES="10.0.0.0/8"
    )
    since = server.log_end()
    port = refused_too_big(server, {"X-Forwarded-For": FORWARDED})
    client = f"{HOST}:{port}"
    (too_big,) = event_lines(server, "too_big", client, since)
    (accepted,) = event_lines(server, "accepted", client, since)
    assert fields(too_big)["conn"] == fields(accepted)["conn"]
    assert FORWARDED not in server.log()[since:]


Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(server: LiveServer) -> dict[Sample, float]:
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=bound(10)) as response:  # noqa: S310
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_server_refusals_are_counted(live_servers: ServerFactory, server_kind: str) -> None:
    """A request the server refuses (400), a handshake it refuses (426) and a message it refuses
    for its size (1009), none of which the application sees, each count in /metrics."""
    server = live_servers(server_kind, ECHO_MAX_MESSAGE_SIZE=str(LIMIT))
    before = scrape(server)
    with RawClient(HOST, server.port) as client:
        client.send(b"\x16\x03\x01\x00\xa5garbage that is not HTTP\r\n\r\n")
        assert client.read_response().status == 400
    with RawClient(HOST, server.port) as client:
        assert client.handshake(headers={"Sec-WebSocket-Version": "8"}).status == 426
    refused_too_big(server, {})
    after = scrape(server)
    for sample in [
        ("echo_http_refused_total", (("status", "400"),)),
        ("echo_connections_refused_total", (("reason", "invalid_handshake"),)),
        ("echo_messages_too_big_total", ()),
    ]:
        assert after[sample] - before[sample] == 1, sample

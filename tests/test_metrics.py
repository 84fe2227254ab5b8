"""/metrics: Prometheus' text format, counting exactly what happened, for allowed addresses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from channels.testing.websocket import WebsocketCommunicator
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pytest_django import Settings

Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(client: Client) -> dict[Sample, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def changes(before: dict[Sample, float], after: dict[Sample, float]) -> dict[Sample, float]:
    """What each echo series gained between two scrapes (absent before counts as 0); the
    ``_created`` timestamps prometheus_client adds to labelled counters are left out."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key[0].startswith("echo_")
        and not key[0].endswith("_created")
        and after[key] != before.get(key, 0.0)
    }


def series(name: str, **labels: str) -> Sample:
    return name, tuple(sorted(labels.items()))


@pytest.fixture
def echo_client(static_root: Path) -> Callable[..., WebsocketCommunicator]:
    # Imported once the static files are collected: building it sets WhiteNoise up on them.
    from project.asgi import application

    def open_client(
        path: str = "/echo", subprotocols: tuple[str, ...] = ("echo",), origin: bytes = b""
    ) -> WebsocketCommunicator:
        headers = [(b"origin", origin)] if origin else []
        return WebsocketCommunicator(
            application, path, headers=headers, subprotocols=list(subprotocols)
        )

    return open_client


async def test_counts_a_known_sequence_exactly(
    client: Client, echo_client: Callable[..., WebsocketCommunicator], settings: Settings
) -> None:
    """Accepted, refused (each reason), open, messages and bytes each way by type, and closes
    by code (the one refused at capacity too): each counter moves by exactly what was done,
    traffic included while open."""
    before = scrape(client)
    websocket = echo_client()
    assert (await websocket.connect())[0]
    for text in ("héllo", ""):
        await websocket.send_input({"type": "websocket.receive", "text": text})
        await websocket.receive_output()
    await websocket.send_to(bytes_data=b"\x00\x01\x02")
    await websocket.receive_output()
    during = changes(before, scrape(client))
    await websocket.disconnect(code=1001)

    for refused in (
        echo_client(subprotocols=("chat",)),
        echo_client(origin=b"http://evil.example"),
        echo_client(path="/nowhere"),
    ):
        assert not (await refused.connect())[0]
    settings.ECHO_MAX_CONNECTIONS = 0
    at_capacity = echo_client()
    await at_capacity.connect()
    assert (await at_capacity.receive_output())["code"] == 1013
    await at_capacity.disconnect(code=1013)

    traffic = {
        series("echo_messages_received_total", type="text"): 2,
        series("echo_messages_sent_total", type="text"): 2,
        series("echo_bytes_received_total", type="text"): 6,
        series("echo_bytes_sent_total", type="text"): 6,
        series("echo_messages_received_total", type="binary"): 1,
        series("echo_messages_sent_total", type="binary"): 1,
        series("echo_bytes_received_total", type="binary"): 3,
        series("echo_bytes_sent_total", type="binary"): 3,
    }
    assert during == {
        series("echo_connections_accepted_total"): 1,
        series("echo_connections_open"): 1,
        **traffic,
    }
    assert changes(before, scrape(client)) == {
        series("echo_connections_accepted_total"): 1,
        series("echo_connections_closed_total", code="1001"): 1,
        series("echo_connections_closed_total", code="1013"): 1,
        **{
            series("echo_connections_refused_total", reason=reason): 1
            for reason in ("subprotocol_missing", "foreign_origin", "unknown_path", "capacity")
        },
        **traffic,
    }


def test_close_code_series_exist_from_the_start(client: Client) -> None:
    """Each close code a connection can end with has its series before any connection ends,
    and so has ``other``, the one series of every code an application chooses."""
    codes = {
        dict(labels)["code"]
        for name, labels in scrape(client)
        if name == "echo_connections_closed_total"
    }
    assert codes == {*(str(code) for code in (*range(1000, 1004), *range(1005, 1014))), "other"}


async def test_a_client_cannot_add_series(
    client: Client, echo_client: Callable[..., WebsocketCommunicator]
) -> None:
    """Twenty connections closing with twenty codes of their own (4100-4119) count in one
    series, ``other``, and add none."""
    before = scrape(client)
    for code in range(4100, 4120):
        websocket = echo_client()
        assert (await websocket.connect())[0]
        await websocket.disconnect(code=code)
    after = scrape(client)
    assert set(after) == set(before)
    assert changes(before, after) == {
        series("echo_connections_accepted_total"): 20,
        series("echo_connections_closed_total", code="other"): 20,
    }


def test_process_metrics_are_exported(client: Client) -> None:
    """The process collector's memory and CPU series are there for every process."""
    names = {name for name, _ in scrape(client)}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= names


def test_refused_to_addresses_outside_the_allow_list(client: Client) -> None:
    """Only ECHO_METRICS_ALLOW (loopback by default) may read the metrics; others get 403."""
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403


def test_allow_list_admits_a_scraper(client: Client, settings: Settings) -> None:
    """A scraper's network in ECHO_METRICS_ALLOW may read them, by the backend's address."""
    from ipaddress import ip_network

    settings.ECHO_METRICS_ALLOW = [ip_network("10.0.0.0/8")]
    settings.ALLOWED_HOSTS = ["echo.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_HOST="10.0.0.7:8001")
    assert response.status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_switched_off(client: Client, settings: Settings) -> None:
    """ECHO_METRICS=off takes /metrics away (404)."""
    settings.ECHO_METRICS = False
    assert client.get("/metrics").status_code == 404


async def test_too_big_counts_in_one_series_whichever_layer_refused_it(
    client: Client, echo_client: Callable[..., WebsocketCommunicator], settings: Settings
) -> None:
    """A message refused with 1009 by the server's adjustments and one refused by the
    application (as under a stock server) count in the same series, once each."""
    from project.connection import Connection
    from servers import log_too_big

    before = scrape(client)
    log_too_big(Connection("192.0.2.1:4000", "1"), None, 64)
    settings.ECHO_MAX_MESSAGE_SIZE = 64
    websocket = echo_client()
    assert (await websocket.connect())[0]
    await websocket.send_to(bytes_data=bytes(65))
    assert (await websocket.receive_output())["code"] == 1009
    await websocket.disconnect(code=1009)
    after = changes(before, scrape(client))
    assert after[series("echo_messages_too_big_total")] == 2


def test_event_series_exist_from_the_start(client: Client) -> None:
    """Every series of the server's and the application's events is there before any event:
    each refusal reason, protocol error code, timeout kind and refused HTTP status."""
    samples = scrape(client)
    expected = {
        *(
            series("echo_connections_refused_total", reason=reason)
            for reason in (
                "subprotocol_missing",
                "foreign_origin",
                "unknown_path",
                "capacity",
                "invalid_handshake",
            )
        ),
        *(series("echo_protocol_errors_total", code=code) for code in ("1002", "1007", "other")),
        *(series("echo_timeouts_total", kind=kind) for kind in ("handshake", "ping", "idle")),
        *(
            series("echo_http_refused_total", status=status)
            for status in ("400", "403", "404", "405", "431", "other")
        ),
        series("echo_messages_too_big_total"),
    }
    assert expected <= set(samples)

"""``FastWebsocketConsumer`` with a database: Django's promise that a stale or broken connection
is never reused, kept without a worker-thread hop for messages that touch no database.

Channels keeps the promise by running ``close_old_connections()`` in a worker thread before
every handler. Each scenario below runs on the fast consumer and on the same consumer on
Channels' own loop, and the two must give the same answers: SQLite as ``startproject`` sets it
up, and a real PostgreSQL server (``tests/postgres.py``) whose connection the server drops.

The clients here are asgiref's ``ApplicationCommunicator``: Channels' ``WebsocketCommunicator``
turns ``close_old_connections()`` into a no-op while it runs (so that a ``TestCase``'s
transaction survives), which would hide the very clean-up under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError, connection, connections
from django.db.backends.signals import connection_created

from echo.fastpath import FastWebsocketConsumer
from tests.costs import counted
from tests.postgres import PostgresServer, databases, postgres_server
from tests.timing import bound

ECHOES = 50


class Opened:
    """How many database connections Django has opened so far."""

    count = 0

    @classmethod
    def one_more(cls, **kwargs: Any) -> None:
        cls.count += 1


connection_created.connect(Opened.one_more, dispatch_uid=__name__)


def query() -> str:
    """A query on the default database, as the ORM runs one from async code (in a worker
    thread, through ``sync_to_async``), answered with the number of connections opened so far:
    a new number is a fresh connection."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return "error"
    return str(Opened.count)


class Reporter:
    """Answers ``query`` with ``query()``'s answer and echoes anything else."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "query":
            await self.send(text_data=await sync_to_async(query)())
        elif text_data == "autocommit off":
            await sync_to_async(connection.set_autocommit)(False)
            await self.send(text_data=text_data)
        else:
            await self.send(text_data=text_data)


class FastReporter(Reporter, FastWebsocketConsumer):
    pass


class StockReporter(Reporter, AsyncWebsocketConsumer):
    pass


BOTH_LOOPS = pytest.mark.parametrize(
    "consumer", [FastReporter, StockReporter], ids=["fast", "stock"]
)


@pytest.fixture(autouse=True)
def database_access(django_db_blocker: Any) -> Iterator[None]:
    """Lets these tests reach their own databases (pytest-django blocks every database it did
    not set up)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


async def connect(consumer: type[AsyncWebsocketConsumer]) -> ApplicationCommunicator:
    """A client of ``consumer``, connected."""
    scope = {"type": "websocket", "path": "/", "headers": [], "subprotocols": []}
    client = ApplicationCommunicator(consumer.as_asgi(), scope)
    await client.send_input({"type": "websocket.connect"})
    assert (await client.receive_output(bound(1)))["type"] == "websocket.accept"
    return client


async def ask(client: ApplicationCommunicator, text: str) -> str:
    await client.send_input({"type": "websocket.receive", "text": text})
    reply = await client.receive_output(bound(5))
    assert reply["type"] == "websocket.send", reply
    return str(reply["text"])


async def disconnect(client: ApplicationCommunicator) -> None:
    """Ends the client's connection, then closes the connections the consumer's handlers
    opened, in their worker thread."""
    await client.send_input({"type": "websocket.disconnect", "code": 1000})
    await client.wait(bound(1))
    await sync_to_async(connections.close_all)()


def sqlite(tmp_path: Path, **options: Any) -> dict[str, dict[str, Any]]:
    """``DATABASES`` as ``django-admin startproject`` writes it, with ``options`` added."""
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": tmp_path / "db.sqlite3"}
    return {"default": database | options}


def drop_connections(server: PostgresServer) -> None:
    """Has the server end every other client's connection, as a restart or an administrator
    would, and waits until they have ended."""
    with psycopg.connect(
        host=str(server.socket_directory), user="postgres", dbname="postgres", autocommit=True
    ) as administrator:
        administrator.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )


@BOTH_LOOPS
async def test_each_handler_gets_a_new_connection_by_default(
    consumer: type[AsyncWebsocketConsumer], tmp_path: Path
) -> None:
    """With ``CONN_MAX_AGE`` 0 (the default), a connection is closed before the next handler,
    so every query runs on a fresh one."""
    with databases(sqlite(tmp_path)):
        client = await connect(consumer)
        first = int(await ask(client, "query"))
        assert await ask(client, "echo") == "echo"
        assert int(await ask(client, "query")) == first + 1
        assert int(await ask(client, "query")) == first + 2
        await disconnect(client)


@BOTH_LOOPS
async def test_a_connection_past_its_age_is_replaced(
    consumer: type[AsyncWebsocketConsumer], tmp_path: Path
) -> None:
    """A persistent connection is reused until ``CONN_MAX_AGE`` passes, then replaced before
    the next handler."""
    age = bound(0.5)  # long enough for two queries in a row, on a loaded machine too
    with databases(sqlite(tmp_path, CONN_MAX_AGE=age)):
        client = await connect(consumer)
        first = int(await ask(client, "query"))
        assert int(await ask(client, "query")) == first
        await asyncio.sleep(age + 0.1)
        assert int(await ask(client, "query")) == first + 1
        await disconnect(client)


@BOTH_LOOPS
async def test_a_connection_left_out_of_autocommit_is_replaced(
    consumer: type[AsyncWebsocketConsumer], tmp_path: Path
) -> None:
    """A persistent connection a handler left out of autocommit is not trusted: the next handler
    gets a fresh one."""
    with databases(sqlite(tmp_path, CONN_MAX_AGE=None)):
        client = await connect(consumer)
        first = int(await ask(client, "query"))
        assert await ask(client, "autocommit off") == "autocommit off"
        assert int(await ask(client, "query")) == first + 1
        await disconnect(client)


@BOTH_LOOPS
async def test_a_connection_the_server_dropped_is_replaced_after_a_health_check(
    consumer: type[AsyncWebsocketConsumer], postgres: PostgresServer
) -> None:
    """With ``CONN_HEALTH_CHECKS``, a persistent connection the database server dropped is
    found dead before the next handler's query, which runs on a fresh one, without an
    error."""
    with databases({"default": postgres.database(CONN_MAX_AGE=None, CONN_HEALTH_CHECKS=True)}):
        client = await connect(consumer)
        first = int(await ask(client, "query"))
        assert int(await ask(client, "query")) == first
        await sync_to_async(drop_connections, thread_sensitive=False)(postgres)
        assert int(await ask(client, "query")) == first + 1
        await disconnect(client)


@BOTH_LOOPS
async def test_a_connection_that_failed_is_replaced_before_the_next_handler(
    consumer: type[AsyncWebsocketConsumer], postgres: PostgresServer
) -> None:
    """Without health checks, the handler that meets a dropped connection gets the error, and
    the next handler gets a fresh connection."""
    with databases({"default": postgres.database(CONN_MAX_AGE=None)}):
        client = await connect(consumer)
        first = int(await ask(client, "query"))
        await sync_to_async(drop_connections, thread_sensitive=False)(postgres)
        assert await ask(client, "query") == "error"
        assert int(await ask(client, "query")) == first + 1
        await disconnect(client)


@pytest.mark.parametrize(
    "options",
    [{}, {"CONN_MAX_AGE": None}, {"CONN_MAX_AGE": None, "CONN_HEALTH_CHECKS": True}],
    ids=["default", "persistent", "persistent-health-checked"],
)
async def test_echoes_cost_no_thread_hop_beside_a_database(
    options: dict[str, Any], tmp_path: Path
) -> None:
    """After a handler used the database, the messages that follow and touch none cost no
    worker-thread hop, but the one clean-up Channels' loop would still have to do; Channels'
    loop hops before every one."""
    hops = {}
    with databases(sqlite(tmp_path, **options)):
        for consumer in (FastReporter, StockReporter):
            client = await connect(consumer)
            await ask(client, "query")
            with counted() as costs:
                for number in range(ECHOES):
                    assert await ask(client, str(number)) == str(number)
            hops[consumer] = costs.thread_hops
            await disconnect(client)
    # The default closes the connection, and a health check is re-armed, once, after a use.
    expected = 0 if options == {"CONN_MAX_AGE": None} else 1
    assert (hops[FastReporter], hops[StockReporter]) == (expected, ECHOES)

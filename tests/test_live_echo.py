"""The service as users run it: a real server process, a real WebSocket client, over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from servers import SHUTDOWN_REASON
from tests import launcher
from tests.conftest import RawClients, ServerFactory
from tests.live import (
    HOST,
    PROJECT_DIR,
    SERVER_KINDS,
    LiveServer,
    connect_echo,
    server_environment,
    start_server,
    wait_for_log,
)
from tests.nginx import collect_static
from tests.rawws import BINARY, CONTINUATION, PING, PONG, TEXT, frame
from tests.timing import bound

pytestmark = pytest.mark.live

MIB = 1024 * 1024
# Above daphne's own 1 MiB default, so passing proves the project's setting is what applies.
RAISED_LIMIT = 3 * MIB // 2


async def handshake_status(url: str, **options: object) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect_echo(url, **options):
            pass
    return refused.value.response.status_code


async def test_negotiates_echo(echo_server: LiveServer) -> None:
    """The 101 response names ``echo`` when the client offers it, alone or among others."""
    for offered in (["echo"], ["chat", "echo"]):
        async with connect_echo(f"{echo_server.ws_url}/echo", subprotocols=offered) as ws:
            assert ws.subprotocol == "echo"


@pytest.mark.parametrize(
    "offered",
    [None, ["chat"], ["%65cho"], ["echo%2C%20chat"], ["ech%6f", "chat"]],
    ids=["none", "chat", "percent-echo", "percent-comma", "percent-among-others"],
)
async def test_refuses_without_echo_with_403(echo_server: LiveServer, offered: object) -> None:
    """A handshake that does not offer ``echo``, as written (``%65cho`` is not it), gets 403."""
    status = await handshake_status(f"{echo_server.ws_url}/echo", subprotocols=offered)
    assert status == 403


async def test_refuses_foreign_origin_with_403(echo_server: LiveServer) -> None:
    """A browser-style handshake from a foreign origin gets HTTP 403."""
    status = await handshake_status(f"{echo_server.ws_url}/echo", origin="http://evil.example")
    assert status == 403


async def test_accepts_own_origin(echo_server: LiveServer) -> None:
    """A browser-style handshake from the server's own host is accepted."""
    own = f"http://127.0.0.1:{echo_server.port}"
    async with connect_echo(f"{echo_server.ws_url}/echo", origin=own) as ws:
        assert ws.subprotocol == "echo"


async def test_refuses_unknown_path_with_403(echo_server: LiveServer) -> None:
    """A WebSocket handshake for an unknown path gets HTTP 403, not a server error."""
    assert await handshake_status(f"{echo_server.ws_url}/nowhere") == 403


@pytest.mark.parametrize(
    "message",
    ["hello", "", "emoji 🎉 beyond the BMP 𝄞", b"\x00\xff" * 10, b"", os.urandom(200_000)],
    ids=["text", "empty-text", "astral", "binary", "empty-binary", "binary-200k"],
)
async def test_echoes_each_message_unchanged(
    echo_server: LiveServer, message: str | bytes
) -> None:
    """Text comes back as text and binary as binary, byte for byte, empty messages included."""
    async with connect_echo(f"{echo_server.ws_url}/echo") as ws:
        await ws.send(message)
        echo = await asyncio.wait_for(ws.recv(), timeout=bound(10))
    assert type(echo) is type(message)
    assert echo == message


async def test_keeps_order_over_many_messages(echo_server: LiveServer) -> None:
    """A thousand messages sent back to back come back in the same order."""
    sent = [f"message {i}" if i % 3 else os.urandom(i % 50) for i in range(1000)]
    async with connect_echo(f"{echo_server.ws_url}/echo") as ws:
        for message in sent:
            await ws.send(message)
        received = [await asyncio.wait_for(ws.recv(), timeout=bound(10)) for _ in sent]
    assert received == sent


async def test_fragmented_message_echoes_whole(echo_server: LiveServer) -> None:
    """A message sent in many fragments comes back as one message."""
    fragments = [os.urandom(1000) for _ in range(50)]
    async with connect_echo(f"{echo_server.ws_url}/echo") as ws:
        await ws.send(fragments)
        echo = await asyncio.wait_for(ws.recv(), timeout=bound(10))
    assert echo == b"".join(fragments)


async def assert_limit_enforced(server: LiveServer, limit: int) -> None:
    url = f"{server.ws_url}/echo"
    async with connect_echo(url) as ws:
        at_limit = os.urandom(limit)
        await ws.send(at_limit)
        assert await asyncio.wait_for(ws.recv(), timeout=bound(20)) == at_limit
        await ws.send("x" * limit)
        assert await asyncio.wait_for(ws.recv(), timeout=bound(20)) == "x" * limit
    since = server.log_end()
    async with connect_echo(url) as ws:
        await ws.send(os.urandom(limit + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=bound(20))
    assert closed.value.rcvd is not None, "the server dropped TCP instead of closing with 1009"
    assert closed.value.rcvd.code == 1009
    too_big = f"event=too_big client=127.0.0.1:{ws.local_address[1]} "
    await wait_for_log(lambda: server.log()[since:], too_big)
    async with connect_echo(url) as ws:
        await ws.send("still serving")
        assert await asyncio.wait_for(ws.recv(), timeout=bound(10)) == "still serving"


async def test_default_limit_is_one_mib(echo_server: LiveServer) -> None:
    """1 MiB echoes; 1 MiB + 1 byte closes with 1009; the server keeps serving others."""
    await assert_limit_enforced(echo_server, MIB)


async def test_configured_limit_applies(live_servers: ServerFactory, server_kind: str) -> None:
    """ECHO_MAX_MESSAGE_SIZE above daphne's own default is the limit that applies."""
    server = live_servers(server_kind, ECHO_MAX_MESSAGE_SIZE=str(RAISED_LIMIT))
    await assert_limit_enforced(server, RAISED_LIMIT)


SMALL_LIMIT = 1000


@pytest.mark.parametrize("over", [1, 100, 125, 126])
def test_limit_is_exact_with_pings_between_fragments(
    live_servers: ServerFactory, server_kind: str, raw_clients: RawClients, over: int
) -> None:
    """Fragments that fill the limit exactly, with a ping after them, end in a message that
    echoes; a fragmented message a little over the limit gets 1009, pings or not."""
    server = live_servers(server_kind, ECHO_MAX_MESSAGE_SIZE=str(SMALL_LIMIT))
    client = raw_clients(server)
    client.send(
        frame(BINARY, b"a" * 600, fin=False)
        + frame(CONTINUATION, b"b" * 400, fin=False)
        + frame(PING, b"p" * 125)
        + frame(CONTINUATION, b"")
    )
    pong = client.recv_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"p" * 125)
    assert client.recv_message() == (BINARY, b"a" * 600 + b"b" * 400)
    client.send(
        frame(TEXT, b"a" * 600, fin=False)
        + frame(PING, b"q")
        + frame(CONTINUATION, b"b" * (400 + over))
    )
    pong = client.recv_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"q")
    assert client.expect_close().close_code == 1009


async def test_idle_timeout_closes_with_reason(
    live_servers: ServerFactory, server_kind: str
) -> None:
    """With ECHO_IDLE_TIMEOUT set, a silent client is closed with 1000 and "idle timeout"."""
    server = live_servers(server_kind, ECHO_IDLE_TIMEOUT="1")
    async with connect_echo(f"{server.ws_url}/echo") as ws:
        await asyncio.sleep(0.6)
        await ws.send("keeps it alive")
        assert await ws.recv() == "keeps it alive"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=bound(10))
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "idle timeout")


def http_get(url: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  (a live server's URL)
    try:
        with urllib.request.urlopen(request, timeout=bound(10)) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_probe_reaches_healthz_behind_https(live_servers: ServerFactory, server_kind: str) -> None:
    """Configured for a public host behind HTTPS, the server answers a plain-HTTP probe of
    /healthz at its own address (the in-process tests show other paths still refuse it)."""
    server = live_servers(
        server_kind, DJANGO_HTTPS="true", DJANGO_ALLOWED_HOSTS="echo.example.com"
    )
    status, body = http_get(f"{server.http_url}/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


@pytest.mark.parametrize("kind", [kind for kind in SERVER_KINDS if kind != "runserver"])
def test_probe_fails_until_static_files_are_collected(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Started with DEBUG off and no static files collected, a server cannot serve the page, and
    /healthz answers 503 naming the problem until collectstatic has run and it has restarted:
    the process reads the folder when it starts."""
    static_root = tmp_path_factory.mktemp("uncollected-static")
    log_dir = tmp_path_factory.mktemp("uncollected-logs")
    settings = {"DJANGO_STATIC_ROOT": str(static_root)}
    server = start_server(kind, log_dir, settings)
    try:
        collect_static(static_root)
        status, body = http_get(f"{server.http_url}/healthz")
        assert status == 503, body
        answer = json.loads(body)
        assert answer["status"] == "unavailable"
        assert "no static files manifest" in answer["problem"]
    finally:
        server.stop()
    server = start_server(kind, log_dir, settings)
    try:
        status, body = http_get(f"{server.http_url}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        assert http_get(f"{server.http_url}/")[0] == 200
    finally:
        server.stop()


async def test_foreign_host_is_logged_as_the_clients_error(echo_server: LiveServer) -> None:
    """A request for a host the service does not serve gets 400, logged as one INFO line that
    names the client and the host: never an ERROR with a traceback that any client could cause."""
    status, _ = await asyncio.to_thread(
        http_get, f"{echo_server.http_url}/", Host="not-served.example"
    )
    assert status == 400
    log = await wait_for_log(echo_server.log, "reason=disallowed_host")
    assert "INFO django.security.DisallowedHost event=http_refused client=127.0.0.1" in log
    assert "host=not-served.example" in log
    assert "ERROR" not in log


async def test_metrics_are_served(echo_server: LiveServer) -> None:
    """/metrics answers a local scraper in Prometheus' text format, with this process's own
    connections and traffic."""
    async with connect_echo(f"{echo_server.ws_url}/echo") as ws:
        await ws.send("counted")
        await ws.recv()
        status, body = http_get(f"{echo_server.http_url}/metrics")
    assert status == 200
    text = body.decode()
    assert re.search(r"^echo_connections_open [1-9]", text, re.MULTILINE), text
    assert re.search(r'^echo_messages_received_total\{type="text"\} [1-9]', text, re.MULTILINE)
    assert "process_resident_memory_bytes" in text


def test_index_page_is_served(echo_server: LiveServer) -> None:
    """GET / returns the page that connects to /echo."""
    status, body = http_get(f"{echo_server.http_url}/")
    assert status == 200
    assert b'data-subprotocol="echo"' in body


def page_script(http_url: str) -> str:
    """The path of the script the index page loads."""
    status, page = http_get(f"{http_url}/")
    assert status == 200
    found = re.search(rb'<script type="module" src="(/static/echo/app[^"]*)"', page)
    assert found, page
    return found.group(1).decode()


def test_page_script_is_served(echo_server: LiveServer) -> None:
    """The page's script is served under the name the page gives it: content-hashed and
    cacheable for good in production, straight from the app folder under runserver."""
    script = page_script(echo_server.http_url)
    with urllib.request.urlopen(f"{echo_server.http_url}{script}", timeout=bound(10)) as response:  # noqa: S310
        body, cache_control = response.read(), response.headers.get("Cache-Control", "")
    if echo_server.kind == "runserver":
        assert script == "/static/echo/app.js"
        assert body == (PROJECT_DIR / "echo/static/echo/app.js").read_bytes()
    else:
        assert re.fullmatch(r"/static/echo/app\.[0-9a-f]{12}\.js", script)
        assert "immutable" in cache_control
        # Its imports name the hashed modules too, so no cache can mix versions.
        assert re.search(rb'from "\./closing\.[0-9a-f]{12}\.js"', body)


def test_unknown_path_is_404(echo_server: LiveServer) -> None:
    """An unknown HTTP path gets 404."""
    status, _ = http_get(f"{echo_server.http_url}/no-such-page")
    assert status == 404


async def test_logs_connection_lifecycle(live_servers: ServerFactory, server_kind: str) -> None:
    """The log records an accepted connection, its messages by size and its close with counts."""
    server = live_servers(server_kind, LOG_LEVEL="DEBUG")
    since = server.log_end()
    async with connect_echo(f"{server.ws_url}/echo") as ws:
        await ws.send("secret-payload-" + "z" * 100)
        await ws.recv()
    log = await wait_for_log(lambda: server.log()[since:], "event=closed")
    assert "event=accepted" in log
    assert "type=text size=115" in log
    assert "messages_in=1 bytes_in=115 messages_out=1 bytes_out=115" in log
    assert "z" * 100 not in log, "a whole payload reached the log"


async def test_shutdown_closes_with_1001(
    server_kind: str, tmp_path_factory: pytest.TempPathFactory, static_root: Path
) -> None:
    """SIGTERM closes open WebSockets with 1001 and a reason, and the process exits."""
    server = start_server(
        server_kind,
        tmp_path_factory.mktemp("shutdown-logs"),
        {"DJANGO_STATIC_ROOT": str(static_root)},
    )
    try:
        async with connect_echo(f"{server.ws_url}/echo") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            server.terminate()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=bound(10))
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, SHUTDOWN_REASON)
        server.wait()
        # The consumer heard its connection end, and logged it.
        assert re.search(r"event=closed client=\S+ code=1001 ", server.log()), server.log()
    finally:
        server.stop()


def start_runserver_with_reloader(log_dir: Path, static_root: Path) -> LiveServer:
    """``manage.py runserver`` as a developer runs it: with the autoreloader, a parent process
    that starts the serving child again whenever the code changes."""
    process = launcher.start(
        [sys.executable, "manage.py", "runserver", f"{HOST}:0"],
        environment=server_environment("runserver", {"DJANGO_STATIC_ROOT": str(static_root)}),
        log_path=log_dir / "runserver.log",
        timeout=bound(30),
    )
    return LiveServer("runserver", process)


@pytest.mark.parametrize("stop", ["sigterm", "ctrl-c"])
async def test_runserver_with_the_autoreloader_closes_with_1001(
    stop: str, tmp_path_factory: pytest.TempPathFactory, static_root: Path
) -> None:
    """``manage.py runserver`` as a developer runs it, with the autoreloader (a parent process
    restarting a child), closes open WebSockets with 1001 on SIGTERM and on Ctrl-C too."""
    server = start_runserver_with_reloader(
        tmp_path_factory.mktemp("runserver-reloader-logs"), static_root
    )
    try:
        async with connect_echo(f"{server.ws_url}/echo") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            if stop == "sigterm":
                server.terminate()
            else:
                # A terminal's Ctrl-C: SIGINT to every process of the foreground group.
                for each in server.server.processes():
                    each.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=bound(10))
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, SHUTDOWN_REASON)
        assert server.wait() == 0
        assert re.search(r"event=closed client=\S+ code=1001 ", server.log()), server.log()
    finally:
        server.stop()


async def save_until_closed(ws: ClientConnection, path: Path) -> None:
    """Saves ``path`` (a new modification time) once a second until the connection ends: the
    autoreloader looks every second, and sees a change only to a file it has looked at before."""
    for _ in range(round(bound(15))):
        os.utime(path)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.recv(), timeout=1)


async def test_runserver_restarting_for_a_code_change_closes_with_1001(
    tmp_path_factory: pytest.TempPathFactory, static_root: Path
) -> None:
    """When a code change makes the autoreloader restart ``manage.py runserver``, open
    WebSockets get 1001 rather than a dropped connection, and the new process serves."""
    server = start_runserver_with_reloader(
        tmp_path_factory.mktemp("runserver-restart-logs"), static_root
    )
    edited = PROJECT_DIR / "echo" / "consumers.py"
    saved = edited.stat()
    try:
        async with connect_echo(f"{server.ws_url}/echo") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            with pytest.raises(ConnectionClosed) as closed:
                await save_until_closed(ws, edited)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, SHUTDOWN_REASON)
        await wait_for_log(server.log, " code=1001 ")  # the consumer heard it, and logged it
        # The restarted process listens on a port of its own choosing (runserver was given 0).
        port = launcher.wait_until_listening(server.server, bound(30), other_than=server.port)
        async with connect_echo(f"ws://{HOST}:{port}/echo") as ws:
            await ws.send("after")
            assert await ws.recv() == "after"
    finally:
        server.stop()
        os.utime(edited, ns=(saved.st_atime_ns, saved.st_mtime_ns))

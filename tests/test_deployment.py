"""The shipped deployment for real: nginx (deploy/nginx) ending TLS in front of two server
processes configured as deploy/channels-echo.env says, under each production server (daphne,
and uvicorn per docs/servers.md)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.live import (
    HOST,
    PROJECT_DIR,
    SERVER_KINDS,
    LiveServer,
    connect_echo,
    start_server,
    wait_for_log,
)
from tests.nginx import (
    CLIENT_ADDRESS,
    PUBLIC_HOST,
    Proxy,
    collect_static,
    documented_environment,
    http_get,
    nginx_in_front,
)
from tests.test_settings import manage
from tests.timing import bound

pytestmark = pytest.mark.live

# The development server has no place behind nginx.
BACKEND_KINDS = [kind for kind in SERVER_KINDS if kind != "runserver"]
# A client "elsewhere" that reaches a backend directly, not through nginx.
STRANGER_ADDRESS = "127.0.0.4"


@dataclass
class Deployment(Proxy):
    """nginx in front of two backend processes."""

    backends: list[LiveServer]

    def backend_log(self) -> str:
        return "".join(backend.log() for backend in self.backends)


@contextmanager
def deployment(kind: str, log_dir: Path) -> Iterator[Deployment]:
    prefix = Path(tempfile.mkdtemp(prefix="channels-echo-nginx-"))
    backends: list[LiveServer] = []
    try:
        static_root = prefix / "static"
        collect_static(static_root)
        settings = documented_environment(DJANGO_STATIC_ROOT=str(static_root))
        backends = [start_server(kind, log_dir, settings) for _ in range(2)]
        # Only nginx can serve this file: the backends read STATIC_ROOT before it existed.
        (static_root / "served-by-nginx.txt").write_text("from disk\n")
        with nginx_in_front([(HOST, backend.port) for backend in backends], static_root) as proxy:
            yield Deployment(**vars(proxy), backends=backends)
    finally:
        for backend in backends:
            backend.stop()
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKEND_KINDS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One nginx + two backends deployment shared by the tests that leave it as they found it."""
    with deployment(request.param, tmp_path_factory.mktemp("deployment-logs")) as running:
        yield running


@asynccontextmanager
async def all_open(connections: list) -> AsyncIterator[list]:  # type: ignore[type-arg]
    """Opens every WebSocket connection in the list; closes all of them on the way out."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(connection) for connection in connections]


def backend_connections(backend: LiveServer) -> int:
    _, _, body = http_get(backend.port, "/healthz", source=HOST)
    return json.loads(body)["connections"]


def test_page_comes_over_https_with_hsts(site: Deployment) -> None:
    """The page loads over HTTPS through nginx, with HSTS and no redirect: the backends believe
    nginx's X-Forwarded-Proto, so DJANGO_HTTPS does not send the request round again."""
    status, headers, page = site.get("/")
    assert status == 200
    assert b'data-subprotocol="echo"' in page
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_plain_http_is_sent_to_https(site: Deployment) -> None:
    """A browser asking over plain HTTP is sent to the same path over HTTPS."""
    status, headers, _ = http_get(site.http_port, "/?from=link", Host=PUBLIC_HOST)
    assert status == 301
    assert headers["Location"] == f"https://{PUBLIC_HOST}/?from=link"


def test_static_files_come_from_nginx(site: Deployment) -> None:
    """Static files are served by nginx from disk; names without a hash for an hour."""
    status, headers, script = site.get("/static/echo/app.js")
    assert status == 200
    assert script == (PROJECT_DIR / "echo/static/echo/app.js").read_bytes()
    assert "javascript" in headers["Content-Type"]
    assert headers["Cache-Control"] == "max-age=3600"
    assert site.get("/static/served-by-nginx.txt")[2] == b"from disk\n"


def test_hashed_static_files_are_cached_for_good(site: Deployment) -> None:
    """The page loads its script under a content-hashed name, which nginx serves as cacheable
    for good; a deploy that changes the script changes the name."""
    page = site.get("/")[2]
    found = re.search(rb'src="(/static/echo/app\.[0-9a-f]{12}\.js)"', page)
    assert found, page
    status, headers, _ = site.get(found.group(1).decode())
    assert status == 200
    assert "max-age=315360000" in headers["Cache-Control"]
    assert "immutable" in headers["Cache-Control"]


def test_backends_pass_health_probes(site: Deployment) -> None:
    """A load balancer probing each backend at its own address over plain HTTP gets 200."""
    for backend in site.backends:
        status, _, body = http_get(backend.port, "/healthz", source=HOST)
        assert status == 200
        assert json.loads(body)["status"] == "ok"


async def test_websocket_echoes_through_nginx(site: Deployment) -> None:
    """The wss:// handshake through nginx negotiates echo; text, binary and 1 MiB echo intact."""
    async with site.connect() as ws:
        assert ws.subprotocol == "echo"
        for message in ("through the proxy é🎉", os.urandom(1000), os.urandom(1024 * 1024)):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), timeout=bound(10)) == message


async def test_connections_spread_over_both_processes(site: Deployment) -> None:
    """Connections opened through nginx land on both backend processes."""
    async with all_open([site.connect() for _ in range(6)]):
        counts = [backend_connections(backend) for backend in site.backends]
    assert all(count >= 2 for count in counts), counts


async def echo_claiming(open_echo: Callable[..., connect], source: str, claimed: str) -> None:
    """One echo from the address ``source``, claiming in X-Forwarded-For to be ``claimed``."""
    headers = {"X-Forwarded-For": claimed}
    async with open_echo(local_addr=(source, 0), additional_headers=headers) as ws:
        await ws.send("who am I")
        await ws.recv()


async def logged_client(read_log: Callable[[], str], source: str) -> str:
    """The log once it records the connection from ``source``."""
    return await wait_for_log(read_log, f"event=accepted client={source}:")


async def test_logged_client_is_the_real_one(site: Deployment) -> None:
    """Behind nginx the log names the real client, whatever X-Forwarded-For it claims."""
    await echo_claiming(site.connect, CLIENT_ADDRESS, "203.0.113.7")
    assert "203.0.113.7" not in await logged_client(site.backend_log, CLIENT_ADDRESS)


async def test_forwarded_for_is_ignored_from_untrusted_peers(site: Deployment) -> None:
    """A client reaching a backend directly cannot choose its logged address with a header."""
    backend = site.backends[0]
    await echo_claiming(
        functools.partial(connect_echo, f"{backend.ws_url}/echo"), STRANGER_ADDRESS, "198.51.100.9"
    )
    assert "198.51.100.9" not in await logged_client(backend.log, STRANGER_ADDRESS)


# A client address of its own, so that its lines are the only ones from it.
IDENTIFIED_ADDRESS = "127.0.0.5"
# deploy/channels-echo.env leaves ECHO_MAX_MESSAGE_SIZE at its default.
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024


async def test_server_and_application_lines_name_one_connection_alike(site: Deployment) -> None:
    """Behind nginx, the server's too_big line and the consumer's accepted and closed lines of
    one connection carry the same client (the real address, with the port nginx connected
    from) and the same connection id."""
    async with site.connect(local_addr=(IDENTIFIED_ADDRESS, 0), max_size=None) as ws:
        await ws.send(bytes(DEFAULT_MAX_MESSAGE_SIZE + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    log = await wait_for_log(site.backend_log, f"event=closed client={IDENTIFIED_ADDRESS}:")
    lines = {
        event: re.findall(rf".* event={event} client={IDENTIFIED_ADDRESS}:\S+ .*", log)
        for event in ("too_big", "accepted", "closed")
    }
    assert all(len(found) == 1 for found in lines.values()), lines
    (too_big,), (accepted,), (closed_line,) = lines.values()
    assert " servers event=too_big " in too_big
    identities = {
        (re.search(r" (client=\S+)", line).group(1), line.split()[-1])  # type: ignore[union-attr]
        for line in (too_big, accepted, closed_line)
    }
    assert len(identities) == 1, identities
    ((client, conn),) = identities
    assert re.fullmatch(rf"client={re.escape(IDENTIFIED_ADDRESS)}:[1-9][0-9]*", client)
    assert re.fullmatch(r"conn=[0-9a-f]+", conn)


@pytest.mark.parametrize("kind", BACKEND_KINDS)
async def test_sigterm_closes_with_1001_and_nginx_routes_around(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGTERM closes a process's clients with 1001; new connections keep succeeding."""
    with deployment(kind, tmp_path_factory.mktemp("sigterm-logs")) as running:
        doomed, survivor = running.backends
        async with all_open([running.connect() for _ in range(6)]) as clients:
            on_doomed = backend_connections(doomed)
            assert on_doomed > 0
            started = time.monotonic()
            doomed.terminate()
            codes = await asyncio.gather(*(close_code_or_echo(ws) for ws in clients))
            doomed.wait()
            assert time.monotonic() - started < bound(10)
        assert codes.count(1001) == on_doomed
        assert codes.count("echoed") == len(clients) - on_doomed
        for attempt in range(20):
            async with running.connect() as ws:
                await ws.send(f"after the restart {attempt}")
                assert (
                    await asyncio.wait_for(ws.recv(), timeout=bound(5))
                    == f"after the restart {attempt}"
                )
        assert backend_connections(survivor) == 0


async def close_code_or_echo(ws: object) -> int | str:
    """1001-style close code if the server said goodbye, else "echoed" if it still answers."""
    try:
        message = await asyncio.wait_for(ws.recv(), timeout=bound(1.5))  # type: ignore[attr-defined]
    except TimeoutError:
        await ws.send("still there?")  # type: ignore[attr-defined]
        return "echoed" if await ws.recv() == "still there?" else "wrong"  # type: ignore[attr-defined]
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else "dropped"
    return f"unexpected message {message!r}"


def test_check_deploy_is_clean_with_the_documented_environment() -> None:
    """``check --deploy`` is clean with deploy/channels-echo.env (given a real secret)."""
    result = manage("check", "--deploy", "--fail-level", "DEBUG", **documented_environment())
    assert result.returncode == 0, result.stderr

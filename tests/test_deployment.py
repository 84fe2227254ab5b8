"""The shipped deployment for real: nginx (deploy/nginx) in front of two server processes,
under each production server (daphne, and uvicorn per docs/servers.md)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
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
from tests.test_settings import manage
from tests.timing import bound

pytestmark = pytest.mark.live

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE = PROJECT_DIR / "deploy/nginx/channels-echo.conf"
# The development server has no place behind nginx.
BACKEND_KINDS = [kind for kind in SERVER_KINDS if kind != "runserver"]
# Clients "elsewhere": loopback addresses other than the one nginx connects to backends from.
CLIENT_ADDRESS = "127.0.0.3"
STRANGER_ADDRESS = "127.0.0.4"
BACKEND_SETTINGS = {"ECHO_TRUSTED_PROXIES": "127.0.0.1", "LOG_LEVEL": "INFO"}
NGINX_ATTEMPTS = 5


def render_site(listen_port: int, backend_ports: list[int], static_root: Path) -> str:
    """The shipped site with its "deployment:" lines pointed at this test's processes; nginx
    serves /static/ from the folder named ``static`` under its root."""
    site = SITE.read_text()
    upstream = "".join(f"    server 127.0.0.1:{port};\n" for port in backend_ports)
    replacements = {
        "    server 127.0.0.1:8001;  # deployment: one line per daphne process\n"
        "    server 127.0.0.1:8002;  # deployment: one line per daphne process\n": upstream,
        "listen 80;": f"listen {HOST}:{listen_port};",
        "root /srv/channels-echo;": f"root {static_root.parent};",
    }
    for shipped, local in replacements.items():
        assert site.count(shipped) == 1, f"{SITE.name} no longer contains {shipped!r}"
        site = site.replace(shipped, local)
    return site


def nginx_config(prefix: Path, site: str) -> str:
    """A whole nginx.conf that needs no root: its own pid file, logs and temp paths."""
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""


def unprivileged(command: list[str]) -> list[str]:
    """As root (CI), drop to nobody; otherwise the caller is unprivileged already."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]


def hand_to_nobody(directory: Path) -> None:
    """nginx runs as nobody, and writes its pid, logs and temp files under its prefix."""
    nobody = pwd.getpwnam("nobody")
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


@dataclass
class Deployment:
    port: int
    backends: list[LiveServer]
    nginx: subprocess.Popen[bytes]
    prefix: Path

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/echo"

    def backend_log(self) -> str:
        return "".join(backend.log() for backend in self.backends)


def collect_static(static_root: Path) -> None:
    """``collectstatic`` as docs/deployment.md runs it, with production settings."""
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=PROJECT_DIR,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_STATIC_ROOT": str(static_root),
        },
        capture_output=True,
        text=True,
        timeout=bound(60),
        check=False,
    )
    assert result.returncode == 0, result.stderr


def candidate_port() -> int:
    """A port free right now; nginx refuses port 0, so it cannot pick one itself."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_nginx(
    prefix: Path, site_on: Callable[[int], str]
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx serving ``site_on(port)``; if another process takes the port first, another try."""
    config, error_log = prefix / "nginx.conf", prefix / "error.log"
    for _ in range(NGINX_ATTEMPTS):
        port = candidate_port()
        config.write_text(nginx_config(prefix, site_on(port)))
        if os.geteuid() == 0:
            hand_to_nobody(prefix)
        nginx = subprocess.Popen(
            unprivileged([NGINX, "-p", str(prefix), "-c", str(config), "-e", str(error_log)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + bound(20)
        while time.monotonic() < deadline and nginx.poll() is None:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                return nginx, port
            except OSError:
                time.sleep(0.05)
        stop_nginx(nginx)
        log = error_log.read_text(errors="replace") if error_log.exists() else ""
        if "Address already in use" not in log:
            raise AssertionError(f"nginx did not listen on {port}:\n{log}")
    raise AssertionError(f"nginx found no free port in {NGINX_ATTEMPTS} tries")


def stop_nginx(nginx: subprocess.Popen[bytes]) -> None:
    """SIGQUIT, nginx's graceful stop; SIGKILL if it has not exited in time."""
    if nginx.poll() is None:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(timeout=bound(10))
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait(timeout=bound(10))


@contextmanager
def deployment(kind: str, log_dir: Path) -> Iterator[Deployment]:
    prefix = Path(tempfile.mkdtemp(prefix="channels-echo-nginx-"))
    backends: list[LiveServer] = []
    nginx = None
    try:
        static_root = prefix / "static"
        collect_static(static_root)
        settings = {**BACKEND_SETTINGS, "DJANGO_STATIC_ROOT": str(static_root)}
        backends = [start_server(kind, log_dir, settings) for _ in range(2)]
        # Only nginx can serve this file: the backends read STATIC_ROOT before it existed.
        (static_root / "served-by-nginx.txt").write_text("from disk\n")
        backend_ports = [backend.port for backend in backends]
        nginx, port = start_nginx(
            prefix, lambda port: render_site(port, backend_ports, static_root)
        )
        yield Deployment(port, backends, nginx, prefix)
    finally:
        if nginx is not None:
            stop_nginx(nginx)
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


def http_get(port: int, path: str, source: str = CLIENT_ADDRESS, **headers: str) -> tuple:
    connection = http.client.HTTPConnection(
        HOST, port, timeout=bound(10), source_address=(source, 0)
    )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@asynccontextmanager
async def all_open(connections: list) -> AsyncIterator[list]:  # type: ignore[type-arg]
    """Opens every WebSocket connection in the list; closes all of them on the way out."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(connection) for connection in connections]


def backend_connections(backend: LiveServer) -> int:
    _, _, body = http_get(backend.port, "/healthz", source=HOST)
    return json.loads(body)["connections"]


def test_page_and_static_files_come_through_nginx(site: Deployment) -> None:
    """The index page is proxied to the backends; static files are served by nginx from disk."""
    status, _, page = http_get(site.port, "/")
    assert status == 200
    assert b'data-subprotocol="echo"' in page
    status, headers, script = http_get(site.port, "/static/echo/app.js")
    assert status == 200
    assert script == (PROJECT_DIR / "echo/static/echo/app.js").read_bytes()
    assert "javascript" in headers["Content-Type"]
    assert headers["Cache-Control"] == "max-age=3600"
    assert http_get(site.port, "/static/served-by-nginx.txt")[2] == b"from disk\n"


def test_hashed_static_files_are_cached_for_good(site: Deployment) -> None:
    """The page loads its script under a content-hashed name, which nginx serves as cacheable
    for good; a deploy that changes the script changes the name."""
    page = http_get(site.port, "/")[2]
    found = re.search(rb'src="(/static/echo/app\.[0-9a-f]{12}\.js)"', page)
    assert found, page
    status, headers, _ = http_get(site.port, found.group(1).decode())
    assert status == 200
    assert "max-age=315360000" in headers["Cache-Control"]
    assert "immutable" in headers["Cache-Control"]


async def test_websocket_echoes_through_nginx(site: Deployment) -> None:
    """The handshake through nginx negotiates echo; text, binary and 1 MiB echo intact."""
    async with connect_echo(site.ws_url) as ws:
        assert ws.subprotocol == "echo"
        for message in ("through the proxy é🎉", os.urandom(1000), os.urandom(1024 * 1024)):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), timeout=bound(10)) == message


async def test_connections_spread_over_both_processes(site: Deployment) -> None:
    """Connections opened through nginx land on both backend processes."""
    async with all_open([connect_echo(site.ws_url) for _ in range(6)]):
        counts = [backend_connections(backend) for backend in site.backends]
    assert all(count >= 2 for count in counts), counts


async def echo_claiming(url: str, source: str, claimed: str) -> None:
    """One echo from the address ``source``, claiming in X-Forwarded-For to be ``claimed``."""
    headers = {"X-Forwarded-For": claimed}
    async with connect_echo(url, local_addr=(source, 0), additional_headers=headers) as ws:
        await ws.send("who am I")
        await ws.recv()


async def logged_client(read_log: Callable[[], str], source: str) -> str:
    """The log once it records the connection from ``source``."""
    return await wait_for_log(read_log, f"event=accepted client={source}:")


async def test_logged_client_is_the_real_one(site: Deployment) -> None:
    """Behind nginx the log names the real client, whatever X-Forwarded-For it claims."""
    await echo_claiming(site.ws_url, CLIENT_ADDRESS, "203.0.113.7")
    assert "203.0.113.7" not in await logged_client(site.backend_log, CLIENT_ADDRESS)


async def test_forwarded_for_is_ignored_from_untrusted_peers(site: Deployment) -> None:
    """A client reaching a backend directly cannot choose its logged address with a header."""
    backend = site.backends[0]
    await echo_claiming(f"{backend.ws_url}/echo", STRANGER_ADDRESS, "198.51.100.9")
    assert "198.51.100.9" not in await logged_client(backend.log, STRANGER_ADDRESS)


@pytest.mark.parametrize("kind", BACKEND_KINDS)
async def test_sigterm_closes_with_1001_and_nginx_routes_around(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGTERM closes a process's clients with 1001; new connections keep succeeding."""
    with deployment(kind, tmp_path_factory.mktemp("sigterm-logs")) as running:
        doomed, survivor = running.backends
        async with all_open([connect_echo(running.ws_url) for _ in range(6)]) as clients:
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
            async with connect_echo(running.ws_url) as ws:
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
    environment = {}
    for line in (PROJECT_DIR / "deploy/channels-echo.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            environment[name] = value
    environment["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    result = manage("check", "--deploy", "--fail-level", "DEBUG", **environment)
    assert result.returncode == 0, result.stderr

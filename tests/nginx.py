"""The shipped nginx site (deploy/nginx) run for real on loopback, ending TLS, for the deployment
and container tests; and the production settings of deploy/channels-echo.env for its backends."""

from __future__ import annotations

import http.client
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect

from tests.live import HOST, PROJECT_DIR, connect_echo
from tests.timing import bound
from tests.tls import Certificate, self_signed

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE = PROJECT_DIR / "deploy/nginx/channels-echo.conf"
# A client "elsewhere": a loopback address other than the one nginx connects to backends from.
CLIENT_ADDRESS = "127.0.0.3"
# The host name of deploy/channels-echo.env and the nginx site.
PUBLIC_HOST = "echo.example.com"
NGINX_ATTEMPTS = 5


def documented_environment(**changes: str) -> dict[str, str]:
    """deploy/channels-echo.env as written, with a real secret and the given changes."""
    environment = {}
    for line in (PROJECT_DIR / "deploy/channels-echo.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            environment[name] = value
    environment["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    environment.update(changes)
    return environment


def render_site(
    ports: tuple[int, int],
    backends: list[tuple[str, int]],
    static_root: Path,
    tls: Certificate,
    address: str = HOST,
) -> str:
    """The shipped site with its "deployment:" lines pointed at this test's processes (address,
    port), its address and ports (plain HTTP, HTTPS) and certificate; nginx serves /static/
    from the folder named ``static`` under its root."""
    site = SITE.read_text()
    upstream = "".join(f"    server {host}:{port};\n" for host, port in backends)
    replacements = {
        "    server 127.0.0.1:8001;  # deployment: one line per daphne process\n"
        "    server 127.0.0.1:8002;  # deployment: one line per daphne process\n": upstream,
        "listen 80;": f"listen {address}:{ports[0]};",
        "listen 443 ssl;": f"listen {address}:{ports[1]} ssl;",
        "ssl_certificate /etc/letsencrypt/live/echo.example.com/fullchain.pem;": (
            f"ssl_certificate {tls.certificate_path};"
        ),
        "ssl_certificate_key /etc/letsencrypt/live/echo.example.com/privkey.pem;": (
            f"ssl_certificate_key {tls.key_path};"
        ),
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
class Proxy:
    """nginx running the shipped site on ``address``: plain HTTP on ``http_port``, HTTPS on
    ``port``."""

    http_port: int
    port: int
    nginx: subprocess.Popen[bytes]
    prefix: Path
    tls: Certificate
    address: str

    @property
    def ws_url(self) -> str:
        return f"wss://{self.address}:{self.port}/echo"

    def connect(self, **options: object) -> connect:
        """A WebSocket through nginx over TLS, verified against the test's certificate."""
        return connect_echo(self.ws_url, ssl=self.tls.client_context(), **options)

    def get(self, path: str, source: str = CLIENT_ADDRESS) -> tuple:
        """GET over HTTPS through nginx, as a browser asking for the public host would."""
        connection = http.client.HTTPSConnection(
            self.address,
            self.port,
            timeout=bound(10),
            source_address=(source, 0),
            context=self.tls.client_context(),
        )
        try:
            connection.request("GET", path, headers={"Host": PUBLIC_HOST})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


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
    prefix: Path,
    site_on: Callable[[tuple[int, int]], str],
    address: str = HOST,
    wrapper: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], tuple[int, int]]:
    """nginx serving ``site_on((http_port, https_port))`` on ``address``, its command line
    after ``wrapper`` (``ip netns exec NAME`` for another host); if another process takes a
    port first, another try."""
    config, error_log = prefix / "nginx.conf", prefix / "error.log"
    for _ in range(NGINX_ATTEMPTS):
        ports = candidate_port(), candidate_port()
        config.write_text(nginx_config(prefix, site_on(ports)))
        if os.geteuid() == 0:
            hand_to_nobody(prefix)
        nginx = subprocess.Popen(
            [
                *wrapper,
                *unprivileged([NGINX, "-p", str(prefix), "-c", str(config), "-e", str(error_log)]),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + bound(20)
        while time.monotonic() < deadline and nginx.poll() is None:
            try:
                for port in ports:
                    socket.create_connection((address, port), timeout=0.5).close()
                return nginx, ports
            except OSError:
                time.sleep(0.05)
        stop_nginx(nginx)
        log = error_log.read_text(errors="replace") if error_log.exists() else ""
        if "Address already in use" not in log:
            raise AssertionError(f"nginx did not listen on {ports}:\n{log}")
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
def nginx_in_front(
    backends: list[tuple[str, int]],
    static_root: Path,
    address: str = HOST,
    wrapper: Sequence[str] = (),
) -> Iterator[Proxy]:
    """The shipped site on ``address``, ending TLS with a self-signed certificate, in front of
    the backends (address, port); /static/ from ``static_root`` (a folder named ``static``).
    Stopped on the way out."""
    prefix = static_root.parent
    tls = self_signed(prefix, PUBLIC_HOST, address)
    nginx, (http_port, port) = start_nginx(
        prefix,
        lambda ports: render_site(ports, backends, static_root, tls, address),
        address,
        wrapper,
    )
    try:
        yield Proxy(http_port, port, nginx, prefix, tls, address)
    finally:
        stop_nginx(nginx)


def http_get(
    port: int,
    path: str,
    source: str | None = CLIENT_ADDRESS,
    address: str = HOST,
    timeout: float = 10,
    **headers: str,
) -> tuple:
    """GET over plain HTTP from ``source`` (the system's choice when None) to ``address``."""
    connection = http.client.HTTPConnection(
        address, port, timeout=bound(timeout), source_address=(source, 0) if source else None
    )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()

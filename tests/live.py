"""Start the project under a real ASGI server process on a free loopback port, for live tests.

Each server gets an environment built from scratch (so a developer's exported variables do not
leak in), writes its output to a log file the test can read, and is stopped by the PID this
module started. Waiting for the port is bounded in time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect

from project import uvicorn_server

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET_KEY = "live-test-secret-key-only-for-these-processes-0123456789abcdefghij"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Log lines are looked for every 0.1 s, for 5 s at most.
LOG_POLLS = 50
LOG_POLL_INTERVAL = 0.1

# The ways the project is served: the development server and the production commands under
# daphne and uvicorn. granian runs only when ECHO_TEST_SERVERS names it: it fails the protocol
# tests, which is why the project does not support it (docs/servers.md).
DEFAULT_SERVER_KINDS = ("daphne", "runserver", "uvicorn")
OPTIONAL_SERVER_KINDS = ("granian",)
SERVER_KINDS = tuple(
    kind.strip()
    for kind in os.environ.get("ECHO_TEST_SERVERS", ",".join(DEFAULT_SERVER_KINDS)).split(",")
    if kind.strip()
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--host", HOST, "--port", str(port)),
            *uvicorn_server.COMMAND_OPTIONS,
            "project.asgi:application",
        ]
    if kind == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asginl", "--host", HOST),
            *("--port", str(port), "--workers", "1", "project.asgi:application"),
        ]
    if kind == "daphne":
        return [
            sys.executable,
            "-m",
            "daphne",
            "--bind",
            HOST,
            "--port",
            str(port),
            "project.asgi:application",
        ]
    if kind == "runserver":
        return [sys.executable, "manage.py", "runserver", "--noreload", f"{HOST}:{port}"]
    raise ValueError(
        f"unknown server kind {kind!r}; expected one of "
        f"{DEFAULT_SERVER_KINDS + OPTIONAL_SERVER_KINDS}"
    )


def server_environment(kind: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """runserver is the development command, so it runs with DEBUG on; daphne as production."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_DEBUG": "true" if kind == "runserver" else "false",
    }
    environment.update(overrides)
    return environment


@dataclass
class LiveServer:
    """One running server process and where to reach it."""

    kind: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


def start_server(
    kind: str, log_dir: Path, overrides: Mapping[str, str] | None = None
) -> LiveServer:
    port = free_port()
    log_path = log_dir / f"{kind}-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            server_command(kind, port),
            cwd=PROJECT_DIR,
            env=server_environment(kind, overrides or {}),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(kind, port, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}:\n{server.log()}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            return server
    server.stop()
    raise RuntimeError(f"{kind} did not listen on {port} within {START_TIMEOUT}s:\n{server.log()}")


def connect_echo(url: str, **options: object) -> connect:
    """A client as a test wants it: offers ``echo``, no size cap, no proxy, no compression."""
    settings: dict[str, object] = {
        "subprotocols": ["echo"],
        "max_size": None,
        "proxy": None,
        "compression": None,
        "open_timeout": 10,
        "close_timeout": 5,
    }
    settings.update(options)
    return connect(url, **settings)


async def wait_for_log(read_log: Callable[[], str], text: str) -> str:
    """The log once it contains ``text``; servers write their log after the client has moved on."""
    for _ in range(LOG_POLLS):
        if text in (log := read_log()):
            return log
        await asyncio.sleep(LOG_POLL_INTERVAL)
    raise AssertionError(f"{text!r} did not appear in the log within 5 s:\n{read_log()}")

"""Start an ASGI application under a real server process on loopback, and stop it.

The live tests, the deployment tests and the benchmark all start servers through this module,
with the command lines of ``servers.commands``, and granian's, which is measured for comparison
and not supported (docs/servers.md). A server is asked for port 0 and picks a
free port itself; the port is then read back from the process's listening socket, so no other
process can take it in between. Every wait is bounded, and a server is stopped by the PID this
module started.

It needs ``psutil`` (the ``dev`` and ``bench`` extras), which the service itself does not.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from servers import commands
from servers.commands import PROJECT_APPLICATION

__all__ = ["PROJECT_APPLICATION"]

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
POLL_INTERVAL = 0.05


# The supported servers, and granian.
SUPPORTED_KINDS = commands.KINDS
KINDS = (*SUPPORTED_KINDS, "granian")


def command(kind: str, application: str = PROJECT_APPLICATION) -> list[str]:
    """How ``kind`` serves ``application`` on HOST, on a port the server chooses."""
    if kind == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asginl", "--host", HOST),
            *("--port", "0", "--workers", "1", "--loop", "uvloop", "--no-access-log"),
            application,
        ]
    return commands.command(kind, application, host=HOST, port=0)


@dataclass
class ServerProcess:
    """One running server process: where to reach it, its log, and how to stop it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def processes(self) -> list[psutil.Process]:
        """The server and its workers (granian serves from child processes)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL if it has not exited in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)


def start(
    argv: Sequence[str],
    *,
    environment: Mapping[str, str],
    log_path: Path,
    timeout: float = 30.0,
) -> ServerProcess:
    """Runs ``argv`` (a ``command()``, or any server told to listen on port 0) until it listens
    on HOST and accepts a connection; its output goes to ``log_path``."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(argv),
            cwd=PROJECT_DIR,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, 0, log_path)
    try:
        server.port = wait_until_listening(server, timeout)
    except TimeoutError:
        server.stop()
        raise
    return server


def wait_until_listening(server: ServerProcess, timeout: float, *, other_than: int = 0) -> int:
    """The port on HOST that ``server`` listens and accepts connections on, once it does; with
    ``other_than``, a port other than that one, for a server that starts again on a port of
    its own choosing (runserver's autoreloader)."""
    argv = server.process.args
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{argv} exited with {server.process.returncode}:\n{server.log()}")
        port = listening_port(server)
        if port is not None and port != other_than and accepts(port):
            return port
        time.sleep(POLL_INTERVAL)
    raise TimeoutError(f"{argv} did not listen on {HOST} within {timeout} s:\n{server.log()}")


def listening_port(server: ServerProcess) -> int | None:
    for process in server.processes():
        try:
            connections = process.net_connections(kind="tcp4")
        except psutil.NoSuchProcess:
            continue
        for connection in connections:
            if connection.status == psutil.CONN_LISTEN and connection.laddr.ip == HOST:
                return connection.laddr.port
    return None


def accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
    except OSError:
        return False
    return True

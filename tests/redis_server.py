"""A real Redis server on loopback, the channel layer the chat room runs on in the live tests
(``tests/test_chat.py``) and in the benchmark's W6 (``bench/run.py``).

It is Debian's ``redis-server`` (``make test`` installs the package), started on 127.0.0.1 on a
port free when it starts, in a folder of its own and with nothing written to disk, and stopped
by the PID this module started. Redis cannot choose its own port, so a port taken in between
by another process means another try on another port. Every wait is bounded.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.launcher import ServerProcess
from tests.timing import bound

HOST = "127.0.0.1"
REDIS_SERVER = shutil.which("redis-server")
ATTEMPTS = 5
POLL_INTERVAL = 0.05


class RedisServer(ServerProcess):
    """One running redis-server: where to reach it, its log, and how to stop it (SIGTERM,
    Redis's own shutdown, which saves nothing here: there are no save points)."""

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"


def candidate_port() -> int:
    """A port free right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def answers_ping(port: int) -> bool:
    """Whether a Redis server on ``port`` answers PING (an inline command, RESP's simplest)."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start(directory: Path) -> RedisServer:
    """redis-server on a free loopback port, its working folder and log in ``directory``, once
    it answers PING."""
    if REDIS_SERVER is None:
        raise FileNotFoundError("redis-server is not installed (Debian's redis-server package)")
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(ATTEMPTS):
        port = candidate_port()
        log_path = directory / f"redis-{attempt}.log"
        process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--bind", HOST, "--port", str(port), "--dir", str(directory)),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                *("--logfile", str(log_path)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = RedisServer(process, port, log_path)
        deadline = time.monotonic() + bound(10)
        while time.monotonic() < deadline and process.poll() is None:
            if answers_ping(port):
                return server
            time.sleep(POLL_INTERVAL)
        server.stop(timeout=bound(10))
        if "Address already in use" not in server.log():
            raise RuntimeError(f"redis-server did not answer on {HOST}:{port}:\n{server.log()}")
    raise RuntimeError(f"redis-server found no free port in {ATTEMPTS} tries")


@contextmanager
def running(directory: Path) -> Iterator[RedisServer]:
    """A Redis server for the duration of the ``with`` block."""
    server = start(directory)
    try:
        yield server
    finally:
        server.stop(timeout=bound(10))

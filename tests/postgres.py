"""A real PostgreSQL server for the fast consumer's database tests, and a way to point Django's
connections at a database for one test.

The server is Debian's (``postgresql``, installed by ``make test``), in a data directory of its
own, listening on a unix socket only: nothing else on the machine can reach it, and no port is
taken. It refuses to run as root, so under CI it runs as the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgiref.local import Local
from django.db import connections

from tests.timing import bound

BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
SERVER_USER = "postgres"


@dataclass
class PostgresServer:
    """A running server: its socket directory (Django's ``HOST``) and its process."""

    socket_directory: Path
    process: subprocess.Popen[bytes]

    def database(self, **options: Any) -> dict[str, Any]:
        """A ``DATABASES`` entry for the server's ``postgres`` database."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": SERVER_USER,
            "HOST": str(self.socket_directory),
            **options,
        }


def as_server_user(command: list[str]) -> list[str]:
    """As root (CI), run as the postgres user; otherwise the caller's own user runs it."""
    if os.geteuid() != 0:
        return command
    user = f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}", "--init-groups"
    return ["setpriv", *user, *command]


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Initialises a data directory and runs the server until the block ends."""
    if not BINARIES:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql)")
    binaries = BINARIES[-1].parent
    root = Path(tempfile.mkdtemp(prefix="channels-echo-postgres-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    data, sockets = root / "data", root / "sockets"
    subprocess.run(
        as_server_user(
            [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", SERVER_USER]
        ),
        check=True,
        capture_output=True,
        timeout=bound(60),
    )
    subprocess.run(as_server_user(["mkdir", str(sockets)]), check=True, timeout=bound(10))
    process = subprocess.Popen(
        as_server_user(
            [
                str(binaries / "postgres"),
                *("-D", str(data), "-k", str(sockets), "-c", "listen_addresses="),
                *("-c", "fsync=off"),
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + bound(30)
        while not (sockets / ".s.PGSQL.5432").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {process.stderr.read()!r}")
            time.sleep(0.05)
        yield PostgresServer(sockets, process)
    finally:
        process.send_signal(signal.SIGINT)  # a fast shutdown
        try:
            process.wait(timeout=bound(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def databases(configuration: dict[str, dict[str, Any]]) -> Iterator[None]:
    """Django's connections, for the block, configured as ``DATABASES = configuration``.

    Overriding the ``DATABASES`` setting does not reach connections Django has set up already
    (it warns as much), so the connection handler's own settings and connections are swapped,
    and put back after. Close the block's connections, in the threads that opened them, before
    it ends.
    """
    saved = connections._settings, connections.__dict__.get("settings"), connections._connections
    connections._settings = configuration
    connections.__dict__["settings"] = connections.configure_settings(configuration)
    connections._connections = Local(connections.thread_critical)
    try:
        yield
    finally:
        connections._settings, settings, connections._connections = saved
        if settings is None:
            connections.__dict__.pop("settings", None)
        else:
            connections.__dict__["settings"] = settings

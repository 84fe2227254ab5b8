"""The project under real ASGI server processes, for live tests.

Servers are started through ``tests.launcher``: each picks its own free loopback port, gets
an environment built from scratch (so a developer's exported variables do not leak in), writes
its output to a log file the test can read, and is stopped by the PID it was started with.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect

from tests import launcher
from tests.launcher import HOST, PROJECT_APPLICATION, PROJECT_DIR, ServerProcess
from tests.timing import bound

__all__ = ["HOST", "PROJECT_APPLICATION", "PROJECT_DIR"]

SECRET_KEY = "live-test-secret-key-only-for-these-processes-0123456789abcdefghij"
# Log lines are looked for every 0.1 s, for 5 s at most (scaled by ECHO_TEST_TIME_FACTOR).
LOG_WAIT = 5.0
LOG_POLL_INTERVAL = 0.1
LOG_NUMBERS = itertools.count()

# The live tests run under every supported way of serving the project; ECHO_TEST_SERVERS narrows
# the list, or adds granian to show why it is not supported (docs/servers.md).
SERVER_KINDS = tuple(
    kind.strip()
    for kind in os.environ.get("ECHO_TEST_SERVERS", ",".join(launcher.SUPPORTED_KINDS)).split(",")
    if kind.strip()
)


def server_environment(kind: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """runserver is the development command, so it runs with DEBUG on; the others as production."""
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
    """The project running under one kind of server."""

    kind: str
    server: ServerProcess

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def pid(self) -> int:
        return self.server.process.pid

    @property
    def http_url(self) -> str:
        return self.server.http_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    def log(self) -> str:
        return self.server.log()

    def log_end(self) -> int:
        """Where the log ends now. A client's lines are looked for only after the point where
        the log stood before it connected: a live server serves many connections over a session,
        and a local port that served one of them comes round again."""
        return len(self.log())

    def terminate(self) -> None:
        """SIGTERM, leaving the process to shut down on its own."""
        self.server.process.terminate()

    def wait(self) -> int:
        """The exit status, within the stop bound."""
        return self.server.process.wait(timeout=bound(10))

    def stop(self) -> None:
        self.server.stop(timeout=bound(10))


def rss_bytes(server: LiveServer) -> int:
    """The server process's resident memory, from /proc."""
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for the server process")


def reset_peak_rss(server: LiveServer) -> int:
    """Sets the process's peak resident memory (VmHWM) back to its current RSS, which it
    returns: ``peak_rss_bytes`` then reports the peak since this call, not since start-up."""
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")
    return rss_bytes(server)


def peak_rss_bytes(server: LiveServer) -> int:
    """The process's peak resident memory since start-up or the last ``reset_peak_rss``."""
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for the server process")


def start_server(
    kind: str,
    log_dir: Path,
    overrides: Mapping[str, str] | None = None,
    application: str = PROJECT_APPLICATION,
) -> LiveServer:
    """``kind`` serving ``application`` (``module:attribute``); runserver serves only the
    project's."""
    log_path = log_dir / f"{kind}-{next(LOG_NUMBERS)}.log"
    server = launcher.start(
        launcher.command(kind, application),
        environment=server_environment(kind, overrides or {}),
        log_path=log_path,
        timeout=bound(30),
    )
    return LiveServer(kind, server)


def connect_echo(url: str, **options: object) -> connect:
    """A client as a test wants it: offers ``echo``, no size cap, no proxy, no compression."""
    settings: dict[str, object] = {
        "subprotocols": ["echo"],
        "max_size": None,
        "proxy": None,
        "compression": None,
        "open_timeout": bound(10),
        "close_timeout": bound(5),
    }
    settings.update(options)
    return connect(url, **settings)


async def wait_for_log(read_log: Callable[[], str], text: str) -> str:
    """The log once it contains ``text``; servers write their log after the client has moved on."""
    for _ in range(round(bound(LOG_WAIT) / LOG_POLL_INTERVAL)):
        if text in (log := read_log()):
            return log
        await asyncio.sleep(LOG_POLL_INTERVAL)
    raise AssertionError(f"{text!r} did not appear in the log in time:\n{read_log()}")

"""The servers a benchmark run compares, and how to start, watch and stop each one.

Every target is started through ``tests/launcher.py`` on a loopback port it picks itself, runs
with production settings (DEBUG off, INFO logging) and is measured with psutil: RSS and CPU time
of its whole process tree, since granian serves from worker processes.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests import launcher
from tests.launcher import ServerProcess

PROJECT_APP = launcher.PROJECT_APPLICATION
RAW_APP = "bench.peers.raw_asgi:application"
STOCK_APP = "bench.peers.stock_channels:application"
# The tutorial's chat room on the fast consumer (the tests' own), and on the stock one.
CHAT_APP = "tests.chat_asgi:application"
STOCK_CHAT_APP = "bench.peers.stock_chat:application"
SQLITE_SETTINGS = (("DJANGO_SETTINGS_MODULE", "bench.sqlite_settings"),)
CHAT_SETTINGS = (("DJANGO_SETTINGS_MODULE", "tests.chat_settings"),)
MEMORY_LAYER = (*CHAT_SETTINGS, ("ECHO_CHAT_CHANNEL_LAYER", "memory"))
# The workloads of the echo; the chat room runs W6 alone.
ECHO_WORKLOADS = ("W1", "W2", "W3", "W4", "W4c", "W5")
CHAT_WORKLOADS = ("W6",)
REFERENCE = [sys.executable, "-m", "bench.peers.websockets_echo", "0"]
AIOHTTP = [sys.executable, "-m", "bench.peers.aiohttp_echo", "0"]
# Worker processes (granian's) may still be starting when the port first accepts.
SETTLE_SECONDS = 0.3


@dataclass(frozen=True)
class Target:
    name: str
    command: list[str]
    reference: bool = False
    group: str = "project"
    # Settings of this target on top of ENVIRONMENT.
    settings: tuple[tuple[str, str], ...] = ()
    # Whether it negotiates permessage-deflate (W4c and W5 need it): stock daphne never
    # switches autobahn's on, and granian has none.
    compression: bool = True
    # The workloads it runs, by key.
    workloads: tuple[str, ...] = ECHO_WORKLOADS
    # Its channel layer is channels-redis on the Redis server bench/run.py starts for the run,
    # whose URL run.py adds to its settings.
    on_redis: bool = False

    @property
    def chat(self) -> bool:
        """Whether it serves the chat room, at /ws/chat/<room>/, rather than the echo."""
        return self.workloads == CHAT_WORKLOADS


TARGETS = [
    Target("websockets", REFERENCE, True, "reference"),
    Target("aiohttp", AIOHTTP, group="peers"),
    # Grouped by server: the order rotates each repetition but stays cyclic, so targets whose
    # figures are compared with each other always run within a few minutes of each other.
    Target("project / daphne", launcher.command("daphne", PROJECT_APP)),
    # The cost of /metrics: the same project with it switched off.
    Target(
        "project, metrics off / daphne",
        launcher.command("daphne", PROJECT_APP),
        group="metrics off",
        settings=(("ECHO_METRICS", "off"),),
    ),
    Target(
        "raw ASGI / daphne",
        launcher.command("daphne", RAW_APP),
        group="raw ASGI",
        compression=False,
    ),
    Target(
        "stock Channels / daphne", launcher.command("daphne", STOCK_APP), group="stock Channels"
    ),
    # W1 with a database configured: Channels closes stale database connections around every
    # message, and the fast consumer has to keep doing so.
    *(
        Target(
            f"{name}, SQLite / daphne",
            launcher.command("daphne", application),
            group="SQLite",
            settings=SQLITE_SETTINGS,
            workloads=("W1",),
        )
        for name, application in (("project", PROJECT_APP), ("stock Channels", STOCK_APP))
    ),
    # W6, the chat room, on each channel layer: the fast consumer next to the stock one.
    *(
        Target(
            f"{name} / daphne, {layer}",
            launcher.command("daphne", application),
            group="chat",
            settings=settings,
            workloads=CHAT_WORKLOADS,
            on_redis=on_redis,
        )
        for layer, settings, on_redis in (
            ("in-memory layer", MEMORY_LAYER, False),
            ("Redis layer", CHAT_SETTINGS, True),
        )
        for name, application in (("chat", CHAT_APP), ("stock chat", STOCK_CHAT_APP))
    ),
    Target("project / uvicorn", launcher.command("uvicorn", PROJECT_APP)),
    Target(
        "project, metrics off / uvicorn",
        launcher.command("uvicorn", PROJECT_APP),
        group="metrics off",
        settings=(("ECHO_METRICS", "off"),),
    ),
    Target("raw ASGI / uvicorn", launcher.command("uvicorn", RAW_APP), group="raw ASGI"),
    Target("project / granian", launcher.command("granian", PROJECT_APP), compression=False),
    Target(
        "raw ASGI / granian",
        launcher.command("granian", RAW_APP),
        group="raw ASGI",
        compression=False,
    ),
]

ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
    # As deploy/channels-echo.env sets them, for every target alike: without them 64 KiB
    # throughput depends on where glibc's heap happened to end up at start-up
    # (docs/performance.md).
    "MALLOC_MMAP_THRESHOLD_": "1048576",
    "MALLOC_TRIM_THRESHOLD_": "4194304",
}


@dataclass
class RunningServer:
    target: Target
    server: ServerProcess

    @property
    def url(self) -> str:
        return f"{self.server.ws_url}/echo"

    def room_url(self, room: str) -> str:
        return f"{self.server.ws_url}/ws/chat/{room}/"

    def cpu_seconds(self) -> float:
        """User and system time of the server and its workers."""
        total = 0.0
        for process in self.server.processes():
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:  # a worker that exited since it was listed
                continue
            total += times.user + times.system
        return total

    def rss_bytes(self) -> int:
        total = 0
        for process in self.server.processes():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:  # a worker that exited since it was listed
                continue
        return total

    def stop(self) -> None:
        self.server.stop(timeout=15)


def start(target: Target, log_dir: Path) -> RunningServer:
    slug = target.name.replace(" / ", "-").replace(" ", "-")
    server = launcher.start(
        target.command,
        environment={**os.environ, **ENVIRONMENT, **dict(target.settings)},
        log_path=log_dir / f"{slug}-{time.monotonic_ns()}.log",
    )
    time.sleep(SETTLE_SECONDS)
    return RunningServer(target, server)

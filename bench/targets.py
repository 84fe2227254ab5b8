"""The servers a benchmark run compares, and how to start, watch and stop each one.

Every target listens on a free loopback port, runs with production settings (DEBUG off, INFO
logging) and is measured from ``/proc``: RSS and CPU time of its whole process tree, since
granian serves from worker processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from project import uvicorn_server

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

PROJECT_APP = "project.asgi:application"
RAW_APP = "bench.peers.raw_asgi:application"
STOCK_APP = "bench.peers.stock_channels:application"


def daphne(app: str) -> list[str]:
    return [sys.executable, "-m", "daphne", "--bind", HOST, "--port", "{port}", app]


def uvicorn(app: str) -> list[str]:
    """The command docs/servers.md gives, for the raw echo too: the same server for both."""
    return [
        *(sys.executable, "-m", "uvicorn", "--host", HOST, "--port", "{port}"),
        *uvicorn_server.COMMAND_OPTIONS,
        app,
    ]


def granian(app: str) -> list[str]:
    return [
        *(sys.executable, "-m", "granian", "--interface", "asginl", "--host", HOST),
        *("--port", "{port}", "--workers", "1", "--loop", "uvloop", "--no-access-log", app),
    ]


@dataclass(frozen=True)
class Target:
    name: str
    command: list[str]
    reference: bool = False
    group: str = "project"

    def argv(self, port: int) -> list[str]:
        return [part.replace("{port}", str(port)) for part in self.command]


TARGETS = [
    Target(
        "websockets",
        [sys.executable, "-m", "bench.peers.websockets_echo", "{port}"],
        True,
        "reference",
    ),
    Target("project / daphne", daphne(PROJECT_APP)),
    Target("project / uvicorn", uvicorn(PROJECT_APP)),
    Target("project / granian", granian(PROJECT_APP)),
    Target("raw ASGI / daphne", daphne(RAW_APP), group="raw ASGI"),
    Target("raw ASGI / uvicorn", uvicorn(RAW_APP), group="raw ASGI"),
    Target("raw ASGI / granian", granian(RAW_APP), group="raw ASGI"),
    Target("stock Channels / daphne", daphne(STOCK_APP), group="stock Channels"),
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    pids, index = [pid], 0
    while index < len(pids):
        for task in Path(f"/proc/{pids[index]}/task").glob("*"):
            children = (
                (task / "children").read_text().split() if (task / "children").exists() else []
            )
            pids.extend(int(child) for child in children)
        index += 1
    return pids


@dataclass
class RunningServer:
    target: Target
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/echo"

    def cpu_seconds(self) -> float:
        total = 0
        for pid in process_tree(self.process.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / CLOCK_TICKS

    def rss_bytes(self) -> int:
        total = 0
        for pid in process_tree(self.process.pid):
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
            except FileNotFoundError:
                continue
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start(target: Target, log_dir: Path) -> RunningServer:
    port = free_port()
    log_path = log_dir / f"{target.name.replace(' / ', '-').replace(' ', '-')}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            target.argv(port),
            cwd=PROJECT_DIR,
            env={**os.environ, **ENVIRONMENT},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(target, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{target.name} exited: {log_path.read_text()[-2000:]}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            time.sleep(0.3)  # let worker processes finish starting
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{target.name} did not listen within 30 s")

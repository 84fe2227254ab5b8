"""Fixtures shared by the suite (live servers started once per configuration and reused), and how
many examples each property test draws."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis
import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.container import build_image
from tests.live import HOST, PROJECT_APPLICATION, SERVER_KINDS, LiveServer, start_server
from tests.rawws import RawClient
from tests.redis_server import REDIS_SERVER, RedisServer, running
from tests.timing import bound

ServerFactory = Callable[..., LiveServer]

# Each property test draws 100 examples, as `make test` can afford; ECHO_TEST_EXAMPLES=10000
# draws more. No deadline: on a loaded machine a slow example is the machine's doing.
hypothesis.settings.register_profile(
    "echo", max_examples=int(os.environ.get("ECHO_TEST_EXAMPLES", "100")), deadline=None
)
hypothesis.settings.load_profile("echo")


@pytest.fixture(scope="session", autouse=True)
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Static files collected as production collects them (content-hashed, with a manifest),
    for the in-process tests and every live server."""
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=str(root)):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.fixture(scope="session")
def live_servers(
    tmp_path_factory: pytest.TempPathFactory, static_root: Path
) -> Iterator[ServerFactory]:
    """Starts a server per (kind, application, settings) on first use; stops each by its PID at
    the end. ``application`` is what the server serves, as ``module:attribute``."""
    log_dir = tmp_path_factory.mktemp("server-logs")
    running: dict[tuple[str, str, frozenset[tuple[str, str]]], LiveServer] = {}

    def serve(kind: str, application: str = PROJECT_APPLICATION, **overrides: str) -> LiveServer:
        key = (kind, application, frozenset(overrides.items()))
        if key not in running:
            environment = {"DJANGO_STATIC_ROOT": str(static_root), **overrides}
            running[key] = start_server(kind, log_dir, environment, application)
        return running[key]

    yield serve
    crashed = []
    for server in running.values():
        server.stop()
        if "Traceback" in server.log():
            crashed.append(f"--- {server.kind} on {server.port}:\n{server.log()}")
    assert not crashed, "a live server logged a traceback:\n" + "\n".join(crashed)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis server for the session, on a free loopback port, stopped by its PID."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed: `make test` installs Debian's redis-server")
    with running(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def container_image() -> str:
    """The Containerfile's image, built once a session on a local Debian base."""
    if os.geteuid() != 0:
        pytest.skip("builds a base image with debootstrap, which needs root (CI runs as root)")
    workdir = Path(tempfile.mkdtemp(prefix="channels-echo-image-"))
    try:
        image = build_image(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return image


RawClients = Callable[..., RawClient]


@pytest.fixture
def raw_clients() -> Iterator[RawClients]:
    """Opens raw connections for a test and closes every one of them afterwards."""
    opened: list[RawClient] = []

    def connect(server: LiveServer, *, handshake: bool = True, timeout: float = 10) -> RawClient:
        client = (
            RawClient.open(HOST, server.port)
            if handshake
            else RawClient(HOST, server.port, bound(timeout))
        )
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


@pytest.fixture(params=SERVER_KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def echo_server(live_servers: ServerFactory, server_kind: str) -> LiveServer:
    """The project with its default settings, under each supported server."""
    return live_servers(server_kind)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Keeps each phase's report on the test item, so fixtures can act on a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report

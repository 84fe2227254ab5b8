"""The Containerfile for real: the image (``tests/container.py``), two containers behind the
shipped nginx site, and what a rolling update does to their clients.

The containers use the host's network and listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.container import IMAGE, LIMITS, PODMAN, podman
from tests.live import HOST
from tests.nginx import (
    Proxy,
    candidate_port,
    collect_static,
    documented_environment,
    nginx_in_front,
)
from tests.timing import bound

pytestmark = [pytest.mark.live, pytest.mark.container]

# The image's own static files; the backends find them where the Containerfile put them.
STATIC_IN_IMAGE = "/app/static"
STOP_GRACE = 10
TEST_TOOLS = ("pytest", "playwright", "ruff", "psutil", "granian", "matplotlib")


@dataclass
class Container:
    """One running container of the image, listening on 127.0.0.1:``port``."""

    id: str
    port: int

    def healthz(self) -> int:
        url = f"http://{HOST}:{self.port}/healthz"
        with urllib.request.urlopen(url, timeout=bound(5)) as response:
            return response.status


def run_container(secret: str) -> Container:
    port = candidate_port()
    environment = documented_environment(
        DJANGO_SECRET_KEY=secret, DJANGO_STATIC_ROOT=STATIC_IN_IMAGE
    )
    environment.update(ECHO_BIND=HOST, PORT=str(port))
    settings = [
        part for name, value in environment.items() for part in ("--env", f"{name}={value}")
    ]
    container_id = podman("run", "--detach", "--network", "host", *LIMITS, *settings, IMAGE)
    container = Container(container_id, port)
    deadline = time.monotonic() + bound(30)
    while time.monotonic() < deadline:
        try:
            if container.healthz() == 200:
                return container
        except OSError:
            time.sleep(0.2)
    logs = podman("logs", container_id)
    raise AssertionError(f"the container did not answer /healthz on {port}:\n{logs}")


@dataclass
class ContainerDeployment(Proxy):
    containers: list[Container]


@pytest.fixture(scope="module")
def deployed(container_image: str) -> Iterator[ContainerDeployment]:
    """Two containers of the image behind nginx; all removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="channels-echo-container-"))
    containers: list[Container] = []
    try:
        secret = documented_environment()["DJANGO_SECRET_KEY"]
        containers = [run_container(secret) for _ in range(2)]
        static_root = workdir / "static"
        collect_static(static_root)
        backends = [(HOST, container.port) for container in containers]
        with nginx_in_front(backends, static_root) as proxy:
            yield ContainerDeployment(**vars(proxy), containers=containers)
    finally:
        for container in containers:
            subprocess.run(
                [*PODMAN, "rm", "--force", container.id], capture_output=True, check=False
            )
        shutil.rmtree(workdir, ignore_errors=True)


def test_page_and_health(deployed: ContainerDeployment) -> None:
    """The page comes through nginx over HTTPS, and each container answers its probe."""
    status, _, page = deployed.get("/")
    assert status == 200
    assert b'data-subprotocol="echo"' in page
    assert [container.healthz() for container in deployed.containers] == [200, 200]


def test_image_healthcheck_passes(deployed: ContainerDeployment) -> None:
    """The image's own HEALTHCHECK passes in a running container."""
    podman("healthcheck", "run", deployed.containers[0].id)


async def test_echoes_text_binary_and_empty(deployed: ContainerDeployment) -> None:
    """Text, binary and empty messages come back as they went, through nginx and TLS."""
    async with deployed.connect() as ws:
        for message in ("from a container é", os.urandom(2048), "", b""):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), timeout=bound(10)) == message


async def test_limits_and_refusals(deployed: ContainerDeployment) -> None:
    """A message over the limit ends with 1009; a client not offering echo gets 403."""
    async with deployed.connect() as ws:
        await ws.send(b"x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=bound(10))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    with pytest.raises(InvalidStatus) as refused:
        async with deployed.connect(subprotocols=["chat"]):
            pass
    assert refused.value.response.status_code == 403


def test_runs_as_an_unprivileged_user(deployed: ContainerDeployment) -> None:
    """The server runs as uid 10001, not root."""
    assert podman("exec", deployed.containers[0].id, "id", "-u") == "10001"


def test_image_holds_no_test_or_benchmark_tools(deployed: ContainerDeployment) -> None:
    """The image was installed from the runtime lock: no test or benchmark tools inside."""
    script = (
        "import importlib.util; "
        f"print(','.join(m for m in {TEST_TOOLS!r} if importlib.util.find_spec(m)))"
    )
    found = podman("run", "--rm", "--network", "none", *LIMITS, IMAGE, "python", "-c", script)
    assert found == ""


async def test_stop_drains_with_1001_while_the_other_serves(
    deployed: ContainerDeployment,
) -> None:
    """``podman stop`` closes the container's WebSockets with 1001 within the grace period,
    and new connections go to the other container. Runs last: it stops one of them."""
    doomed, survivor = deployed.containers
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(deployed.connect()) for _ in range(6)]
        started = time.monotonic()
        podman("stop", "--time", str(STOP_GRACE), doomed.id)
        assert time.monotonic() - started < STOP_GRACE
        codes = []
        for ws in clients:
            try:
                await ws.send("still there?")
                await asyncio.wait_for(ws.recv(), timeout=bound(5))
                codes.append("echoed")
            except ConnectionClosed as closed:
                codes.append(closed.rcvd.code if closed.rcvd else "dropped")
    assert set(codes) == {1001, "echoed"}, codes
    for attempt in range(10):
        async with deployed.connect() as ws:
            await ws.send(f"after the stop {attempt}")
            assert (
                await asyncio.wait_for(ws.recv(), timeout=bound(5)) == f"after the stop {attempt}"
            )
    assert survivor.healthz() == 200

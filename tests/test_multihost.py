"""The service on several hosts with real addresses: an edge host running the shipped nginx site
and two backend hosts running one daphne process each, as network namespaces on one bridge.

The test is the client host: the bridge's own address, in the root namespace. The backends are
configured as docs/deployment.md ("More hosts") says: the edge's address is the only
trusted proxy and the only address allowed to read /metrics (a Prometheus on the edge host),
and ``DJANGO_ALLOWED_HOSTS`` is the public host name. The test makes the namespaces, the bridge
and the links itself, on a /24 of 10.214.0.0/16 of its own, sends traffic only to them, and
removes them all on the way out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from servers import commands
from tests.launcher import ServerProcess
from tests.live import (
    PROJECT_DIR,
    LiveServer,
    connect_echo,
    server_environment,
    wait_for_log,
)
from tests.nginx import PUBLIC_HOST, Proxy, collect_static, documented_environment, http_get
from tests.nginx import nginx_in_front as nginx_on
from tests.timing import bound

pytestmark = pytest.mark.live

IP = shutil.which("ip") or "/usr/sbin/ip"
NETWORK_BLOCK = ipaddress.ip_network("10.214.0.0/16")
BACKEND_PORT = 8000
# Each set of hosts a test builds has names and a subnet of its own.
CLUSTER_NUMBERS = itertools.count()
NOT_PERMITTED = "Operation not permitted"
# Addresses clients claim in X-Forwarded-For; never believed.
FORGED = "198.51.100.9"
# Clients that notice a lost path by their own keepalive, and give up on the closing
# handshake, quickly enough for a test.
KEEPALIVE = {"ping_interval": 0.5, "ping_timeout": 1.5, "close_timeout": 1}


def ip(*arguments: str) -> None:
    result = subprocess.run(
        [IP, *arguments], capture_output=True, text=True, timeout=bound(10), check=False
    )
    assert result.returncode == 0, f"ip {' '.join(arguments)}: {result.stderr}"


def make(what: str, *arguments: str) -> None:
    """``ip`` making something; the test is skipped, saying why, where the machine does not
    let it (no root, or a container without the capability)."""
    result = subprocess.run(
        [IP, *arguments], capture_output=True, text=True, timeout=bound(10), check=False
    )
    if result.returncode != 0 and NOT_PERMITTED in result.stderr:
        pytest.skip(f"this machine cannot make {what} for the hosts: {result.stderr.strip()}")
    assert result.returncode == 0, f"ip {' '.join(arguments)}: {result.stderr}"


@dataclass(frozen=True)
class Host:
    """A network namespace with one link to the bridge: ``link`` is its end on the bridge."""

    namespace: str
    address: str
    link: str

    def command(self, argv: list[str]) -> list[str]:
        return [IP, "netns", "exec", self.namespace, *argv]


@contextmanager
def bridged_hosts(names: list[str]) -> Iterator[tuple[str, list[Host]]]:
    """A bridge in the root namespace (whose address is the client's) and a host per name;
    all removed on the way out, even after a failure."""
    number = next(CLUSTER_NUMBERS)
    tag = f"ce{os.getpid() % 100000}n{number}"
    subnets = list(NETWORK_BLOCK.subnets(new_prefix=24))
    subnet = subnets[(os.getpid() * 8 + number) % len(subnets)]
    addresses = [str(address) for address in subnet.hosts()]
    bridge = f"{tag}br"
    hosts = [
        Host(f"{tag}-{name}", addresses[10 + index], f"{tag}v{index}")
        for index, name in enumerate(names)
    ]
    with ExitStack() as cleanup:
        make("a bridge", "link", "add", bridge, "type", "bridge")
        cleanup.callback(subprocess.run, [IP, "link", "del", bridge], check=False)
        ip("addr", "add", f"{addresses[0]}/{subnet.prefixlen}", "dev", bridge)
        ip("link", "set", bridge, "up")
        for host in hosts:
            make("network namespaces", "netns", "add", host.namespace)
            cleanup.callback(subprocess.run, [IP, "netns", "del", host.namespace], check=False)
            ip(
                "link",
                "add",
                host.link,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.namespace,
            )
            cleanup.callback(subprocess.run, [IP, "link", "del", host.link], check=False)
            ip("link", "set", host.link, "master", bridge, "up")
            inside = ("-n", host.namespace)
            ip(*inside, "addr", "add", f"{host.address}/{subnet.prefixlen}", "dev", "eth0")
            ip(*inside, "link", "set", "eth0", "up")
            ip(*inside, "link", "set", "lo", "up")
        yield addresses[0], hosts


def start_backend(host: Host, log_path: Path, settings: dict[str, str]) -> LiveServer:
    """daphne on the host's address, started in its namespace; ``ip netns exec`` becomes the
    server, so the PID started is the server's."""
    argv = commands.command("daphne", host=host.address, port=BACKEND_PORT)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            host.command(argv),
            cwd=PROJECT_DIR,
            env=server_environment("daphne", settings),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer("daphne", ServerProcess(process, BACKEND_PORT, log_path))
    deadline = time.monotonic() + bound(30)
    while time.monotonic() < deadline and process.poll() is None:
        if accepts_at(host.address, BACKEND_PORT):
            return server
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"daphne on {host.namespace} did not listen:\n{server.log()}")


def accepts_at(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=0.5).close()
    except OSError:
        return False
    return True


@dataclass
class Cluster:
    """nginx on the edge host in front of a daphne process on each backend host."""

    client: str
    edge: Host
    backend_hosts: list[Host]
    backends: list[LiveServer]
    proxy: Proxy

    def connect(self, **options: object):  # type: ignore[no-untyped-def]
        return self.proxy.connect(local_addr=(self.client, 0), **options)

    def backend_get(self, index: int, path: str, **headers: str) -> tuple:
        host = self.backend_hosts[index]
        return http_get(BACKEND_PORT, path, source=self.client, address=host.address, **headers)

    def open_on(self, index: int) -> int:
        return json.loads(self.backend_get(index, "/healthz")[2])["connections"]

    def nginx_error_log(self) -> str:
        return (self.proxy.prefix / "error.log").read_text(errors="replace")


@contextmanager
def cluster(log_dir: Path) -> Iterator[Cluster]:
    """The three hosts, their servers started and, on the way out, stopped by their PIDs
    before the hosts are removed."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    with ExitStack() as stack:
        prefix = Path(tempfile.mkdtemp(prefix="channels-echo-multihost-"))
        stack.callback(shutil.rmtree, prefix, ignore_errors=True)
        client, hosts = stack.enter_context(bridged_hosts(["edge", "back1", "back2"]))
        edge, *backend_hosts = hosts
        static_root = prefix / "static"
        collect_static(static_root)
        # docs/deployment.md, "More hosts": trust the edge, and only the edge.
        settings = documented_environment(
            DJANGO_STATIC_ROOT=str(static_root),
            ECHO_TRUSTED_PROXIES=edge.address,
            ECHO_METRICS_ALLOW=edge.address,
        )
        backends = []
        for index, host in enumerate(backend_hosts):
            backend = start_backend(host, log_dir / f"{host.namespace}-{index}.log", settings)
            stack.callback(backend.stop)
            backends.append(backend)
        upstream = [(host.address, BACKEND_PORT) for host in backend_hosts]
        proxy = stack.enter_context(
            nginx_on(upstream, static_root, edge.address, edge.command([]))
        )
        yield Cluster(client, edge, backend_hosts, backends, proxy)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One edge and two backend hosts, shared by the tests that leave them as they found them."""
    with cluster(tmp_path_factory.mktemp("multihost-logs")) as running:
        yield running


async def echo(ws: object, message: str) -> None:
    await ws.send(message)  # type: ignore[attr-defined]
    assert await asyncio.wait_for(ws.recv(), timeout=bound(10)) == message  # type: ignore[attr-defined]


def accepted_from(log: str, address: str) -> list[str]:
    return re.findall(rf"event=accepted client={re.escape(address)}:\d+ ", log)


async def test_clients_echo_through_the_edge_on_both_backends(hosts: Cluster) -> None:
    """WebSockets through the edge host echo, and land on both backend hosts."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(hosts.connect()) for _ in range(4)]
        for number, ws in enumerate(clients):
            await echo(ws, f"through the edge {number}")
        assert [hosts.open_on(0), hosts.open_on(1)] == [2, 2]


async def test_backends_log_the_client_not_the_edge(hosts: Cluster) -> None:
    """Each backend logs the client host's address for a connection through the edge, never
    the edge's, nor what the client claimed in X-Forwarded-For."""
    ends = [backend.log_end() for backend in hosts.backends]
    async with AsyncExitStack() as stack:
        for _ in range(2):
            ws = await stack.enter_async_context(
                hosts.connect(additional_headers={"X-Forwarded-For": FORGED})
            )
            await echo(ws, "who am I")
    for backend, end in zip(hosts.backends, ends, strict=True):
        log = (await wait_for_log(backend.log, f"event=closed client={hosts.client}:"))[end:]
        assert accepted_from(log, hosts.client), log
        assert not accepted_from(log, hosts.edge.address), log
        assert FORGED not in log


async def test_forwarded_for_straight_to_a_backend_is_not_believed(hosts: Cluster) -> None:
    """A client reaching a backend host directly, claiming the edge's or another address in
    X-Forwarded-For, is logged and judged by its own address."""
    backend = hosts.backends[0]
    end = backend.log_end()
    url = f"ws://{hosts.backend_hosts[0].address}:{BACKEND_PORT}/echo"
    for claimed in (FORGED, hosts.edge.address):
        async with connect_echo(
            url, local_addr=(hosts.client, 0), additional_headers={"X-Forwarded-For": claimed}
        ) as ws:
            await echo(ws, "straight to the backend")
    log = (await wait_for_log(backend.log, f"event=closed client={hosts.client}:"))[end:]
    assert len(accepted_from(log, hosts.client)) == 2, log
    assert FORGED not in log
    assert not accepted_from(log, hosts.edge.address)
    forged = hosts.backend_get(0, "/metrics", **{"X-Forwarded-For": hosts.edge.address})
    assert forged[0] == 403


def test_metrics_only_where_metrics_allow_says(hosts: Cluster) -> None:
    """/metrics is refused to the client host, directly or through the edge, and served to a
    scraper on the edge host, the address ECHO_METRICS_ALLOW names."""
    assert hosts.backend_get(0, "/metrics")[0] == 403
    assert hosts.proxy.get("/metrics", source=hosts.client)[0] == 403
    script = (
        "import sys, urllib.request; "
        f"print(urllib.request.urlopen(sys.argv[1], timeout={bound(10)}).status)"
    )
    for host in hosts.backend_hosts:
        scraped = subprocess.run(
            hosts.edge.command(
                [sys.executable, "-c", script, f"http://{host.address}:{BACKEND_PORT}/metrics"]
            ),
            capture_output=True,
            text=True,
            timeout=bound(30),
            check=False,
        )
        assert scraped.stdout.strip() == "200", scraped.stderr


def test_allowed_hosts_is_the_public_name(hosts: Cluster) -> None:
    """The page answers for the public host name through the edge; a backend asked by its own
    address refuses the page (400) but answers its health probe."""
    assert hosts.proxy.get("/", source=hosts.client)[0] == 200
    backend_address = hosts.backend_hosts[0].address
    assert hosts.backend_get(0, "/", Host=backend_address)[0] == 400
    assert hosts.backend_get(0, "/healthz", Host=backend_address)[0] == 200
    # Straight from the client, X-Forwarded-Proto is not believed: DJANGO_HTTPS redirects.
    claimed_https = hosts.backend_get(0, "/", Host=PUBLIC_HOST, **{"X-Forwarded-Proto": "https"})
    assert claimed_https[0] == 301


async def ended_or_echoed(ws: object) -> str:
    """ "ended" if the connection ends (a lost path shows as a keepalive ping that goes
    unanswered), "echoed" if it still echoes."""
    try:
        await echo(ws, "still there?")
    except ConnectionClosed:
        return "ended"
    return "echoed"


@pytest.mark.parametrize("loss", ["link down", "process killed"])
async def test_clients_of_a_lost_backend_host_move_to_the_other(
    loss: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """When a backend host goes away (its link down, or its process killed), its clients see
    their connection end, reconnect through the edge to the other backend host and echo again,
    and nginx marks the lost backend down; the other host's clients are untouched."""
    with cluster(tmp_path_factory.mktemp("multihost-loss")) as running:
        lost = running.backend_hosts[0]
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(running.connect(**KEEPALIVE)) for _ in range(4)
            ]
            on_lost = running.open_on(0)
            assert on_lost == 2
            if loss == "link down":
                ip("link", "set", lost.link, "down")
            else:
                running.backends[0].server.process.kill()
            outcomes = await asyncio.gather(*(ended_or_echoed(ws) for ws in clients))
            assert sorted(outcomes) == ["echoed"] * (4 - on_lost) + ["ended"] * on_lost
            for attempt in range(on_lost):
                ws = await stack.enter_async_context(running.connect(**KEEPALIVE))
                await echo(ws, f"back again {attempt}")
            assert running.open_on(1) == len(clients)
        disabled = [
            line
            for line in running.nginx_error_log().splitlines()
            if "upstream server temporarily disabled" in line
        ]
        assert disabled, running.nginx_error_log()
        assert all(f"//{lost.address}:{BACKEND_PORT}/" in line for line in disabled), disabled

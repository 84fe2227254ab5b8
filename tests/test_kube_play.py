"""deploy/kubernetes/ for real: its ConfigMap, Secret and Deployment played with ``podman kube
play`` on the image of ``tests/container.py``, on a pod network of the test's own.

podman runs pods, not a cluster, so the test does the kubelet's part where podman does not: it
asks each pod's probes itself, by the pod's address, as the manifest describes them. Where this
podman cannot play a manifest as written, the test says so and plays the nearest it can:

- podman before 4.4 stores a played Secret in a form its own ``secretRef`` cannot read, so the
  Secret is created in podman's store (as ``kubectl create secret`` would) instead of played;
- podman before 4.8 publishes every ``containerPort`` on the host under its own number, so a
  second replica could not start: the played copy names the port by number and lists none;
- podman before 5.1 has ``kube down`` stop the pods with no grace period (SIGKILL right after
  SIGTERM), and before 4.7 ignores ``terminationGracePeriodSeconds``: the pods are stopped with
  ``podman pod stop --time`` and the manifest's grace period, as the kubelet would, then
  ``kube down`` removes them. podman runs no ``preStop`` hook.

The Service and the Ingress are no kinds podman plays; ``tests/test_kubernetes.py`` validates
them against the Kubernetes schemas.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.exceptions import ConnectionClosed

from tests.container import PODMAN, ULIMITS, podman
from tests.live import PROJECT_DIR, connect_echo
from tests.nginx import PUBLIC_HOST, http_get
from tests.timing import bound

pytestmark = [pytest.mark.live, pytest.mark.container]

MANIFESTS = PROJECT_DIR / "deploy/kubernetes"
PLAYED_KINDS = ("ConfigMap", "Secret", "Deployment")
# The pod network: a /24 of 10.213.0.0/16 picked by process, so parallel runs differ.
POD_NETWORK_BLOCK = ipaddress.ip_network("10.213.0.0/16")
NETWORK_ATTEMPTS = 5
# podman before 5.1 has ``kube down`` kill the pods at once (a stop with no grace period).
GRACEFUL_KUBE_DOWN = (5, 1)
# A public client, as the ingress controller names it in X-Forwarded-For.
PUBLIC_CLIENT = "203.0.113.9"


def podman_version() -> tuple[int, ...]:
    version = podman("version", "--format", "{{.Client.Version}}")
    return tuple(int(part) for part in version.split("-")[0].split(".")[:3])


def manifest(kind: str) -> dict[str, Any]:
    (document,) = [
        document
        for path in sorted(MANIFESTS.glob("*.yaml"))
        if (document := yaml.safe_load(path.read_text()))["kind"] == kind
    ]
    return document


@dataclass
class Pod:
    """One replica of the Deployment: its name, its container and its address."""

    name: str
    container: str
    address: str


@dataclass
class Played:
    """The manifests as played: the file given to podman, the pods, and what they were given."""

    path: Path
    pods: list[Pod]
    container_spec: dict[str, Any]
    termination_grace: int
    secret_key: str
    gateway: str
    version: tuple[int, ...]

    def port(self, probe: dict[str, Any]) -> int:
        """The probe's port, resolved from the container's named ports as the kubelet does."""
        port = probe["httpGet"]["port"]
        if isinstance(port, int):
            return port
        (number,) = [
            entry["containerPort"]
            for entry in manifest("Deployment")["spec"]["template"]["spec"]["containers"][0][
                "ports"
            ]
            if entry["name"] == port
        ]
        return number


def kubelet_probe(played: Played, pod: Pod, probe: dict[str, Any]) -> bool:
    """The kubelet's HTTP probe: a GET of the path on the pod's address, passing on 200 to 399
    within ``timeoutSeconds`` (1 s unless the probe says)."""
    try:
        status, _, _ = http_get(
            played.port(probe),
            probe["httpGet"]["path"],
            source=None,
            address=pod.address,
            timeout=probe.get("timeoutSeconds", 1),
        )
    except OSError:
        return False
    return 200 <= status < 400


def pick_network(name: str) -> ipaddress.IPv4Network:
    """A podman network of the test's own on a free /24 of POD_NETWORK_BLOCK."""
    subnets = list(POD_NETWORK_BLOCK.subnets(new_prefix=24))
    for attempt in range(NETWORK_ATTEMPTS):
        subnet = subnets[(os.getpid() + attempt * 37) % len(subnets)]
        created = subprocess.run(
            [*PODMAN, "network", "create", "--subnet", str(subnet), name],
            capture_output=True,
            timeout=bound(30),
            check=False,
        )
        if created.returncode == 0:
            return subnet
    raise AssertionError(f"no free subnet for {name}: {created.stderr.decode()}")


def played_documents(
    subnet: ipaddress.IPv4Network, image: str, secret_key: str, version: tuple[int, ...]
) -> list[dict[str, Any]]:
    """The manifests with their ``deployment:`` lines filled in for this pod network."""
    config_map = manifest("ConfigMap")
    config_map["data"]["ECHO_TRUSTED_PROXIES"] = str(subnet)
    config_map["data"]["ECHO_METRICS_ALLOW"] = f"{subnet},127.0.0.0/8"
    secret = manifest("Secret")
    secret["stringData"] = {"DJANGO_SECRET_KEY": secret_key}
    deployment = manifest("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["image"] = image
    if version < (4, 8):
        (port,) = container.pop("ports")
        for probe in ("readinessProbe", "livenessProbe"):
            container[probe]["httpGet"]["port"] = port["containerPort"]
    documents = [config_map, deployment]
    if version >= (4, 4):
        documents.insert(1, secret)
    return documents


def create_secret_in_store(secret_key: str) -> None:
    """The Secret in podman's store, in the form podman before 4.4 reads for ``secretRef``:
    a JSON object of base64 values."""
    name = manifest("Secret")["metadata"]["name"]
    data = {"DJANGO_SECRET_KEY": base64.b64encode(secret_key.encode()).decode()}
    podman("secret", "create", name, "-", stdin=json.dumps(data).encode())


def pod_address(pod_name: str, network: str) -> str:
    infra = podman("pod", "inspect", pod_name, "--format", "{{.InfraContainerID}}")
    template = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
    return podman("inspect", infra, "--format", template)


def remove_everything(path: Path, pod_names: list[str], network: str) -> None:
    """``podman kube down``, then each pod, the secret and the network by name."""
    quiet = {"capture_output": True, "timeout": bound(60), "check": False}
    if path.exists():
        subprocess.run([*PODMAN, "kube", "down", str(path)], **quiet)  # type: ignore[call-overload]
    for name in pod_names:
        subprocess.run([*PODMAN, "pod", "rm", "--force", name], **quiet)  # type: ignore[call-overload]
    secret = manifest("Secret")["metadata"]["name"]
    subprocess.run([*PODMAN, "secret", "rm", secret], **quiet)  # type: ignore[call-overload]
    subprocess.run([*PODMAN, "network", "rm", "--force", network], **quiet)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def played(container_image: str) -> Iterator[Played]:
    """The manifests played on the image; every pod ready by its readiness probe."""
    version = podman_version()
    workdir = Path(tempfile.mkdtemp(prefix="channels-echo-kube-"))
    network = f"channels-echo-kube-{os.getpid()}"
    deployment = manifest("Deployment")
    replicas = deployment["spec"]["replicas"]
    pod_names = [f"{deployment['metadata']['name']}-pod-{index}" for index in range(replicas)]
    path = workdir / "channels-echo.yaml"
    # kube play takes no --ulimit: the limits the container tests run with come from here.
    conf = workdir / "containers.conf"
    limits = ", ".join(f'"{name}={value}:{value}"' for name, value in ULIMITS.items())
    conf.write_text(f"[containers]\ndefault_ulimits = [{limits}]\n")
    try:
        subnet = pick_network(network)
        secret_key = secrets.token_urlsafe(50)
        documents = played_documents(subnet, container_image, secret_key, version)
        path.write_text(yaml.safe_dump_all(documents))
        if version < (4, 4):
            create_secret_in_store(secret_key)
        result = subprocess.run(
            [*PODMAN, "kube", "play", "--network", network, str(path)],
            env={**os.environ, "CONTAINERS_CONF": str(conf)},
            capture_output=True,
            timeout=bound(120),
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
        (played_deployment,) = [doc for doc in documents if doc["kind"] == "Deployment"]
        (container_spec,) = played_deployment["spec"]["template"]["spec"]["containers"]
        pods = [
            Pod(name, f"{name}-{container_spec['name']}", pod_address(name, network))
            for name in pod_names
        ]
        played = Played(
            path=path,
            pods=pods,
            container_spec=container_spec,
            termination_grace=deployment["spec"]["template"]["spec"][
                "terminationGracePeriodSeconds"
            ],
            secret_key=secret_key,
            gateway=str(next(subnet.hosts())),
            version=version,
        )
        for pod in pods:
            wait_until_ready(played, pod)
        yield played
    finally:
        remove_everything(path, pod_names, network)
        shutil.rmtree(workdir, ignore_errors=True)


def wait_until_ready(played: Played, pod: Pod) -> None:
    """Asks the readiness probe until it passes, as the kubelet does before the pod joins the
    Service; fails with the pod's log if it does not within 30 s."""
    probe = played.container_spec["readinessProbe"]
    deadline = time.monotonic() + bound(30)
    while time.monotonic() < deadline:
        if kubelet_probe(played, pod, probe):
            return
        time.sleep(0.2)
    raise AssertionError(f"{pod.name} never became ready:\n{podman('logs', pod.container)}")


def test_every_replica_passes_its_probes(played: Played) -> None:
    """Each of the Deployment's replicas runs and passes its readiness and liveness probes,
    asked as the kubelet asks them, by the pod's own address."""
    assert len(played.pods) == manifest("Deployment")["spec"]["replicas"]
    for pod in played.pods:
        state = podman("inspect", pod.container, "--format", "{{.State.Status}}")
        assert state == "running", pod
        for probe in ("readinessProbe", "livenessProbe"):
            assert kubelet_probe(played, pod, played.container_spec[probe]), (pod, probe)


def test_podman_runs_the_liveness_probe(played: Played) -> None:
    """podman's own health check, made from the liveness probe, passes in each pod; skipped,
    saying what podman made of the probe, where that cannot pass in the image."""
    probe = played.container_spec["livenessProbe"]["httpGet"]
    for pod in played.pods:
        command = json.loads(
            podman("inspect", pod.container, "--format", "{{json .Config.Healthcheck.Test}}")
        )
        result = subprocess.run(
            [*PODMAN, "healthcheck", "run", pod.container],
            capture_output=True,
            timeout=bound(30),
            check=False,
        )
        program = command[1] if command[0] == "CMD-SHELL" else command[0]
        has_program = (
            subprocess.run(
                [
                    *PODMAN,
                    "exec",
                    pod.container,
                    "python",
                    "-c",
                    f"import shutil, sys; sys.exit(shutil.which({program!r}) is None)",
                ],
                capture_output=True,
                timeout=bound(30),
                check=False,
            ).returncode
            == 0
        )
        if result.returncode != 0 and not has_program:
            pytest.skip(
                f"podman {'.'.join(map(str, played.version))} turns the httpGet probe of "
                f"{probe['path']} into {' '.join(command[1:])!r}, run inside the container, "
                f"which has no {program} (the image holds no HTTP client); the kubelet asks "
                "the probe from outside, as test_every_replica_passes_its_probes does"
            )
        assert result.returncode == 0, (pod, command, result.stdout, result.stderr)


def test_settings_come_from_the_configmap_and_the_secret(played: Played) -> None:
    """Each pod serves its page only to the ConfigMap's host, over the HTTPS the ingress
    controller reports, and holds the Secret's key."""
    config = manifest("ConfigMap")["data"]
    for pod in played.pods:
        assert podman("exec", pod.container, "printenv", "DJANGO_SECRET_KEY") == (
            played.secret_key
        )
        address = {"source": None, "address": pod.address}
        status, headers, page = http_get(
            8000,
            "/",
            **address,
            Host=config["DJANGO_ALLOWED_HOSTS"],
            **{"X-Forwarded-Proto": "https", "X-Forwarded-For": PUBLIC_CLIENT},
        )
        assert status == 200, page
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        status, headers, _ = http_get(8000, "/", **address, Host=PUBLIC_HOST)
        assert (status, headers["Location"]) == (301, f"https://{PUBLIC_HOST}/")
        assert http_get(8000, "/", **address, Host="elsewhere.example")[0] == 400


def test_metrics_for_the_pod_network_and_not_for_public_clients(played: Played) -> None:
    """/metrics answers a scraper in the pod network, and refuses a public client the ingress
    controller names in X-Forwarded-For."""
    for pod in played.pods:
        address = {"source": None, "address": pod.address}
        assert http_get(8000, "/metrics", **address)[0] == 200
        refused = http_get(8000, "/metrics", **address, **{"X-Forwarded-For": PUBLIC_CLIENT})
        assert refused[0] == 403


async def test_each_replica_echoes(played: Played) -> None:
    """A WebSocket to each pod's address echoes text and binary."""
    for pod in played.pods:
        async with connect_echo(f"ws://{pod.address}:8000/echo") as ws:
            for message in (f"to {pod.name}", os.urandom(512)):
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), timeout=bound(10)) == message


async def test_stopping_the_pods_closes_websockets_with_1001(played: Played) -> None:
    """Stopping the pods sends SIGTERM: their WebSockets close with 1001 within the manifest's
    terminationGracePeriodSeconds, and ``podman kube down`` leaves no pod. Runs last."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(connect_echo(f"ws://{pod.address}:8000/echo"))
            for pod in played.pods
            for _ in range(2)
        ]
        started = time.monotonic()
        if played.version >= GRACEFUL_KUBE_DOWN:
            stop = ("kube", "down", str(played.path))
        else:
            grace = str(played.termination_grace)
            stop = ("pod", "stop", "--time", grace, *(pod.name for pod in played.pods))
        stopping = asyncio.create_task(asyncio.to_thread(podman, *stop, timeout=60))
        codes = []
        for ws in clients:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=played.termination_grace)
            codes.append(closed.value.rcvd.code if closed.value.rcvd else "dropped")
        closed_within = time.monotonic() - started
        await stopping
    assert codes == [1001] * len(clients)
    assert closed_within < played.termination_grace
    podman("kube", "down", str(played.path), timeout=60)
    assert podman("pod", "ps", "--quiet", "--filter", f"name={played.pods[0].name}") == ""

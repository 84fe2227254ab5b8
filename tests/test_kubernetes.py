"""deploy/kubernetes/ against the Kubernetes API schemas, offline, and against the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from servers.daphne import SHUTDOWN_GRACE
from tests.live import PROJECT_DIR

MANIFESTS = sorted((PROJECT_DIR / "deploy/kubernetes").glob("*.yaml"))
# A Kubernetes release the manifests are checked against (kubernetes-validate ships its schemas).
KUBERNETES_VERSION = "1.33"


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def manifest(kind: str) -> dict[str, Any]:
    (document,) = [load(path) for path in MANIFESTS if load(path)["kind"] == kind]
    return document


@pytest.mark.parametrize("path", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_manifest_is_valid_kubernetes(path: Path) -> None:
    """Each manifest validates, strictly, against the Kubernetes schemas."""
    kubernetes_validate.validate(load(path), KUBERNETES_VERSION, strict=True)


def test_pods_drain_within_their_grace_period() -> None:
    """preStop plus the server's drain fit in terminationGracePeriodSeconds, and both probes
    use /healthz, which answers any Host over plain HTTP."""
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop + SHUTDOWN_GRACE < pod["terminationGracePeriodSeconds"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_ingress_keeps_idle_websockets_open() -> None:
    """The ingress controller's read and send timeouts outlast the keepalive interval."""
    from django.conf import settings

    annotations = manifest("Ingress")["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) > (
            settings.ECHO_PING_INTERVAL + settings.ECHO_PING_TIMEOUT
        )


def test_configmap_holds_valid_settings() -> None:
    """The ConfigMap's settings, with a real secret, make ``check --deploy`` clean."""
    from tests.test_settings import PRODUCTION, manage

    assert set(manifest("Secret")["stringData"]) == {"DJANGO_SECRET_KEY"}
    data = manifest("ConfigMap")["data"]
    secret = PRODUCTION["DJANGO_SECRET_KEY"]
    result = manage("check", "--deploy", "--fail-level", "DEBUG", **data, DJANGO_SECRET_KEY=secret)
    assert result.returncode == 0, result.stderr

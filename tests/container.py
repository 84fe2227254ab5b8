"""The Containerfile's image, built with podman from a local Debian base, for the container
tests (``tests/test_container.py``, ``tests/test_kube_play.py``).

The host-specific settings are here, not in the Containerfile: the base is made with debootstrap
(no registry is needed), runc runs the containers (crun cannot on hosts with cgroups in hybrid
mode), the open-file and process limits are ones such hosts grant, and pip in the build trusts
the host's CA bundle.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.live import PROJECT_DIR
from tests.timing import bound

PODMAN = [shutil.which("podman") or "/usr/bin/podman", "--runtime", "runc"]
DEBOOTSTRAP = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
TAR = shutil.which("tar") or "/usr/bin/tar"
BASE_IMAGE = "localhost/channels-echo-base:bookworm"
IMAGE = "localhost/channels-echo:test"
# podman's defaults (a million open files, four million processes) are more than such hosts
# grant a container; these hold ECHO_MAX_CONNECTIONS' default of 10,000 WebSockets.
ULIMITS = {"nofile": 20000, "nproc": 32768}
LIMITS = [part for name, value in ULIMITS.items() for part in ("--ulimit", f"{name}={value}")]
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def podman(*arguments: str, timeout: float = 600, stdin: bytes | None = None) -> str:
    """podman's output; a failure shows the end of what it wrote to standard error."""
    result = subprocess.run(
        [*PODMAN, *arguments],
        input=stdin,
        capture_output=True,
        timeout=bound(timeout),
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"podman {' '.join(arguments)}:\n{stderr[-3000:]}"
    return result.stdout.decode(errors="replace").strip()


def make_base_image(workdir: Path) -> None:
    """A minimal Debian bookworm image made on this machine, so no registry is needed."""
    if subprocess.run([*PODMAN, "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return
    rootfs = workdir / "rootfs"
    subprocess.run(
        [DEBOOTSTRAP, "--variant=minbase", "bookworm", str(rootfs)],
        capture_output=True,
        timeout=bound(900),
        check=True,
    )
    archive = subprocess.run(
        [TAR, "-C", str(rootfs), "-c", "."], capture_output=True, timeout=bound(300), check=True
    )
    podman("import", "-", BASE_IMAGE, timeout=300, stdin=archive.stdout)


def build_image(workdir: Path) -> str:
    """The Containerfile built on the local base as ``IMAGE``, which it returns."""
    make_base_image(workdir)
    pip_config = workdir / "pip.conf"
    pip_config.write_text("[global]\ncert = /etc/host-ca.crt\n")
    podman(
        *("build", "--format", "docker", "--network", "host", *LIMITS),
        *("--volume", f"{HOST_CA_BUNDLE}:/etc/host-ca.crt:ro"),
        *("--volume", f"{pip_config}:/etc/pip.conf:ro"),
        *("--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--tag", IMAGE),
        *("--file", str(PROJECT_DIR / "Containerfile"), str(PROJECT_DIR)),
    )
    return IMAGE

"""The project builds into a wheel that holds the service (its packages, the page's template and
static files, the licence) and none of the checkout's tests, benchmark or tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.live import PROJECT_DIR
from tests.timing import bound

SERVICE_PACKAGES = ("project", "echo", "servers")


def build_wheel(tmp_path: Path) -> zipfile.ZipFile:
    """A wheel built from a copy of the checkout (pip builds in the source tree)."""
    source = tmp_path / "source"
    shutil.copytree(
        PROJECT_DIR,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "*.egg-info", "staticfiles", "__pycache__", "results"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", "dist", str(source)],
        cwd=tmp_path,
        check=True,
        timeout=bound(300),
    )
    (wheel,) = (tmp_path / "dist").glob("channels_echo-*.whl")
    return zipfile.ZipFile(wheel)


def service_files() -> set[str]:
    """What an installed service needs, as the checkout holds it, named as in the wheel."""
    names = {
        str(path.relative_to(PROJECT_DIR))
        for package in SERVICE_PACKAGES
        for path in (PROJECT_DIR / package).rglob("*.py")
    }
    names |= {
        str(path.relative_to(PROJECT_DIR))
        for path in (PROJECT_DIR / "echo" / "static").rglob("*")
        if path.is_file()
    }
    names |= {f"project/templates/{path.name}" for path in (PROJECT_DIR / "templates").iterdir()}
    return names


def test_wheel_holds_the_service_and_nothing_else(tmp_path: Path) -> None:
    """The wheel holds every module, template and static file of the service and its licence,
    and no file of tests/, bench/ or tools/."""
    with build_wheel(tmp_path) as wheel:
        names = wheel.namelist()
        metadata = wheel.read("channels_echo-0.1.0.dist-info/METADATA").decode()
    missing = sorted(service_files() - set(names))
    assert missing == []
    top_level = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_level == set(SERVICE_PACKAGES)
    assert "channels_echo-0.1.0.dist-info/licenses/LICENSE" in names
    assert "License-Expression: BSD-3-Clause" in metadata.splitlines()

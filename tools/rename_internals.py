"""Check that the tests notice when a library renames an internal that ``servers/`` relies on.

For each (library, name) that ``servers/`` relies on (read from its classes by
``tests/internals.py``, with what ``tests/test_server_contracts.py`` lists of other library
objects), this copies the installed library, renames ``name`` throughout the copy (as an
upstream release would), runs the fast in-process tests with the copy first on
the path, and reports whether any test failed. Every rename should be CAUGHT; a MISSED one
means an internal is relied on without a test to guard it (docs/upstream.md).

    .venv/bin/python tools/rename_internals.py                        # every name, ~4 minutes
    .venv/bin/python tools/rename_internals.py daphne:check_timeouts  # one of them

It exits 1 if any rename was missed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
TESTS = [
    "tests/test_server_contracts.py",
    "tests/test_daphne_adjustments.py",
    "tests/test_uvicorn_adjustments.py",
]


def internals() -> dict[str, set[str]]:
    """What ``servers/`` relies on, by library: read from its classes (``tests/internals.py``),
    with the methods and attributes of other library objects that the contract tests list."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "rename-internals-only")
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()
    from tests import internals as derived
    from tests.test_server_contracts import CALLED, COLLABORATOR_ATTRIBUTES

    names = derived.relied_on()
    for _, method, defined_by, _ in CALLED:
        if not derived.is_dunder(method):
            names[defined_by.split(".")[0]].add(method)
    for library, attributes in COLLABORATOR_ATTRIBUTES.items():
        names[library].update(attributes)
    return names


def renamed_copy(library: str, name: str, root: Path) -> int:
    """Copies ``library`` under ``root`` with ``name`` renamed; returns the files changed."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    copy = root / library
    shutil.copytree(SITE_PACKAGES / library, copy, ignore=shutil.ignore_patterns("__pycache__"))
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    changed = 0
    for path in copy.rglob("*.py"):
        text = path.read_text()
        renamed = pattern.sub(f"{name}_renamed", text)
        if renamed != text:
            path.write_text(renamed)
            changed += 1
    return changed


def tests_notice(root: Path) -> bool:
    result = subprocess.run(  # noqa: S603  (this interpreter running pytest)
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode != 0


def main(selected: list[str]) -> int:
    pairs = [(library, name) for library, names in internals().items() for name in sorted(names)]
    if selected:
        pairs = [tuple(item.split(":", 1)) for item in selected]  # type: ignore[misc]
    missed = []
    with tempfile.TemporaryDirectory(prefix="renamed-internals-") as scratch:
        root = Path(scratch)
        for library, name in pairs:
            if not renamed_copy(library, name, root):
                print(f"{library}:{name}: not found in {library}", flush=True)
                missed.append(f"{library}:{name}")
                continue
            verdict = "CAUGHT" if tests_notice(root) else "MISSED"
            print(f"{library}:{name}: {verdict}", flush=True)
            if verdict == "MISSED":
                missed.append(f"{library}:{name}")
    print(f"{len(pairs) - len(missed)} of {len(pairs)} renames caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The README's "How it fits together" table is a true map of the tree."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.live import PROJECT_DIR

README = PROJECT_DIR / "README.md"
# The service's own packages: every module in them has its row (or its folder has one).
PACKAGES = ("project", "echo", "servers")
ROW_PATHS = re.compile(r"`([^`]+)`")


def layout_paths() -> list[str]:
    """Every path named in the first column of the layout table."""
    section = README.read_text().split("## How it fits together", 1)[1].split("\n## ", 1)[0]
    paths = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            paths.extend(ROW_PATHS.findall(first_column))
    return paths


def tracked_files() -> list[str]:
    git = shutil.which("git")
    assert git is not None, "git is needed to list the tree"
    return subprocess.run(
        [git, "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout.splitlines()


def covered(path: str, rows: list[str]) -> bool:
    """Whether a row names ``path``, or the folder it is in; a folder at the top of the tree is
    covered by a row for anything in it."""
    return any(
        path == row
        or (row.endswith("/") and path.startswith(row))
        or (path.endswith("/") and row.startswith(path))
        for row in rows
    )


def test_every_row_names_something_in_the_tree() -> None:
    """Each path the table names exists."""
    missing = [path for path in layout_paths() if not (PROJECT_DIR / path).exists()]
    assert missing == []


def test_every_module_and_top_level_entry_has_a_row() -> None:
    """Each module of the service's packages, and each file or folder at the top of the tree
    (but for dotfiles), is in the table, itself or by its folder."""
    rows = layout_paths()
    files = tracked_files()
    modules = [
        path
        for path in files
        if path.split("/")[0] in PACKAGES
        and path.endswith(".py")
        and not path.endswith("__init__.py")
        and "/static/" not in path
    ]
    top_level = sorted(
        {path.split("/")[0] + ("/" if "/" in path else "") for path in files}
        - {f"{package}/" for package in PACKAGES}
    )
    uncovered = [
        path
        for path in [*modules, *top_level]
        if not path.startswith(".") and not covered(path, rows)
    ]
    assert uncovered == []

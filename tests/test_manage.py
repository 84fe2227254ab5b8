"""manage.py behaves as a Django developer expects: the database commands say in one line that
there is no database, without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.live import PROJECT_DIR
from tests.timing import bound


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=bound(120),
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "line"),
    [
        ("migrate", "channels-echo needs no database: there is nothing to migrate"),
        (
            "makemigrations",
            "channels-echo needs no database: it has no models to make migrations for",
        ),
        ("showmigrations", "channels-echo needs no database: there are no migrations"),
    ],
)
def test_database_commands_say_there_is_no_database(command: str, line: str) -> None:
    """``migrate``, ``makemigrations`` and ``showmigrations`` succeed with one line saying the
    service needs no database, and no traceback."""
    completed = manage(command)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [line]
    assert completed.stderr == ""

"""manage.py behaves as a Django developer expects: ``test`` runs the pytest suite, and the
database commands say in one line that there is no database, without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from project.testrunner import PytestTestRunner
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


def test_manage_test_runs_the_pytest_suite() -> None:
    """``manage.py test`` with a Django-style label runs that module's pytest tests."""
    completed = manage("test", "tests.test_docs")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "4 passed" in completed.stdout


def test_manage_test_fails_when_pytest_fails() -> None:
    """``manage.py test`` exits non-zero when pytest does."""
    completed = manage("test", "tests/test_docs.py", "-k", "no_test_has_this_name")
    assert completed.returncode != 0
    assert "deselected" in completed.stdout


def test_manage_test_without_pytest_says_to_use_make_test(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without pytest installed, ``manage.py test`` fails with one line pointing to make test."""
    monkeypatch.setattr("project.testrunner.importlib.util.find_spec", lambda name: None)
    assert PytestTestRunner().run_tests([]) != 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "make test" in lines[0]


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

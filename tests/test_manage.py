"""manage.py behaves as a Django developer expects: ``test`` runs the pytest suite, and the
database commands say in one line that there is no database, without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("command", ["flush", "dbshell", "sqlflush", "inspectdb"])
def test_other_database_commands_fail_with_one_line(command: str) -> None:
    """Any other command that needs a database fails with one line saying there is none, and
    no traceback."""
    completed = manage(command, "--noinput") if command == "flush" else manage(command)
    assert completed.returncode != 0
    assert completed.stderr.splitlines() == [
        f"manage.py {command}: channels-echo needs no database, and has none"
    ]


def test_collectstatic_writes_hashed_files_under_debug_too(tmp_path: Path) -> None:
    """``collectstatic`` with manage.py's development default (DEBUG on) writes the hashed
    files and the manifest production serves from, as it does with DEBUG off."""
    completed = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", "DJANGO_STATIC_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=bound(120),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "staticfiles.json").exists()
    assert list((tmp_path / "echo").glob("app.*.js"))

"""Settings come from the environment, and a bad value stops start-up with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import launcher
from tests.live import PROJECT_DIR
from tests.timing import bound

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-production-like-secret-key-9f8e7d6c5b4a3928171605f4e3d2c1b0a99",
    "DJANGO_ALLOWED_HOSTS": "echo.example.com",
    "DJANGO_HTTPS": "true",
}


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        timeout=bound(60),
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("DJANGO_DEBUG", "maybe", "true/false"),
        ("ECHO_MAX_MESSAGE_SIZE", "1MB", "a whole number of bytes greater than 0"),
        ("ECHO_MAX_MESSAGE_SIZE", "0", "a whole number of bytes greater than 0"),
        ("ECHO_MAX_MESSAGE_SIZE", str(2**63), "at most 1073741824 (1 GiB)"),
        ("ECHO_MAX_MESSAGE_SIZE", str(1024**3 + 1), "at most 1073741824 (1 GiB)"),
        ("ECHO_IDLE_TIMEOUT", "-5", "a number of seconds greater than 0, or unset"),
        ("ECHO_IDLE_TIMEOUT", "soon", "a number of seconds greater than 0, or unset"),
        ("ECHO_IDLE_TIMEOUT", "nan", "a number of seconds greater than 0, or unset"),
        ("ECHO_MAX_CONNECTIONS", "many", "a whole number of connections greater than 0"),
        ("ECHO_HANDSHAKE_TIMEOUT", "0", "a number of seconds greater than 0"),
        ("ECHO_PING_INTERVAL", "inf", "a number of seconds greater than 0"),
        ("ECHO_PING_TIMEOUT", "-1", "a number of seconds greater than 0"),
        ("ECHO_TRUSTED_PROXIES", "127.0.0.1,nginx", "comma-separated IP addresses or networks"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_invalid_value_stops_start_up(variable: str, value: str, accepted: str) -> None:
    """An invalid variable stops start-up with one line naming it and what it accepts."""
    result = manage("check", **{**PRODUCTION, variable: value})
    assert result.returncode != 0
    assert result.stderr.startswith(f"manage.py: {variable}={value!r} is invalid")
    assert accepted in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_largest_message_size_is_accepted() -> None:
    """``ECHO_MAX_MESSAGE_SIZE`` of exactly 1 GiB, the largest it accepts, starts."""
    result = manage("check", **{**PRODUCTION, "ECHO_MAX_MESSAGE_SIZE": str(1024**3)})
    assert result.returncode == 0, result.stderr


def test_secret_key_required_without_debug() -> None:
    """With DEBUG off and no DJANGO_SECRET_KEY, start-up stops and says how to make one."""
    result = manage("check", DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_manage_py_has_development_defaults() -> None:
    """``manage.py`` works on a fresh checkout with no variables set, in development mode."""
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_servers_refuse_to_start_without_production_settings(kind: str) -> None:
    """The ASGI entry point that servers load is production-safe with no variables set: it
    stops at once with one line asking for a secret key, not a traceback."""
    result = subprocess.run(
        launcher.command(kind),
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=bound(60),
        check=False,
    )
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("channels-echo: DJANGO_SECRET_KEY must be set")
    assert "Traceback" not in result.stderr


def test_debug_runs_without_secret_key() -> None:
    """Development mode needs no secret key."""
    result = manage("check", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_for_production() -> None:
    """``manage.py check --deploy`` reports nothing with production-like values."""
    result = manage("check", "--deploy", "--fail-level", "DEBUG", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid values arrive in settings with their types: seconds, bytes, level, host list."""
    from project import env

    monkeypatch.setenv("ECHO_IDLE_TIMEOUT", "2.5")
    monkeypatch.setenv("ECHO_MAX_MESSAGE_SIZE", "4096")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", " a.example , b.example ,")
    assert env.env_optional_seconds("ECHO_IDLE_TIMEOUT") == 2.5
    assert env.env_positive_int("ECHO_MAX_MESSAGE_SIZE", default=1, unit="bytes") == 4096
    assert env.env_choice("LOG_LEVEL", choices=("DEBUG", "INFO"), default="INFO") == "DEBUG"
    assert env.env_list("DJANGO_ALLOWED_HOSTS", default=[]) == ["a.example", "b.example"]
    monkeypatch.setenv("ECHO_IDLE_TIMEOUT", "")
    assert env.env_optional_seconds("ECHO_IDLE_TIMEOUT") is None


def test_no_database_file_is_created() -> None:
    """Running checks creates no SQLite database: the project needs none."""
    result = manage("check", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert not (PROJECT_DIR / "db.sqlite3").exists()


def test_readme_production_block_passes_check_deploy() -> None:
    """The variables the README's production block exports make ``check --deploy`` clean."""
    readme = (PROJECT_DIR / "README.md").read_text()
    block = readme.split("## Running in production", 1)[1].split("```sh", 1)[1].split("```")[0]
    environment = {}
    for line in block.splitlines():
        for assignment in line.split("#")[0].removeprefix("export ").split():
            if "=" in assignment and line.startswith("export "):
                name, _, value = assignment.partition("=")
                environment[name] = value
    assert {"DJANGO_DEBUG", "DJANGO_HTTPS", "ECHO_TRUSTED_PROXIES"} <= environment.keys()
    environment["DJANGO_SECRET_KEY"] = PRODUCTION["DJANGO_SECRET_KEY"]
    result = manage("check", "--deploy", "--fail-level", "DEBUG", **environment)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout

"""``python -m servers.serve``, the container's entry point: which server, where, or why not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from servers import serve
from tests.live import PROJECT_DIR


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, ["-m", "daphne", "--bind", "0.0.0.0", "--port", "8000"]),
        (
            {"ECHO_SERVER": "uvicorn", "ECHO_BIND": "127.0.0.1", "PORT": "9001"},
            ["-m", "uvicorn", "--host", "127.0.0.1", "--port", "9001", "--no-proxy-headers"],
        ),
    ],
    ids=["default", "uvicorn"],
)
def test_becomes_the_chosen_server(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: list[str]
) -> None:
    """The entry point replaces itself with the chosen server's command, so the server is the
    process the container runtime signals."""
    for name in ("ECHO_SERVER", "ECHO_BIND", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    executed: list[list[str]] = []
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: executed.append(argv))
    serve.main()
    (argv,) = executed
    assert argv[0] == sys.executable
    assert argv[1 : 1 + len(expected)] == expected
    assert argv[-1] == "project.asgi:application"


@pytest.mark.parametrize(
    ("name", "value"), [("ECHO_SERVER", "granian"), ("PORT", "http"), ("PORT", "70000")]
)
def test_invalid_choice_stops_in_one_line(name: str, value: str) -> None:
    """An unknown server or a bad port stops the container at once, naming the variable."""
    result = subprocess.run(
        [sys.executable, "-m", "servers.serve"],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", name: value},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.startswith(f"servers.serve: {name}={value!r} is invalid")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("", "http://127.0.0.1:8000/healthz"),
        ("0.0.0.0", "http://127.0.0.1:8000/healthz"),
        ("::", "http://[::1]:8000/healthz"),
        ("10.1.0.21", "http://10.1.0.21:8000/healthz"),
        ("fd00::21", "http://[fd00::21]:8000/healthz"),
    ],
)
def test_the_health_check_asks_where_the_server_listens(
    monkeypatch: pytest.MonkeyPatch, bind: str, url: str
) -> None:
    """The image's health check asks the address ``ECHO_BIND`` names, or loopback when the
    server listens on every address."""
    monkeypatch.setenv("ECHO_BIND", bind)
    monkeypatch.delenv("PORT", raising=False)
    assert serve.health_url() == url

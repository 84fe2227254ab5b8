"""Each supported server's command line for the project, written once.

``servers.serve`` (the container's entry point) runs one on the address and port it is given;
the tests and the benchmark (``tests/launcher.py``) run them on loopback, on a port the server
picks.
"""

from __future__ import annotations

import sys

PROJECT_APPLICATION = "project.asgi:application"

# The ways the project is served: the development server and the production commands under
# daphne and uvicorn (docs/servers.md).
KINDS = ("daphne", "runserver", "uvicorn")

# The options of the documented uvicorn command between the address and the application.
UVICORN_OPTIONS = (
    *("--no-proxy-headers", "--lifespan", "off"),
    *("--http", "servers.uvicorn:EchoHTTPProtocol"),
    *("--ws", "servers.uvicorn:EchoWebSocketProtocol"),
)


def command(
    kind: str, application: str = PROJECT_APPLICATION, *, host: str, port: int
) -> list[str]:
    """How ``kind`` serves ``application`` on ``host``:``port`` (0: a port it chooses)."""
    python = sys.executable
    if kind == "daphne":
        return [python, "-m", "daphne", "--bind", host, "--port", str(port), application]
    if kind == "uvicorn":
        return [
            *(python, "-m", "uvicorn", "--host", host, "--port", str(port)),
            *UVICORN_OPTIONS,
            application,
        ]
    if kind == "runserver":
        if application != PROJECT_APPLICATION:
            raise ValueError("manage.py runserver serves the project's own application only")
        return [python, "manage.py", "runserver", "--noreload", f"{host}:{port}"]
    raise ValueError(f"unknown server kind {kind!r}; expected one of {', '.join(KINDS)}")

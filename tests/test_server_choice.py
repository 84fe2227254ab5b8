"""The daphne adjustments hold where daphne serves the project, and nowhere else.

Each case is a fresh Python process set up as that way of running the project sets it up:
Django's own commands, uvicorn loading the application and its protocol classes, and an
in-process test. None of them may import Twisted, autobahn or daphne, since only a process that
imports them can have changed them (Channels' test package imports ``daphne.testing``, and
no more of daphne). Under the ``daphne`` command, whether started as its console
script or as ``python -m daphne``, the project's server is the one that serves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests import launcher
from tests.live import PROJECT_DIR, SECRET_KEY, LiveServer, server_environment
from tests.timing import bound

# Prints what this process has imported of daphne's server and the stack beneath it.
REPORT_SERVER_STACK = (
    "import sys; print(sorted({name.split('.')[0] for name in sys.modules}"
    " & {'twisted', 'autobahn'} | {'daphne.server', 'daphne.ws_protocol'} & set(sys.modules)))"
)
UVICORN_LOADS_THE_PROJECT = (
    "from uvicorn.config import Config; "
    "Config('project.asgi:application', lifespan='off', "
    "http='servers.uvicorn:EchoHTTPProtocol', ws='servers.uvicorn:EchoWebSocketProtocol').load()"
)
IN_PROCESS_TEST = (
    "import django; django.setup(); "
    "from channels.testing.websocket import WebsocketCommunicator; "
    "from project.asgi import application; "
    "WebsocketCommunicator(application, '/echo', subprotocols=['echo'])"
)
ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DJANGO_SECRET_KEY": SECRET_KEY,
    "DJANGO_DEBUG": "false",
}


def server_stack_imported(*argv: str) -> str:
    result = subprocess.run(
        [sys.executable, *argv],
        cwd=PROJECT_DIR,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=bound(60),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv",
    [
        ("-c", f"import django; django.setup(); {REPORT_SERVER_STACK}"),
        ("manage.py", "shell", "-c", REPORT_SERVER_STACK),
        ("-c", f"{UVICORN_LOADS_THE_PROJECT}; {REPORT_SERVER_STACK}"),
        ("-c", f"{IN_PROCESS_TEST}; {REPORT_SERVER_STACK}"),
    ],
    ids=["django.setup()", "manage.py shell", "uvicorn", "in-process test"],
)
def test_only_daphne_processes_import_its_stack(argv: tuple[str, ...]) -> None:
    """A process that does not serve with daphne imports none of Twisted, autobahn or daphne's
    server."""
    assert server_stack_imported(*argv) == "[]"


@pytest.mark.parametrize("entry", ["console script", "python -m daphne"])
async def test_daphne_command_serves_with_echo_server(tmp_path: Path, entry: str) -> None:
    """The ``daphne`` command serves with ``EchoServer``: an empty message, which stock
    daphne drops, comes back, and shutdown says going away."""
    argv = launcher.command("daphne")
    if entry == "console script":
        argv = [str(Path(sys.executable).parent / "daphne"), *argv[3:]]
    server = LiveServer(
        "daphne",
        launcher.start(
            argv,
            environment=server_environment("daphne", {}),
            log_path=tmp_path / "daphne.log",
            timeout=bound(30),
        ),
    )
    try:
        async with connect(
            f"{server.ws_url}/echo", subprotocols=["echo"], open_timeout=bound(10)
        ) as websocket:
            await websocket.send("")
            assert await websocket.recv() == ""
            server.terminate()
            await websocket.wait_closed()
            assert websocket.close_code == 1001
    finally:
        server.stop()

"""What README "Copying the consumer" says to copy works where it is pasted, alone.

The files the section names are copied into an empty folder, with a settings module of a few
lines and nothing else of the project, and a process started there wraps ``EchoConsumer`` in
every piece, as the section shows, and talks to it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tests.live import PROJECT_DIR
from tests.timing import bound

README = PROJECT_DIR / "README.md"
SETTINGS = """
SECRET_KEY = "copied-consumer-test-only-0123456789abcdefghijklmnopqrstuvwxyz"
INSTALLED_APPS = []
ECHO_MAX_MESSAGE_SIZE = 16
ECHO_MAX_CONNECTIONS = 1
ECHO_IDLE_TIMEOUT = 0.3
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
"""
CONVERSATION = """
import asyncio, os
os.environ["DJANGO_SETTINGS_MODULE"] = "copied_settings"
import django
django.setup()
from channels.testing.websocket import WebsocketCommunicator
from echo.capacity import ConnectionLimit
from echo.connection_log import ConnectionLog
from echo.consumers import EchoConsumer
from echo.fastpath import FastWebsocketConsumer
from echo.idle import IdleTimeout
from echo.message_size import MessageSizeLimit
from echo.subprotocol import SubprotocolRequired

class FastEcho(FastWebsocketConsumer, EchoConsumer):
    pass

application = SubprotocolRequired(
    ConnectionLog(MessageSizeLimit(IdleTimeout(ConnectionLimit(FastEcho.as_asgi())))), "echo"
)

async def main():
    refused = WebsocketCommunicator(application, "/", subprotocols=["chat"])
    assert (await refused.connect())[0] is False
    client = WebsocketCommunicator(application, "/", subprotocols=["echo"])
    assert await client.connect() == (True, "echo")
    await client.send_to(text_data="hello")
    assert await client.receive_from() == "hello"
    second = WebsocketCommunicator(application, "/", subprotocols=["echo"])
    assert await second.connect() == (True, "echo")
    assert (await second.receive_output())["code"] == 1013
    await client.send_to(text_data="x" * 17)
    assert (await client.receive_output())["code"] == 1009
    idle = WebsocketCommunicator(application, "/", subprotocols=["echo"])
    await second.disconnect()
    await client.disconnect()
    await asyncio.sleep(0.05)
    assert await idle.connect() == (True, "echo")
    assert await idle.receive_output(timeout=2) == {
        "type": "websocket.close", "code": 1000, "reason": "idle timeout"
    }
    print("conversation held")

asyncio.run(main())
"""


def files_to_copy() -> list[str]:
    """Every Python file the section names."""
    section = README.read_text().split("### Copying the consumer", 1)[1].split("\n## ", 1)[0]
    return sorted(set(re.findall(r"`([a-z_/]+\.py)`", section)))


def test_echo_consumer_imports_nothing_but_channels() -> None:
    """``echo/consumers.py`` imports Channels and nothing of the project's."""
    tree = ast.parse((PROJECT_DIR / "echo" / "consumers.py").read_text())
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {"__future__", "channels"}


def test_copied_consumer_and_pieces_work_alone(tmp_path: Path) -> None:
    """The consumer and every piece, copied as the README says into a folder with nothing else
    of the project, refuse, echo and close as documented."""
    copied = files_to_copy()
    assert "echo/consumers.py" in copied
    for name in copied:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        target.write_text((PROJECT_DIR / name).read_text())
    (tmp_path / "copied_settings.py").write_text(SETTINGS)
    result = subprocess.run(
        [sys.executable, "-c", CONVERSATION],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=bound(60),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "conversation held" in result.stdout
    assert "event=accepted client=unknown subprotocol=echo" in result.stderr
    assert "event=too_big" in result.stderr
    assert result.stderr.count("event=closed client=unknown ") == 3

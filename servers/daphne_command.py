"""Under the ``daphne`` command, the project's daphne server (``servers.daphne.EchoServer``).

The command builds its server from ``CommandLineInterface.server_class`` after it has imported
the application, and has no option to name another class, so importing the application is the
one moment the project can choose its server: ``project/asgi.py`` calls ``serve_with_echo_server``
then. In any other process (uvicorn, ``manage.py`` commands, the tests) it does nothing and
imports nothing of daphne's; ``manage.py runserver`` names ``EchoServer`` itself
(docs/upstream.md#daphne-server-class).
"""

from __future__ import annotations

import sys


def running_daphne_command() -> bool:
    """Whether this process is the ``daphne`` command: its console script or ``python -m
    daphne``, whose main module each import ``CommandLineInterface`` to run it."""
    command_line = sys.modules.get("daphne.cli")
    main = sys.modules.get("__main__")
    return (
        command_line is not None
        and getattr(main, "CommandLineInterface", None) is command_line.CommandLineInterface
    )


def serve_with_echo_server() -> None:
    """Has the ``daphne`` command, if this process is one, serve with ``EchoServer``."""
    if running_daphne_command():
        from daphne.cli import CommandLineInterface

        from servers.daphne import EchoServer

        CommandLineInterface.server_class = EchoServer

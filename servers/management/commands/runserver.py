"""``manage.py runserver``: daphne's development server, with the project's adjustments.

``servers`` is listed before ``daphne`` in ``INSTALLED_APPS``, so this command is the one
Django runs. It is daphne's, serving with ``EchoServer`` (``servers.daphne``) and stopping
gracefully under the autoreloader too (``servers.reloader``).
"""

from __future__ import annotations

from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserver

from servers.daphne import EchoServer
from servers.reloader import run_with_reloader


class Command(DaphneRunserver):
    server_cls = EchoServer

    def run(self, **options: Any) -> None:
        if options["use_reloader"]:
            run_with_reloader(self.inner_run, **options)
        else:
            self.inner_run(None, **options)

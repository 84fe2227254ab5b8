"""Django's database commands for a project without a database: one line saying there is nothing
to do, where Django's own would end in a traceback from the dummy backend.

channels-echo keeps ``DATABASES`` empty on purpose (``FastWebsocketConsumer`` skips Channels'
loop only then). A project that configures a database gets Django's commands unchanged.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from echo.fastpath import uses_database


class WithoutDatabase(BaseCommand):
    """Says ``nothing_to_do`` and succeeds when no database is configured."""

    nothing_to_do = ""

    def handle(self, *args: Any, **options: Any) -> str | None:
        if uses_database():
            return super().handle(*args, **options)  # type: ignore[no-any-return]
        self.stdout.write(self.nothing_to_do)
        return None

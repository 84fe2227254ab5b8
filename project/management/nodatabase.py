"""Django's database commands for a project without a database: one line saying there is nothing
to do, where Django's own would end in a traceback from the dummy backend.

channels-echo keeps ``DATABASES`` empty: an echo has nothing to store. A project that configures a
database gets Django's commands unchanged.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

# What Django puts in DATABASES for a project that configures none.
NO_DATABASE = "django.db.backends.dummy"


def uses_database() -> bool:
    return any(
        database.get("ENGINE", NO_DATABASE) != NO_DATABASE
        for database in settings.DATABASES.values()
    )


class WithoutDatabase(BaseCommand):
    """Says ``nothing_to_do`` and succeeds when no database is configured."""

    nothing_to_do = ""

    def handle(self, *args: Any, **options: Any) -> str | None:
        if uses_database():
            return super().handle(*args, **options)  # type: ignore[no-any-return]
        self.stdout.write(self.nothing_to_do)
        return None

"""Applies the daphne adjustments once Django is set up, before any server starts serving.

``ready()`` is Django's place for start-up work: it runs in every process that sets Django up,
after the settings the adjustments read are loaded and before ``manage.py runserver`` or the
``daphne`` command builds its server. Importing ``servers.daphne`` imports daphne's server first,
which installs the asyncio Twisted reactor daphne needs.
"""

from django.apps import AppConfig


class ServersConfig(AppConfig):
    name = "servers"
    verbose_name = "ASGI server adjustments"

    def ready(self) -> None:
        from servers import daphne

        daphne.install()

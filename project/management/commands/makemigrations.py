from django.core.management.commands import makemigrations

from project.management.nodatabase import WithoutDatabase


class Command(WithoutDatabase, makemigrations.Command):
    nothing_to_do = "channels-echo needs no database: it has no models to make migrations for"

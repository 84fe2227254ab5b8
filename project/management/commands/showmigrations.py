from django.core.management.commands import showmigrations

from project.management.nodatabase import WithoutDatabase


class Command(WithoutDatabase, showmigrations.Command):
    nothing_to_do = "channels-echo needs no database: there are no migrations"

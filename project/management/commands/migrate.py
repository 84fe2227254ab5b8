from django.core.management.commands import migrate

from project.management.nodatabase import WithoutDatabase


class Command(WithoutDatabase, migrate.Command):
    nothing_to_do = "channels-echo needs no database: there is nothing to migrate"

#!/usr/bin/env python
"""Django's command-line utility; ``runserver`` here is daphne's ASGI development server.

It runs with development defaults (``DJANGO_DEBUG=true`` unless the environment says otherwise),
as Django's own project template does, so ``python manage.py runserver`` works on a fresh
checkout; production sets ``DJANGO_DEBUG=false`` (deploy/channels-echo.env).
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from project.env import InvalidSetting

    try:
        execute_from_command_line(sys.argv)
    except InvalidSetting as error:
        sys.exit(f"manage.py: {error}")
    except ImproperlyConfigured as error:
        # What Django's dummy backend raises for any command that needs a database (flush,
        # dbshell, inspectdb...); migrate and its kin say so on their own (project/management/).
        if "settings.DATABASES" not in str(error):
            raise
        sys.exit(f"manage.py {sys.argv[1]}: channels-echo needs no database, and has none")


if __name__ == "__main__":
    main()

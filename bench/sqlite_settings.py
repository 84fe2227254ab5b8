"""The project's settings with a database configured, as ``django-admin startproject`` writes it:
SQLite, in a file (in a temporary folder; nothing here opens it). W1 runs the project's echo and
the stock consumer in these settings, where Channels closes stale database connections around
every message, to measure what a configured database costs each.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from project.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(tempfile.gettempdir()) / "channels-echo-bench" / "db.sqlite3",
    }
}

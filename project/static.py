"""How production stores static files: WhiteNoise's compressed, content-hashed storage, and
whether this process has them to serve.

The page's script is ES modules that import one another (``import ... from "./closing.js"``);
Django rewrites those imports to the hashed names too only when asked, so that a new deploy
cannot load a new ``app.js`` with an old ``closing.js`` from a cache.
"""

from __future__ import annotations

from django.conf import STATICFILES_STORAGE_ALIAS, settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.files.storage import storages
from whitenoise.storage import CompressedManifestStaticFilesStorage

COLLECT_AND_RESTART = "run manage.py collectstatic, then restart the server"


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True


def static_files_problem() -> str | None:
    """Why this process cannot serve the page, for ``/healthz``; None when it can, and under
    DEBUG, which serves static files from the apps' folders.

    The storage reads the manifest once, when first used, and WhiteNoise reads the folder once,
    when the HTTP handler is built: a process that started without them fails every page until
    it is restarted, and the answer, kept in memory, costs a probe nothing to read."""
    if settings.DEBUG:
        return None
    try:
        storage = storages[STATICFILES_STORAGE_ALIAS]
    except ValueError as error:  # a manifest that cannot be read
        return f"{error}: {COLLECT_AND_RESTART}"
    if isinstance(storage, ManifestFilesMixin) and not storage.hashed_files:
        return f"no static files manifest in DJANGO_STATIC_ROOT: {COLLECT_AND_RESTART}"
    return None

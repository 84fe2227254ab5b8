"""How production stores static files: WhiteNoise's compressed, content-hashed storage.

The page's script is ES modules that import one another (``import ... from "./closing.js"``);
Django rewrites those imports to the hashed names too only when asked, so that a new deploy
cannot load a new ``app.js`` with an old ``closing.js`` from a cache.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True

"""Django settings for channels-echo, all read from the environment here and nowhere else.

The service needs no database, sessions or authentication: an echo connection holds no
state beyond itself. The variables, their defaults and their meaning are listed in the
README ("Settings"); an invalid value stops start-up with a message naming it.
"""

from __future__ import annotations

from pathlib import Path

from project.capacity import default_max_connections
from project.env import (
    InvalidSetting,
    env_bool,
    env_choice,
    env_list,
    env_networks,
    env_optional_seconds,
    env_positive_int,
    env_seconds,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=False)

_secret_key = env_str("DJANGO_SECRET_KEY")
if _secret_key is None and not DEBUG:
    raise InvalidSetting(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off: it accepts any long random "
        "string, for example the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
# Nothing here signs long-lived data, so a fixed development key is harmless under DEBUG.
SECRET_KEY = _secret_key or "django-insecure-development-only-key-for-channels-echo"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Served to browsers over HTTPS (TLS ends here or at a proxy that sets X-Forwarded-Proto).
HTTPS = env_bool("DJANGO_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; none by default.
ECHO_TRUSTED_PROXIES = env_networks("ECHO_TRUSTED_PROXIES")

# Seconds a WebSocket may stay silent before the server closes it; None keeps it open.
ECHO_IDLE_TIMEOUT = env_optional_seconds("ECHO_IDLE_TIMEOUT")
# Largest message, in bytes, the server accepts; larger ones end the connection with 1009.
# At most 1 GiB: zlib and the servers take sizes as C integers (2**63 overflows them at run
# time), and no echo client needs a larger message.
ECHO_MAX_MESSAGE_SIZE = env_positive_int(
    "ECHO_MAX_MESSAGE_SIZE",
    default=1024 * 1024,
    unit="bytes",
    maximum=1024**3,
    maximum_text=" (1 GiB)",
)
# Open WebSockets one process serves; more are closed at once with 1013 (try again later).
ECHO_MAX_CONNECTIONS = env_positive_int(
    "ECHO_MAX_CONNECTIONS", default=default_max_connections(), unit="connections"
)
# Seconds a TCP connection has to complete its HTTP request or WebSocket handshake.
ECHO_HANDSHAKE_TIMEOUT = env_seconds("ECHO_HANDSHAKE_TIMEOUT", default=5.0)
# Keepalive: ping a connection after this many seconds without traffic...
ECHO_PING_INTERVAL = env_seconds("ECHO_PING_INTERVAL", default=20.0)
# ...and drop it when the pong has not come back within this many seconds.
ECHO_PING_TIMEOUT = env_seconds("ECHO_PING_TIMEOUT", default=20.0)

# permessage-deflate (RFC 7692), negotiated with clients that offer it; off negotiates nothing.
ECHO_COMPRESSION = env_bool("ECHO_COMPRESSION", default=True)

# /metrics, in Prometheus' text format: on unless switched off, and only for these addresses
# (the peer, or the client a trusted proxy names); anyone else gets 403.
ECHO_METRICS = env_bool("ECHO_METRICS", default=True)
ECHO_METRICS_ALLOW = env_networks("ECHO_METRICS_ALLOW", default=["127.0.0.0/8", "::1"])

LOG_LEVEL = env_choice(
    "LOG_LEVEL", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), default="INFO"
)

INSTALLED_APPS = [
    # First, so that `manage.py runserver` is its command (daphne's, on the project's daphne
    # server) rather than staticfiles' WSGI one. daphne itself is not an app here: its app
    # config imports Twisted into every process that sets Django up.
    "servers",
    "django.contrib.staticfiles",
    "echo",
    # For its management commands: migrate and the other database commands, which have
    # nothing to do here (project/management/).
    "project",
]

# `manage.py test` runs the pytest suite (project/testrunner.py).
TEST_RUNNER = "project.testrunner.PytestTestRunner"

MIDDLEWARE = [
    # First: probes and scrapes reach /healthz and /metrics at a backend's own address.
    "echo.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # templates/ of the checkout; an installed wheel carries it as project/templates/.
        "DIRS": [BASE_DIR / "templates", Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES: dict[str, dict[str, str]] = {}

STATIC_URL = "static/"
# Production serves static files from STATIC_ROOT, which `manage.py collectstatic` fills with
# content-hashed copies (app.3f2a1c9b8d7e.js) that browsers and proxies may cache for good, so a
# deploy never pairs a new page with an old script. Development (DEBUG) serves them straight
# from the app folders, unhashed, with no collectstatic step.
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed whatever DJANGO_DEBUG says, so that collectstatic always writes what production
    # serves; under DEBUG pages link the plain names, which runserver serves from the apps.
    "staticfiles": {"BACKEND": "project.static.HashedStaticFilesStorage"},
}
USE_TZ = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {
        "client_errors": {"()": "project.log_filters.ClientErrors"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["client_errors"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "echo": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "project": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "servers": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "daphne": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

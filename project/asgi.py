"""ASGI entry point: ``daphne project.asgi:application``, ``manage.py runserver`` and uvicorn
(docs/servers.md) load this. Under the ``daphne`` command, loading it is also what has daphne
serve with the project's adjustments (``servers/daphne_command.py``).

Every connection first gets an id where the server gave it none (``project.connection``), and
its client address from a trusted proxy's headers (if any).
HTTP then goes to Django; WebSocket handshakes pass the Origin check, then the echo routes. A
WebSocket request for any other path is refused with HTTP 403 rather than a server error.
"""

import os

from django.core.asgi import get_asgi_application

from project.env import InvalidSetting
from servers.daphne_command import serve_with_echo_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Django must be set up before anything that imports consumers or reads settings. A setting the
# environment gets wrong stops the server with one line that names it, not a traceback.
try:
    django_asgi_application = get_asgi_application()
except InvalidSetting as error:
    raise SystemExit(f"channels-echo: {error}") from None

from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import re_path

from echo.routing import websocket_urlpatterns
from echo.unknown_path import UnknownPathConsumer
from project.connection import ConnectionIds
from project.origin import BrowserOriginValidator
from project.proxy import TrustedProxyHeaders

application = ConnectionIds(
    TrustedProxyHeaders(
        ProtocolTypeRouter(
            {
                "http": django_asgi_application,
                "websocket": BrowserOriginValidator(
                    URLRouter(
                        [*websocket_urlpatterns, re_path(r"", UnknownPathConsumer.as_asgi())]
                    )
                ),
            }
        )
    )
)

# The daphne command has no option naming a server class: it serves with the project's when
# told so here, as it loads this module. Under any other server this does nothing.
serve_with_echo_server()

"""The chat room (``tests/chat.py``) as an ASGI application of its own, as the tutorial mounts
it, in the settings of ``tests/chat_settings.py``: ``tests.chat_asgi:application`` under
daphne or uvicorn.

As ``project/asgi.py`` does, it sets Django up before importing the consumer and, under the
``daphne`` command, has daphne serve with the project's ``EchoServer``. HTTP goes to Django.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

from servers.daphne_command import serve_with_echo_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.chat_settings")
django_asgi_application = get_asgi_application()
serve_with_echo_server()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from tests.chat import websocket_urlpatterns  # noqa: E402


def chat_application(routes: list[Any]) -> ProtocolTypeRouter:
    """HTTP to Django, WebSockets to ``routes``; the benchmark mounts the stock consumer so."""
    return ProtocolTypeRouter({"http": django_asgi_application, "websocket": URLRouter(routes)})


application = chat_application(websocket_urlpatterns)

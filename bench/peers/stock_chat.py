"""The tutorial's chat room on Channels' own loop: ``tests/chat.py``'s ``ChatConsumer``, its
methods unchanged, on ``AsyncWebsocketConsumer`` in place of ``FastWebsocketConsumer``.

It is mounted as ``tests/chat_asgi.py`` mounts the fast one, in the same settings
(``tests/chat_settings.py``) and under the ``daphne`` command on the project's daphne server, so
W6 compares the two base classes and nothing else.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from tests.chat import ROOM_ROUTE, ChatConsumer
from tests.chat_asgi import chat_application


class StockChatConsumer(AsyncWebsocketConsumer):
    connect = ChatConsumer.connect
    disconnect = ChatConsumer.disconnect
    receive = ChatConsumer.receive
    chat_message = ChatConsumer.chat_message


application = chat_application([re_path(ROOM_ROUTE, StockChatConsumer.as_asgi())])

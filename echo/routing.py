"""WebSocket routes of the echo app, mounted by ``project/asgi.py``."""

from django.urls import path

from echo.consumers import EchoConsumer

websocket_urlpatterns = [
    path("echo", EchoConsumer.as_asgi()),
]

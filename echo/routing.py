"""WebSocket routes of the echo app, mounted by ``project/asgi.py``."""

from django.urls import path

from echo.consumers import FastEchoConsumer, with_shared_concerns

websocket_urlpatterns = [
    path("echo", with_shared_concerns(FastEchoConsumer.as_asgi())),
]

"""WebSocket routes of the echo app, mounted by ``project/asgi.py``."""

from django.urls import path

from echo.consumers import FastEchoConsumer

websocket_urlpatterns = [
    path("echo", FastEchoConsumer.as_asgi()),
]

"""App configuration for the echo app: the index page and the ``/echo`` WebSocket consumer."""

from django.apps import AppConfig


class EchoConfig(AppConfig):
    name = "echo"
    verbose_name = "WebSocket echo"

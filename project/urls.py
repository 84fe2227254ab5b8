"""HTTP routes. WebSocket routes live in ``echo/routing.py`` and are mounted by ``asgi.py``."""

from django.urls import path

from echo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("echo", views.websocket_only, name="echo"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
]

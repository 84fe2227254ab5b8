"""HTTP views of the echo app: the index page that talks to ``/echo``."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from echo.consumers import SUBPROTOCOL


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """The page passes the server's own limits to the script so it never hard-codes them."""
    context = {
        "subprotocol": SUBPROTOCOL,
        "max_message_size": settings.ECHO_MAX_MESSAGE_SIZE,
        "idle_timeout": settings.ECHO_IDLE_TIMEOUT,
    }
    return render(request, "index.html", context)

"""HTTP views of the echo app: the index page that talks to ``/echo``."""

from __future__ import annotations

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from echo import metrics as echo_metrics
from echo.capacity import open_count
from echo.consumers import SUBPROTOCOL
from project.networks import address_in
from project.static import static_files_problem


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """The page passes the server's own limits to the script so it never hard-codes them."""
    context = {
        "subprotocol": SUBPROTOCOL,
        "max_message_size": settings.ECHO_MAX_MESSAGE_SIZE,
        "idle_timeout": settings.ECHO_IDLE_TIMEOUT,
    }
    return render(request, "index.html", context)


def websocket_only(request: HttpRequest) -> HttpResponse:
    """/echo without ``Upgrade: websocket`` reaches Django; it is a malformed handshake."""
    return HttpResponseBadRequest(
        "This URL speaks WebSocket only: send an RFC 6455 handshake with "
        "'Upgrade: websocket', 'Connection: Upgrade' and 'Sec-WebSocket-Protocol: echo'.\n",
        content_type="text/plain; charset=utf-8",
    )


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and operators: the process is up and can serve the page (503 and the
    problem when it cannot), and how busy it is."""
    load = {
        "connections": open_count(),
        "max_connections": settings.ECHO_MAX_CONNECTIONS,
    }
    if (problem := static_files_problem()) is not None:
        return JsonResponse({"status": "unavailable", "problem": problem, **load}, status=503)
    return JsonResponse({"status": "ok", **load})


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """For Prometheus: this process's connections, traffic and close codes, to allowed
    addresses only (ECHO_METRICS_ALLOW); 404 when ECHO_METRICS is off."""
    if not settings.ECHO_METRICS:
        raise Http404("metrics are switched off (ECHO_METRICS)")
    if not address_in(request.META.get("REMOTE_ADDR", ""), settings.ECHO_METRICS_ALLOW):
        return HttpResponseForbidden(
            "metrics are served only to ECHO_METRICS_ALLOW\n", content_type="text/plain"
        )
    return HttpResponse(echo_metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

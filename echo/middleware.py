"""``HealthProbeMiddleware``: ``/healthz`` answered before host validation and the HTTPS redirect.

A load balancer or an orchestrator probes each backend over plain HTTP at the backend's own
address, so its ``Host`` is not one of ``DJANGO_ALLOWED_HOSTS`` and its scheme is not https.
Through the rest of the middleware the probe would get 400 (host not allowed) or a redirect to
https, and every backend would be marked down. Listed first in ``MIDDLEWARE``, this answers the
probe with the ``healthz`` view itself; every other path keeps host validation and the redirect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from echo.views import healthz

GetResponse = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class HealthProbeMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.probe_path = reverse("healthz")
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.answer_async(request)
        if request.path == self.probe_path:
            return healthz(request)
        return self.get_response(request)  # type: ignore[return-value]

    async def answer_async(self, request: HttpRequest) -> HttpResponse:
        if request.path == self.probe_path:
            return healthz(request)
        return await self.get_response(request)  # type: ignore[misc,no-any-return]

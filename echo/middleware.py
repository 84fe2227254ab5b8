"""``ProbeMiddleware``: ``/healthz`` and ``/metrics`` answered before host validation and the
HTTPS redirect.

A load balancer's health probe and a Prometheus scrape reach each backend over plain HTTP at the
backend's own address, so their ``Host`` is not one of ``DJANGO_ALLOWED_HOSTS`` and their scheme
is not https. Through the rest of the middleware they would get 400 (host not allowed) or a
redirect to https, and every backend would look down. Listed first in ``MIDDLEWARE``, this answers
them with their views; every other path keeps host validation and the redirect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from echo.views import healthz, metrics
from project.static import static_files_problem

GetResponse = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class ProbeMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.probes = {reverse("healthz"): healthz, reverse("metrics"): metrics}
        # The static files' manifest is read now, when WhiteNoise reads their folder: /healthz
        # then speaks for both for the life of the process.
        static_files_problem()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.answer_async(request)
        if (probe := self.probes.get(request.path)) is not None:
            return probe(request)
        return self.get_response(request)  # type: ignore[return-value]

    async def answer_async(self, request: HttpRequest) -> HttpResponse:
        if (probe := self.probes.get(request.path)) is not None:
            return probe(request)
        return await self.get_response(request)  # type: ignore[misc,no-any-return]

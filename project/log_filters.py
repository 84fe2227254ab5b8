"""Client-caused HTTP errors in the log as the project writes them: one INFO ``key=value`` line.

Django logs every 4xx response (``Bad Request: /echo``) at WARNING, and a request for a host
outside ``DJANGO_ALLOWED_HOSTS`` at ERROR with a traceback, so any client could fill an
operator's error log with its own mistakes. ``ClientErrors``, a filter on the console handler,
rewrites those records, and only those, as ``event=http_refused`` lines at INFO that say who
sent what and why, and counts them in ``echo_http_refused_total`` (``project.events``; the filter
is on one handler, so each is counted once). Errors of the server's own (5xx) keep their level
and traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from project import events
from project.connection import Connection, scope_connection
from project.logfields import escaped

SECURITY_LOGGER = "django.security."


class ClientErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        request = getattr(record, "request", None)
        if not isinstance(status, int) or not 400 <= status < 500 or request is None:
            return True
        if record.name.startswith(SECURITY_LOGGER):
            reason = record.name.removeprefix(SECURITY_LOGGER)
            reason = "".join(f"_{c.lower()}" if c.isupper() else c for c in reason).lstrip("_")
        else:
            reason = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
        meta = request.META
        scope = getattr(request, "scope", None)
        if scope is not None:
            connection = scope_connection(scope)
        else:  # a request that did not come through ASGI (Django's test RequestFactory)
            connection = Connection(escaped(meta.get("REMOTE_ADDR") or "unknown"), "-")
        events.count_http_refused(status)
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.msg = (
            "event=http_refused client=%s status=%d reason=%s method=%s path=%s host=%s conn=%s"
        )
        record.args = (
            connection.client,
            status,
            reason,
            escaped(meta.get("REQUEST_METHOD", "-")),
            escaped(request.path),
            escaped(meta.get("HTTP_HOST", "-")),
            connection.id,
        )
        record.exc_info = None
        record.exc_text = None
        return True

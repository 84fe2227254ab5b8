"""Client-caused HTTP errors reach the log as one INFO key=value line, never as ERROR."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse, HttpResponseBadRequest
from django.test import RequestFactory
from django.utils.log import log_response

from project.log_filters import ClientErrors


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ClientErrors())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[list[logging.LogRecord]]:
    """What Django's request and security loggers write, through the project's filter."""
    handler = Collect()
    loggers = [logging.getLogger("django.request"), logging.getLogger("django.security")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


def test_disallowed_host_is_an_info_line(collected: list[logging.LogRecord]) -> None:
    """A Host outside ALLOWED_HOSTS is logged at INFO with who and which host, no traceback."""
    request = RequestFactory().get("/", HTTP_HOST="evil.example", REMOTE_ADDR="198.51.100.4")
    log_response(
        "Invalid HTTP_HOST header",
        request=request,
        response=HttpResponseBadRequest(),
        exception=DisallowedHost("Invalid HTTP_HOST header"),
        level="error",
        logger=logging.getLogger("django.security.DisallowedHost"),
    )
    (record,) = collected
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert record.getMessage() == (
        "event=http_refused client=198.51.100.4 status=400 reason=disallowed_host "
        "method=GET path=/ host=evil.example conn=-"
    )


def test_bad_request_is_an_info_line(collected: list[logging.LogRecord]) -> None:
    """Django's WARNING for a 4xx (``Bad Request: /echo``) becomes the same kind of line."""
    request = RequestFactory().post("/écho", REMOTE_ADDR="192.0.2.9", HTTP_HOST="echo.example.com")
    response = HttpResponse(status=405)
    log_response("Bad Request: %s", request.path, request=request, response=response)
    (record,) = collected
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "event=http_refused client=192.0.2.9 status=405 reason=method_not_allowed "
        "method=POST path=/%C3%A9cho host=echo.example.com conn=-"
    )


def test_server_errors_keep_their_level(collected: list[logging.LogRecord]) -> None:
    """A 500 is the server's own fault: it stays an ERROR, with its message."""
    request = RequestFactory().get("/")
    log_response(
        "Internal Server Error: %s", "/", request=request, response=HttpResponse(status=500)
    )
    (record,) = collected
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "Internal Server Error: /"

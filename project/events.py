"""Each connection event's log line and its counter, in one place, so that the two cannot
disagree: the servers' adjustments (``servers/``) and the application (``echo/``,
``project/origin.py``) both report events through these functions, and /metrics
(``echo.metrics``) serves the counters whichever layer saw the event.

Every line names the connection the same way, ``client=...`` second and ``conn=...`` last
(``project.connection``),
and is written by the logger of the layer that saw the event (``servers.*`` or ``echo.*``),
passed in. Every counter's labels take only values the service chose, and every series exists
from the start: a client can neither add a series nor put anything of its own in a label.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from prometheus_client import CollectorRegistry, Counter

from project.connection import Connection
from project.logfields import escaped

REGISTRY = CollectorRegistry()

ACCEPTED = Counter(
    "echo_connections_accepted",
    "WebSocket connections accepted (the echo subprotocol negotiated).",
    registry=REGISTRY,
)
REFUSED = Counter(
    "echo_connections_refused",
    "WebSocket handshakes refused, or connections closed at once, by reason.",
    ["reason"],
    registry=REGISTRY,
)
CLOSED = Counter(
    "echo_connections_closed",
    "Accepted WebSocket connections that have ended, by close code "
    "(other: a code an application chose, 3000-4999).",
    ["code"],
    registry=REGISTRY,
)
TOO_BIG = Counter(
    "echo_messages_too_big",
    "WebSocket messages refused with 1009 for their size, by the server or the application.",
    registry=REGISTRY,
)
PROTOCOL_ERRORS = Counter(
    "echo_protocol_errors",
    "WebSocket connections failed for the client's error, by close code.",
    ["code"],
    registry=REGISTRY,
)
TIMEOUTS = Counter(
    "echo_timeouts",
    "Connections ended for a silence: handshake (no complete request in time), ping (no pong "
    "in time), idle (no message in ECHO_IDLE_TIMEOUT).",
    ["kind"],
    registry=REGISTRY,
)
HTTP_REFUSED = Counter(
    "echo_http_refused",
    "HTTP requests refused for the client's mistake, by the server or by Django, by status "
    "(other: any other 4xx).",
    ["status"],
    registry=REGISTRY,
)

# A reason is one the service refuses a connection for; invalid_handshake is the server's (400,
# 426), the others the application's.
REFUSAL_REASONS = (
    "subprotocol_missing",
    "foreign_origin",
    "unknown_path",
    "capacity",
    "invalid_handshake",
)
# A close code is one RFC 6455 (section 7.4.1) or the IANA registry defines that a connection
# can end with here: 1005 and 1006 for a close without a code and a connection lost without
# one, no 1004 or 1014 (a protocol error, 1002) and no 1015 (TLS). Any other code is a
# client's choice (an application's 3000-4999), counted as OTHER.
CLOSE_CODES = (1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013)
PROTOCOL_ERROR_CODES = (1002, 1007)
TIMEOUT_KINDS = ("handshake", "ping", "idle")
# The statuses the service refuses requests with: the servers' 400 and 431, Django's 400
# (a Host it does not serve, a plain GET of /echo), 403, 404 and 405.
HTTP_REFUSED_STATUSES = (400, 403, 404, 405, 431)
OTHER = "other"

for reason in REFUSAL_REASONS:
    REFUSED.labels(reason=reason)
for code in (*map(str, CLOSE_CODES), OTHER):
    CLOSED.labels(code=code)
for code in (*map(str, PROTOCOL_ERROR_CODES), OTHER):
    PROTOCOL_ERRORS.labels(code=code)
for kind in TIMEOUT_KINDS:
    TIMEOUTS.labels(kind=kind)
for status in (*map(str, HTTP_REFUSED_STATUSES), OTHER):
    HTTP_REFUSED.labels(status=status)


def label(value: int, known: tuple[int, ...]) -> str:
    return str(value) if value in known else OTHER


def accepted(logger: logging.Logger, connection: Connection, subprotocol: str | None) -> None:
    ACCEPTED.inc()
    logger.info(
        "event=accepted client=%s subprotocol=%s conn=%s",
        connection.client,
        escaped(subprotocol) if subprotocol else "-",
        connection.id,
    )


def closed(
    logger: logging.Logger,
    connection: Connection,
    code: int,
    duration: float,
    traffic: tuple[int, int, int, int],
) -> None:
    """An accepted connection's end; ``traffic`` is messages and bytes in, then out."""
    CLOSED.labels(code=label(code, CLOSE_CODES)).inc()
    logger.info(
        "event=closed client=%s code=%s duration=%.3f messages_in=%d bytes_in=%d "
        "messages_out=%d bytes_out=%d conn=%s",
        connection.client,
        code,
        duration,
        *traffic,
        connection.id,
    )


def refused(
    logger: logging.Logger, connection: Connection, reason: str, details: str = "", *args: object
) -> None:
    """A handshake refused, or a connection closed at once; ``details`` adds the reason's own
    pairs (a format string, and its ``args``). The capacity refusal is a WARNING: it is the
    operator's limit, not the client's mistake."""
    REFUSED.labels(reason=reason).inc()
    logger.log(
        logging.WARNING if reason == "capacity" else logging.INFO,
        "event=refused client=%s reason=%s" + (" " + details if details else "") + " conn=%s",
        connection.client,
        reason,
        *args,
        connection.id,
    )


def refused_handshake(
    logger: logging.Logger, connection: Connection, status: int, detail: str
) -> None:
    """A WebSocket handshake the server refuses on its own (400, 426): the client's doing."""
    refused(
        logger, connection, "invalid_handshake", "status=%d detail=%s", status, escaped(detail)
    )


def too_big(
    logger: logging.Logger,
    connection: Connection,
    size: int | None,
    limit: int,
    kind: str | None = None,
) -> None:
    """A message refused with 1009. ``size`` is None where it is not known: a server inflates a
    compressed message only up to the limit. ``kind`` (text or binary) where known: the
    application's line has it, the server's refuses before it knows."""
    TOO_BIG.inc()
    shown_size = "unknown" if size is None else size
    if kind is None:
        logger.info(
            "event=too_big client=%s size=%s limit=%d conn=%s",
            connection.client,
            shown_size,
            limit,
            connection.id,
        )
    else:
        logger.info(
            "event=too_big client=%s type=%s size=%s limit=%d conn=%s",
            connection.client,
            kind,
            shown_size,
            limit,
            connection.id,
        )


def protocol_error(logger: logging.Logger, connection: Connection, code: int, detail: str) -> None:
    """A connection the server fails for the client's error (1002, 1007); the close follows."""
    PROTOCOL_ERRORS.labels(code=label(code, PROTOCOL_ERROR_CODES)).inc()
    logger.info(
        "event=protocol_error client=%s code=%d detail=%s conn=%s",
        connection.client,
        code,
        escaped(detail),
        connection.id,
    )


def timeout(
    logger: logging.Logger, connection: Connection, kind: str, seconds: float | None
) -> None:
    """A connection ended for a silence: ``event=handshake_timeout``, ``ping_timeout`` or
    ``idle_timeout``."""
    TIMEOUTS.labels(kind=kind).inc()
    logger.info(
        "event=%s_timeout client=%s timeout=%s conn=%s",
        kind,
        connection.client,
        seconds,
        connection.id,
    )


def http_refused(logger: logging.Logger, connection: Connection, status: HTTPStatus) -> None:
    """A request the server refuses itself, before any application sees it: the client's
    doing, so one INFO line (as ``project.log_filters`` makes of the application's refusals)."""
    count_http_refused(status.value)
    logger.info(
        "event=http_refused client=%s status=%d reason=%s conn=%s",
        connection.client,
        status.value,
        status_reason(status.value),
        connection.id,
    )


def count_http_refused(status: int) -> None:
    HTTP_REFUSED.labels(status=label(status, HTTP_REFUSED_STATUSES)).inc()


def status_reason(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")

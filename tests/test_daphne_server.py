"""The project's daphne protocol: what it changes, and that daphne still needs the change."""

from __future__ import annotations

from typing import Any

import pytest
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

import project.asgi  # noqa: F401  (installs the protocol, as every server start does)
from project.daphne_server import EchoWebSocketProtocol


class Recorder:
    """Stands in for autobahn's sending methods, keeping what would go on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, Any]] = []

    def message(self, payload: bytes, isBinary: bool = False) -> None:
        self.sent.append(("message", payload, isBinary))

    def close(
        self, code: int | None = None, reasonUtf8: bytes | None = None, isReply: bool = False
    ) -> None:
        self.sent.append(("close", code, reasonUtf8))


def open_protocol(cls: type[WebSocketProtocol]) -> tuple[WebSocketProtocol, Recorder]:
    protocol = cls()
    protocol.state = protocol.STATE_OPEN
    recorder = Recorder()
    protocol.sendMessage = recorder.message  # type: ignore[method-assign]
    protocol.sendCloseFrame = recorder.close  # type: ignore[method-assign]
    return protocol, recorder


def test_installed_for_every_daphne_server() -> None:
    """Loading the ASGI application makes daphne build the project's protocol."""
    assert WebSocketFactory.protocol is EchoWebSocketProtocol


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "websocket.send", "text": ""}, ("message", b"", False)),
        ({"type": "websocket.send", "bytes": b""}, ("message", b"", True)),
        ({"type": "websocket.send", "text": "é"}, ("message", "é".encode(), False)),
        ({"type": "websocket.send", "bytes": b"\x00"}, ("message", b"\x00", True)),
        (
            {"type": "websocket.close", "code": 1000, "reason": "idle timeout"},
            ("close", 1000, b"idle timeout"),
        ),
        (
            {"type": "websocket.close", "code": 1013, "reason": "try again later"},
            ("close", 1013, b"try again later"),
        ),
        # 61 two-byte characters: cut to 122 bytes, never in the middle of a character.
        (
            {"type": "websocket.close", "code": 1009, "reason": "é" * 70},
            ("close", 1009, "é".encode() * 61),
        ),
        ({"type": "websocket.close"}, ("close", 1000, None)),
    ],
    ids=[
        "empty-text",
        "empty-binary",
        "text",
        "binary",
        "close-reason",
        "close-1013",
        "close-long-reason",
        "close-default",
    ],
)
def test_sends_what_the_application_asked_for(
    message: dict[str, Any], expected: tuple[str, Any, Any]
) -> None:
    """Empty messages and close reasons reach the wire exactly as the application sent them."""
    protocol, recorder = open_protocol(EchoWebSocketProtocol)
    protocol.handle_reply(message)
    assert recorder.sent == [expected]


def test_refuses_a_send_with_both_payloads() -> None:
    """A websocket.send carrying both text and bytes is an application error, not a guess."""
    protocol, _ = open_protocol(EchoWebSocketProtocol)
    with pytest.raises(ValueError, match="exactly one of"):
        protocol.handle_reply({"type": "websocket.send", "text": "a", "bytes": b"b"})


@pytest.mark.parametrize("payload", [{"text": ""}, {"bytes": b""}], ids=["text", "binary"])
def test_stock_daphne_still_drops_empty_messages(payload: dict[str, Any]) -> None:
    """daphne's own protocol still drops empty messages; when this fails, the fix can go."""
    protocol, recorder = open_protocol(WebSocketProtocol)
    protocol.handle_reply({"type": "websocket.send", **payload})
    assert recorder.sent == []


def test_nothing_is_sent_after_the_close_frame() -> None:
    """An echo that arrives from the application after the close frame is dropped quietly."""
    protocol, recorder = open_protocol(EchoWebSocketProtocol)
    protocol.state = protocol.STATE_CLOSING
    protocol.handle_reply({"type": "websocket.send", "text": "late"})
    assert recorder.sent == []

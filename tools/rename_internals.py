"""Check that the tests notice when a library renames an internal that ``servers/`` relies on.

For each (library, name) below, this copies the installed library, renames ``name`` throughout
the copy (as an upstream release would), runs the fast in-process tests with the copy first on
the path, and reports whether any test failed. Every rename should be CAUGHT; a MISSED one
means an internal is relied on without a test to guard it (docs/upstream.md).

    .venv/bin/python tools/rename_internals.py                        # every name, ~4 minutes
    .venv/bin/python tools/rename_internals.py daphne:check_timeouts  # one of them

It exits 1 if any rename was missed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
TESTS = [
    "tests/test_server_contracts.py",
    "tests/test_daphne_adjustments.py",
    "tests/test_uvicorn_adjustments.py",
]

# What servers/daphne.py and servers/uvicorn.py override, call or read, by the library that
# defines it (tests/test_server_contracts.py lists the same names with their signatures).
INTERNALS = {
    "daphne": [
        *("application_queue", "applicationCreateWorked", "check_timeouts", "handle_reply"),
        *("onConnect", "onOpen", "onMessage", "connections", "HTTPFactory", "timeout_checker"),
        *("websocket_timeout", "client_addr", "kill_all_applications", "server_class"),
        *("server_cls", "create_application", "onClose"),
    ],
    "autobahn": [
        *("failByDrop", "echoCloseCodeReason", "maxMessagePayloadSize", "maxFramePayloadSize"),
        *("openHandshakeTimeout", "autoPingInterval", "autoPingTimeout", "closeHandshakeTimeout"),
        *("versions", "CONFIG_ATTRS", "sendCloseFrame", "dropConnection", "failHandshake"),
        *("encode_truncate", "http_request_data", "http_response_data", "http_headers"),
        *("STATE_OPEN", "STATE_CONNECTING", "sendMessage", "connectionMade", "connectionLost"),
        *("onOpen", "onConnect", "onMessage", "ConnectionDeny", "_max_message_size_exceeded"),
        *("_fail_connection", "_protocol_violation", "_invalid_payload", "onCloseFrame"),
        *("failedByMe", "onAutoPingTimeout", "_parseExtensionsHeader", "websocket_extensions"),
        *("_perMessageCompress", "websocket_extensions_in_use", "decompress_message_data"),
        *("create_from_offer_accept", "_decompressor", "accept_max_window_bits"),
        *("perMessageCompressionAccept", "PERMESSAGE_COMPRESSION_EXTENSION"),
        *("processData", "consumeData", "onMessageBegin", "onMessageFrameBegin", "onMessageFrame"),
        "message_data",
        *("current_frame", "_isMessageCompressed", "CLOSE_STATUS_CODE_MESSAGE_TOO_BIG"),
        *("headers", "onClose", "localCloseCode"),
    ],
    "twisted": [
        *("allContentReceived", "requests", "timeOut", "bufferSize", "registerProducer"),
        *("unregisterProducer", "abortConnection", "rawDataReceived", "lineLengthExceeded"),
        *("clearLineBuffer", "_respondToBadRequestAndDisconnect", "loseWriteConnection"),
    ],
    "uvicorn": [
        *("on_headers_complete", "timeout_keep_alive", "handle_connect"),
        *("send_receive_event_to_app", "handle_parser_exception", "handle_close", "shutdown"),
        *("stop_keepalive", "handshake_initiated", "handshake_complete", "close_sent"),
        *("initial_response", "frames", "curr_msg_data_type", "read_paused", "ping_interval"),
        *("ping_timeout", "conn", "connection_made", "connection_lost", "data_received"),
        *("_unset_keepalive_if_required", "_should_upgrade", "handle_websocket_upgrade"),
        *("on_message_complete", "handle_events", "handle_text", "handle_cont", "handle_bytes"),
        *("keepalive_timeout", "on_task_complete", "eof_received", "close_timeout"),
        *("close_timer", "writable", "disconnected", "pong_timer", "pending_ping_payload"),
        *("pause_writing", "resume_writing"),
    ],
    "websockets": [
        *("close_rcvd", "data_to_send", "send_close", "send_response", "reject"),
        *("NO_STATUS_RCVD", "GOING_AWAY", "INVALID_DATA", "NORMAL_CLOSURE"),
        *("parser_exc", "PayloadTooBig", "current_size", "max_size"),
        *("handshake_exc", "SecurityError", "fail", "receive_data", "close_sent"),
        *("decoder", "encoder", "process_request_params", "remote_no_context_takeover"),
        *("process_extensions", "InvalidHeaderFormat", "max_message_size", "MESSAGE_TOO_BIG"),
        "apply_mask",
    ],
}


def renamed_copy(library: str, name: str, root: Path) -> int:
    """Copies ``library`` under ``root`` with ``name`` renamed; returns the files changed."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    copy = root / library
    shutil.copytree(SITE_PACKAGES / library, copy, ignore=shutil.ignore_patterns("__pycache__"))
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    changed = 0
    for path in copy.rglob("*.py"):
        text = path.read_text()
        renamed = pattern.sub(f"{name}_renamed", text)
        if renamed != text:
            path.write_text(renamed)
            changed += 1
    return changed


def tests_notice(root: Path) -> bool:
    result = subprocess.run(  # noqa: S603  (this interpreter running pytest)
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode != 0


def main(selected: list[str]) -> int:
    pairs = [(library, name) for library, names in INTERNALS.items() for name in names]
    if selected:
        pairs = [tuple(item.split(":", 1)) for item in selected]  # type: ignore[misc]
    missed = []
    with tempfile.TemporaryDirectory(prefix="renamed-internals-") as scratch:
        root = Path(scratch)
        for library, name in pairs:
            if not renamed_copy(library, name, root):
                print(f"{library}:{name}: not found in {library}", flush=True)
                missed.append(f"{library}:{name}")
                continue
            verdict = "CAUGHT" if tests_notice(root) else "MISSED"
            print(f"{library}:{name}: {verdict}", flush=True)
            if verdict == "MISSED":
                missed.append(f"{library}:{name}")
    print(f"{len(pairs) - len(missed)} of {len(pairs)} renames caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

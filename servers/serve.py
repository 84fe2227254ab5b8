"""The container's entry point: ``python -m servers.serve`` becomes one ASGI server process.

It reads which server (``ECHO_SERVER``: ``daphne``, the default, or ``uvicorn``) and where to
listen (``ECHO_BIND``, default ``0.0.0.0``; ``PORT``, default 8000) from the environment, then
replaces itself with that server's command from ``servers.commands``, so the server is the
process the container runtime signals: SIGTERM starts its drain (1001 to open WebSockets, 503 to
new handshakes) rather than the runtime's kill timeout.
"""

from __future__ import annotations

import os
import sys

from servers.commands import command

SERVERS = ("daphne", "uvicorn")


# Where a client on the same host reaches a server that listens on every address.
LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


def listen_port() -> str:
    return os.environ.get("PORT", "").strip() or "8000"


def listen_host() -> str:
    return os.environ.get("ECHO_BIND", "").strip() or "0.0.0.0"  # noqa: S104  (a container's own network)


def health_url() -> str:
    """Where the image's health check asks for /healthz: the address the server listens on, or
    loopback when that is every address, so that an ``ECHO_BIND`` of one address is healthy."""
    host = listen_host()
    host = LOOPBACK_FOR.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{listen_port()}/healthz"


def main() -> None:
    kind = os.environ.get("ECHO_SERVER", "").strip() or "daphne"
    if kind not in SERVERS:
        sys.exit(
            f"servers.serve: ECHO_SERVER={kind!r} is invalid: it accepts {' or '.join(SERVERS)}"
        )
    port_text = listen_port()
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        sys.exit(f"servers.serve: PORT={port_text!r} is invalid: it accepts 1 to 65535")
    argv = command(kind, host=listen_host(), port=int(port_text))
    os.execv(argv[0], argv)  # noqa: S606  (this interpreter, a command of servers.commands)


if __name__ == "__main__":
    main()

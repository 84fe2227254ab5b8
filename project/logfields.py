"""How a value is written into the service's ``key=value`` log lines, by every module that logs.

Each log line is one event, written as space-separated ``key=value`` pairs (README "Logging"),
by the application (``echo``, ``project``) and by the adjustments to the servers (``servers``).
Whatever a client chose (a path, an ``Origin``, the subprotocols it offered, a header quoted in
a refusal, a preview of its message, the address a proxy names for it) enters a line through
``escaped()``, so no client can end the line or add a pair to it. This module imports nothing
else of the project's, so ``servers`` can use it without importing the application.
"""

from __future__ import annotations

from urllib.parse import quote

# Written as they are, besides letters, digits and "-._~": the delimiters a path, an origin, an
# address or a list of subprotocols is made of. Not "=", "%", quotes, backslash or space.
KEPT = "!$&()*+,/:;?@[]"

Client = tuple[str, int] | list[object] | None


def escaped(text: str) -> str:
    """``text`` as one log value: percent-encoded (RFC 3986, UTF-8) except for ASCII letters,
    digits and ``-._~!$&()*+,/:;?@[]``.

    The value is printable ASCII without space, ``=``, ``%`` (other than its escapes) or quotes,
    so it cannot break the line, start another ``key=`` pair or open a quoted string, and
    ``urllib.parse.unquote(value, errors="surrogatepass")`` gives ``text`` back.
    """
    return quote(text, safe=KEPT, errors="surrogatepass")


def peer_name(client: Client) -> str:
    """A client as the log lines name it: ``host:port``, ``[v6 host]:port``, or ``unknown``
    (a unix socket, or an address a proxy could not name). Escaped like any client value: the
    host may be what a proxy was told."""
    if not client:
        return "unknown"
    host, port = str(client[0]), client[1]
    return escaped(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

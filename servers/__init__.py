"""How the project is served: its adjustments to the ASGI servers it supports, and how to start
each one.

``servers.daphne`` adjusts daphne (and autobahn and Twisted beneath it); ``servers.apps`` applies
it once Django is set up, so it holds under ``manage.py runserver`` and ``daphne
project.asgi:application`` alike. ``servers.uvicorn`` holds the protocol classes uvicorn loads
with its ``--http`` and ``--ws`` flags. ``servers.launcher`` starts any of them as a process.
Nothing here imports the echo app: these are fixes to the servers, whatever they serve.
docs/upstream.md lists the defect behind each adjustment.
"""

# The reason of the 1001 close, and the body of the 503 for handshakes, when the process shuts
# down; the same under every server.
SHUTDOWN_REASON = "server shutting down"
# After the server's own close frame, how long a client has to answer it before TCP ends.
CLOSE_TIMEOUT = 5.0
# After a protocol error, how long the application has to answer the messages that came before
# it; then the close frame goes out whether it has or not.
FAILURE_GRACE = 1.0


def peer_name(client: tuple[str, int] | list[object] | None) -> str:
    """A client as the service's log lines name it: ``host:port``, or ``[v6 host]:port``."""
    if not client:
        return "unknown"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

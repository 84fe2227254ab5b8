"""``manage.py runserver``'s autoreloader, stopping the server gracefully on SIGTERM, on Ctrl-C
and when a code change restarts it.

With the autoreloader on (the default), runserver is two processes: a parent that restarts a
child whenever the code changes, and the child, which serves from a thread while its main
thread watches files. Django's reloader ends both with ``sys.exit()`` on SIGTERM: the parent
kills the child, and the child's serving thread dies with the process, so every WebSocket is
dropped without a close frame. Here the parent passes SIGTERM (or Ctrl-C) on to the child and
waits for it, and the child stops daphne's reactor, which closes open WebSockets with 1001 as
it does without the reloader (``servers.daphne``), before it exits. A code change ends the
child with ``sys.exit(3)`` from its file watcher, which would drop them too; the child stops the
reactor the same way before it exits for the parent to start it again.
(docs/upstream.md#runserver-reloader)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.utils import autoreload
from twisted.internet import reactor

from servers.daphne import SHUTDOWN_GRACE

# The thread Django's reloader serves from, in the child.
SERVING_THREAD = "django-main-thread"
# The child's exit status that asks the parent to start it again (a file changed).
RESTART = 3


def run_with_reloader(serve: Callable[..., None], **options: Any) -> None:
    """Django's ``autoreload.run_with_reloader``, with graceful stops."""
    if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true":
        serve_and_watch(serve, **options)
    else:
        sys.exit(supervise())


def supervise() -> int:
    """The parent: runs the child until it exits other than to restart."""
    environment = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    running: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop_child(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in running:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_child)
    signal.signal(signal.SIGINT, stop_child)
    while True:
        child = subprocess.Popen(autoreload.get_child_arguments(), env=environment)  # noqa: S603
        running[:] = [child]
        status = child.wait()
        if status != RESTART:
            return status
        if stopping:
            return 0  # told to stop while the child was restarting


def serve_and_watch(serve: Callable[..., None], **options: Any) -> None:
    """The child: serves from a thread and watches files, until a file changes or a signal.

    The stop flag is a plain variable: a signal handler can interrupt another (Ctrl-C reaches
    the child twice, from the terminal and passed on by the parent), and one interrupted
    inside ``threading.Event.set()`` would leave the other waiting for its lock forever.
    """
    stopping = False

    def stop_serving() -> None:
        nonlocal stopping
        stopping = True
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]
        for thread in threading.enumerate():
            if thread.name == SERVING_THREAD:
                thread.join(timeout=SHUTDOWN_GRACE + 1)

    def stop(signum: int, frame: FrameType | None) -> None:
        # A second signal must not end the process while the first is closing WebSockets.
        if stopping:
            return
        stop_serving()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        autoreload.start_django(autoreload.get_reloader(), serve, **options)
    except SystemExit as exiting:
        if exiting.code == RESTART and not stopping:  # a file changed
            stop_serving()
        raise

"""Runs Channels' own consumer tests with ``FastWebsocketConsumer`` in place of
``AsyncWebsocketConsumer``: the fast consumer keeps Channels' contract if Channels' own tests
cannot tell the two apart.

Channels' tests are not in its releases on PyPI, so this takes a checkout of the release
``echo/fastpath.py`` re-implements (``git clone --branch 4.3.2
https://github.com/django/channels``) and runs, from it, the tests of its WebSocket consumers,
its database clean-up and its test communicators, with the installed Channels (the one the
project runs), twice:

* as Channels' test settings have it: a SQLite database and ``InMemoryChannelLayer``;
* with no default channel layer (the tests that need one configure their own).

Usage: ``python -m tools.channels_suite PATH_TO_CHANNELS_CHECKOUT``. It is also a pytest plugin
(``-p tools.channels_suite``), which makes the substitution before Channels' tests import the
consumer classes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Channels' tests of what FastWebsocketConsumer changes: the WebSocket consumers (text, binary,
# JSON, groups, blocked handler names, close codes), the database clean-up, and the test
# communicators; the HTTP consumers and the browser tests do not use it.
TESTS = [
    "tests/test_generic_websocket.py",
    "tests/test_database.py",
    "tests/test_testing.py",
    "tests/security/test_websocket.py",
]
WITHOUT_LAYER = "CHANNELS_SUITE_WITHOUT_LAYER"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Puts the fast consumer where Channels' tests import ``AsyncWebsocketConsumer`` and
    ``AsyncJsonWebsocketConsumer`` from, after Channels' own configuration."""
    from channels.generic import websocket
    from django.conf import settings

    from echo.fastpath import FastWebsocketConsumer

    class FastJsonWebsocketConsumer(FastWebsocketConsumer, websocket.AsyncJsonWebsocketConsumer):
        pass

    websocket.AsyncWebsocketConsumer = FastWebsocketConsumer  # type: ignore[misc]
    websocket.AsyncJsonWebsocketConsumer = FastJsonWebsocketConsumer  # type: ignore[misc]
    if os.environ.get(WITHOUT_LAYER):
        settings.CHANNEL_LAYERS = {}


def run(checkout: Path) -> int:
    """Runs the tests both ways; the exit status is pytest's worst."""
    worst = 0
    for without_layer in ("", "1"):
        print(f"Channels' tests on FastWebsocketConsumer, default layer: {not without_layer}")
        environment = os.environ | {
            WITHOUT_LAYER: without_layer,
            "PYTHONPATH": os.pathsep.join([str(checkout), str(PROJECT_DIR)]),
        }
        status = subprocess.run(  # noqa: S603  (this interpreter running pytest)
            [
                *(sys.executable, "-m", "pytest", "-p", "tools.channels_suite"),
                *("-p", "no:cacheprovider", "-q", "-o", "addopts="),
                *("-o", "asyncio_default_fixture_loop_scope=function", *TESTS),
            ],
            cwd=checkout,
            env=environment,
            check=False,
        ).returncode
        worst = max(worst, status)
    return worst


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tools.channels_suite PATH_TO_CHANNELS_CHECKOUT")
    sys.exit(run(Path(sys.argv[1]).resolve()))

"""Runs Channels' own consumer tests with ``FastWebsocketConsumer`` in place of
``AsyncWebsocketConsumer``: the fast consumer keeps Channels' contract if Channels' own tests
cannot tell the two apart.

Channels' tests are not in its releases on PyPI, so this takes a checkout of the release
``echo/fastpath.py`` re-implements (``git clone --branch 4.3.2
https://github.com/django/channels``), copies its tests out of it, and runs those of its
WebSocket consumers, its database clean-up and its test communicators against the installed
Channels (the one the project runs, which must be the checkout's release), twice:

* as Channels' test settings have it: a SQLite database and ``InMemoryChannelLayer``;
* with no default channel layer (the tests that need one configure their own).

Usage: ``python -m tools.channels_suite PATH_TO_CHANNELS_CHECKOUT``. It is also a pytest plugin
(``-p tools.channels_suite``), which makes the substitution before Channels' tests import the
consumer classes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
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

    from echo import fastpath

    if not fastpath.RELEASE_MATCHES:
        raise pytest.UsageError(
            "the fast consumer runs on Channels' own loop under this Channels release: "
            "its tests would not exercise it"
        )

    class FastJsonWebsocketConsumer(
        fastpath.FastWebsocketConsumer, websocket.AsyncJsonWebsocketConsumer
    ):
        pass

    websocket.AsyncWebsocketConsumer = fastpath.FastWebsocketConsumer  # type: ignore[misc]
    websocket.AsyncJsonWebsocketConsumer = FastJsonWebsocketConsumer  # type: ignore[misc]
    if os.environ.get(WITHOUT_LAYER):
        settings.CHANNEL_LAYERS = {}


def checkout_release(checkout: Path) -> str:
    """The Channels version a checkout holds, or an explanation of why it is not one."""
    init = checkout / "channels" / "__init__.py"
    if not (checkout / "tests").is_dir() or not init.is_file():
        sys.exit(f"{checkout} is not a checkout of Channels: no tests/ and channels/__init__.py")
    found = re.search(r'^__version__ = "([^"]+)"', init.read_text(), re.MULTILINE)
    if found is None:
        sys.exit(f"{init} names no __version__")
    return found.group(1)


def run(checkout: Path) -> int:
    """Runs the tests both ways; the exit status is pytest's worst."""
    import channels

    release = checkout_release(checkout)
    if release != channels.__version__:
        sys.exit(
            f"{checkout} is Channels {release}, the installed Channels is "
            f"{channels.__version__}: check out the installed release"
        )
    worst = 0
    with tempfile.TemporaryDirectory(prefix="channels-suite-") as copy:
        # The tests alone: with the checkout on the path, its channels/ would be imported in
        # place of the installed one.
        shutil.copytree(checkout / "tests", Path(copy) / "tests")
        for without_layer in ("", "1"):
            print(
                f"Channels {release}'s tests on FastWebsocketConsumer, default layer: "
                f"{'none' if without_layer else 'InMemoryChannelLayer'}"
            )
            environment = os.environ | {
                WITHOUT_LAYER: without_layer,
                "PYTHONPATH": os.pathsep.join([copy, str(PROJECT_DIR)]),
            }
            status = subprocess.run(  # noqa: S603  (this interpreter running pytest)
                [
                    *(sys.executable, "-m", "pytest", "-p", "tools.channels_suite"),
                    *("-p", "no:cacheprovider", "-q", "-o", "addopts="),
                    *("-o", "asyncio_mode=auto"),
                    *("-o", "asyncio_default_fixture_loop_scope=function", *TESTS),
                ],
                cwd=copy,
                env=environment,
                check=False,
            ).returncode
            worst = max(worst, status)
    return worst


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tools.channels_suite PATH_TO_CHANNELS_CHECKOUT")
    sys.exit(run(Path(sys.argv[1]).resolve()))

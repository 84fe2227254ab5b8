"""What ``echo/fastpath.py`` relies on in Channels and Django, held to what it was written from.

The fast consumer re-implements Channels 4.3's consumer loop, and reads in Django's database
connections the state ``close_if_unusable_or_obsolete()`` reads. Each function it re-implements
or mirrors is fingerprinted (``tests/fingerprints.py``): when a release changes one, read the
new original, carry what changed into ``echo/fastpath.py``, and record the new fingerprint.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import channels
import pytest
from channels.consumer import AsyncConsumer
from channels.layers import BaseChannelLayer
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from packaging.specifiers import SpecifierSet

from echo import fastpath
from tests.fingerprints import fingerprint

PROJECT_DIR = Path(__file__).resolve().parent.parent

# The functions the fast consumer re-implements (Channels) or mirrors (Django), by the
# fingerprint of the release it was written from.
WRITTEN_FROM = {
    "channels.consumer.AsyncConsumer.__call__": "5a8685a7cdf1fabb",
    "channels.consumer.AsyncConsumer.dispatch": "4f55952fa194d8f0",
    "channels.consumer.AsyncConsumer.send": "5b1d0be452b09cb8",
    "channels.consumer.get_handler_name": "8651272c4970ede2",
    "channels.utils.await_many_dispatch": "28d069116a31552b",
    "channels.generic.websocket.AsyncWebsocketConsumer.websocket_receive": "6eea6507afd97934",
    "channels.generic.websocket.AsyncWebsocketConsumer.send": "4c637ffab957a774",
    "channels.db.aclose_old_connections": "83a10eb77126c1df",
    "django.db.close_old_connections": "0c4a506ab529261b",
    "django.db.backends.base.base.BaseDatabaseWrapper.close_if_unusable_or_obsolete": (
        "d9a87c29e2034895"
    ),
    "django.db.backends.base.base.BaseDatabaseWrapper.close_if_health_check_failed": (
        "2fc1cd01398efb17"
    ),
    "django.db.backends.base.base.BaseDatabaseWrapper.connect": "fb03a42117b0100a",
}

# What is_due_closing() reads of a connection; connect() sets each.
CONNECTION_STATE = {
    "connection",
    "autocommit",
    "errors_occurred",
    "close_at",
    "health_check_enabled",
    "health_check_done",
}


def resolve(name: str) -> Any:
    """The object a dotted name names, its module being the longest importable prefix."""
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            found = getattr(found, part)
        return found
    raise LookupError(name)


@pytest.mark.parametrize("name", sorted(WRITTEN_FROM))
def test_each_original_is_the_one_the_fast_path_was_written_from(name: str) -> None:
    """Each Channels and Django function the fast path re-implements or mirrors has the syntax
    tree it had when the fast path was written."""
    assert fingerprint(resolve(name)) == WRITTEN_FROM[name], (
        f"{name} changed: read it against echo/fastpath.py"
    )


def test_the_release_pinned_is_the_one_installed() -> None:
    """The Channels release the fast path names is the one installed, and the only minor
    release the project's dependencies admit."""
    assert fastpath.RELEASE_MATCHES
    pyproject = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    (requirement,) = [
        line for line in pyproject["project"]["dependencies"] if line.startswith("channels")
    ]
    specifiers = SpecifierSet(requirement.removeprefix("channels"))
    release = ".".join(map(str, fastpath.CHANNELS_RELEASE))
    assert channels.__version__ in specifiers
    assert f"{release}.0" in specifiers
    assert f"{release}.99" in specifiers
    major, minor = fastpath.CHANNELS_RELEASE
    assert f"{major}.{minor + 1}.0" not in specifiers


def self_assignments(function: Any) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def test_the_consumer_is_set_up_as_channels_sets_it_up() -> None:
    """The fast consumer sets on itself what Channels' ``AsyncConsumer.__call__`` sets."""
    assert self_assignments(fastpath.FastWebsocketConsumer.__call__) == self_assignments(
        AsyncConsumer.__call__
    )


def test_a_layer_has_what_the_fast_path_calls() -> None:
    """A channel layer offers ``new_channel()`` and ``receive(channel)``, as the fast path calls
    them."""
    assert list(inspect.signature(BaseChannelLayer.new_channel).parameters)[:1] == ["self"]
    assert list(inspect.signature(BaseChannelLayer.receive).parameters) == ["self", "channel"]


def test_connect_sets_the_state_the_fast_path_reads() -> None:
    """``connect()`` sets every attribute ``is_due_closing()`` reads, and the method Django's
    clean-up calls reads them too."""
    assigned = self_assignments(BaseDatabaseWrapper.connect) | self_assignments(
        BaseDatabaseWrapper.set_autocommit
    )
    assert assigned >= CONNECTION_STATE
    source = inspect.getsource(fastpath.is_due_closing)
    for attribute in CONNECTION_STATE:
        assert f"connection.{attribute}" in source
    wrapper = connections.create_connection("default")
    for attribute in CONNECTION_STATE - {"autocommit", "close_at"}:
        assert hasattr(wrapper, attribute)
    assert "AUTOCOMMIT" in wrapper.settings_dict


def test_the_fast_path_imports_only_django_and_channels() -> None:
    """``echo/fastpath.py`` can be copied into any Channels project: it imports the standard
    library, Django and Channels, nothing of this project."""
    tree = ast.parse((PROJECT_DIR / "echo/fastpath.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert imported - sys.stdlib_module_names == {"channels", "django"}

"""``manage.py test`` runs the project's test suite with pytest, as ``make test`` does.

The suite is written for pytest (plain async test functions, fixtures that start real servers),
so Django's own runner would find no tests in it; settings name this class as ``TEST_RUNNER``,
the pattern pytest-django documents. pytest runs in a process of its own, with manage.py's
environment less its development default, ``DJANGO_DEBUG=true`` (which it cannot tell from the
same value set by hand), so the tests run with the production defaults, as under ``pytest``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent


class PytestTestRunner:
    """Runs pytest on the labels given (paths, node ids or dotted module names), or on the
    whole suite; the number it returns is non-zero when pytest failed."""

    def __init__(self, verbosity: int = 1, failfast: bool = False, **kwargs: Any) -> None:
        self.verbosity = verbosity
        self.failfast = failfast
        self.keyword: str | None = kwargs.get("pytest_keyword")

    @classmethod
    def add_arguments(cls, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-k",
            dest="pytest_keyword",
            help="Only run tests whose names match this pytest -k expression.",
        )

    def run_tests(self, test_labels: list[str], **kwargs: Any) -> int:
        if importlib.util.find_spec("pytest") is None:
            sys.stderr.write(
                "manage.py test runs the suite with pytest, which is not installed: "
                "use `make test` in a checkout (it installs requirements-dev.lock)\n"
            )
            return 1
        arguments = [pytest_label(label) for label in test_labels]
        if self.failfast:
            arguments.append("--exitfirst")
        if self.keyword:
            arguments += ["-k", self.keyword]
        if self.verbosity == 0:
            arguments.append("--quiet")
        elif self.verbosity > 1:
            arguments.append("--verbose")
        environment = dict(os.environ)
        if environment.get("DJANGO_DEBUG") == "true":
            del environment["DJANGO_DEBUG"]
        completed = subprocess.run(  # noqa: S603 (the interpreter running manage.py)
            [sys.executable, "-m", "pytest", *arguments],
            cwd=PROJECT_DIR,
            env=environment,
            check=False,
        )
        return completed.returncode


def pytest_label(label: str) -> str:
    """A Django test label as pytest takes it: ``tests.test_docs`` is ``tests/test_docs.py``."""
    if "/" in label or "::" in label:
        return label
    path = Path(*label.split(".")).with_suffix(".py")
    if (PROJECT_DIR / path).is_file():
        return str(path)
    return label

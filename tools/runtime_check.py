"""Run by ``make runtime-check`` in a virtual environment made from requirements.lock alone.

The production install must start the service under each supported server and hold nothing
that only tests or benchmarks need; this exits 1, naming what is wrong, if either fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile

# Installed for tests and the benchmark only (requirements-dev.lock, bench/requirements.lock).
NOT_FOR_PRODUCTION = (
    "pytest",
    "hypothesis",
    "playwright",
    "ruff",
    "psutil",
    "granian",
    "matplotlib",
)
NEEDED = ("django", "channels", "daphne", "uvicorn", "whitenoise")


def main() -> int:
    problems = [
        f"{name} is installed, though only tests or the benchmark use it"
        for name in NOT_FOR_PRODUCTION
        if importlib.util.find_spec(name) is not None
    ]
    problems += [f"{name} is missing" for name in NEEDED if importlib.util.find_spec(name) is None]
    with tempfile.TemporaryDirectory(prefix="channels-echo-static-") as static_root:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "runtime-check-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "DJANGO_ALLOWED_HOSTS": "echo.example.com",
            "DJANGO_HTTPS": "true",
            "DJANGO_STATIC_ROOT": static_root,
        }
        for check in (
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            # Loading the application is what daphne and uvicorn do first.
            [sys.executable, "-W", "error", "-c", "import project.asgi, servers.uvicorn"],
        ):
            result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
                check, env=environment, capture_output=True, text=True, timeout=120, check=False
            )
            if result.returncode != 0:
                problems.append(f"{' '.join(check[1:])} failed:\n{result.stderr}")
    for problem in problems:
        print(f"runtime-check: {problem}", file=sys.stderr)
    if not problems:
        print("runtime-check: the production install is complete and holds no test tools")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

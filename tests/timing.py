"""One factor for every time bound in the tests, for machines slower than the ones we run on.

``ECHO_TEST_TIME_FACTOR=3 make test`` gives every wait for something that should happen three
times as long. Durations that are part of what is tested (a timeout the server is configured
with, a pause that must outlast it) are not scaled.
"""

from __future__ import annotations

import os


def time_factor() -> float:
    value = os.environ.get("ECHO_TEST_TIME_FACTOR", "").strip() or "1"
    try:
        factor = float(value)
    except ValueError:
        factor = 0.0
    if not 1 <= factor < float("inf"):
        raise ValueError(f"ECHO_TEST_TIME_FACTOR={value!r} is invalid: it accepts a number ≥ 1")
    return factor


TIME_FACTOR = time_factor()


def bound(seconds: float) -> float:
    """An upper bound on a wait, scaled for this machine."""
    return seconds * TIME_FACTOR

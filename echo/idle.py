"""A per-connection idle timer, the counterpart of Perfect's ``readTimeoutSeconds``.

It keeps one ``asyncio.TimerHandle`` per connection and re-arms it lazily when it fires early,
so a busy connection pays one float store per message instead of a cancel and a reschedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class IdleTimer:
    """Calls ``on_idle`` once when ``touch()`` has not been called for ``timeout`` seconds."""

    def __init__(self, timeout: float, on_idle: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._on_idle = on_idle
        self._last_activity = self._loop.time()
        self._handle = self._loop.call_later(timeout, self._expire)

    def touch(self) -> None:
        self._last_activity = self._loop.time()

    def cancel(self) -> None:
        self._handle.cancel()

    def _expire(self) -> None:
        remaining = self._last_activity + self._timeout - self._loop.time()
        if remaining > 0:
            self._handle = self._loop.call_later(remaining, self._expire)
        else:
            self._on_idle()

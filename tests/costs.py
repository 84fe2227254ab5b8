"""What a consumer's loop costs the event loop, counted: tasks started, and hops to a worker
thread (what ``sync_to_async``, and with it Channels' ``aclose_old_connections()``, takes).

Both are counted on the running loop itself, whoever asks for them, so a test sees every task and
every hop, not only the ones a name it patched would have caught.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class Costs:
    tasks: int = 0
    thread_hops: int = 0


@contextmanager
def counted() -> Iterator[Costs]:
    """Counts, while the block runs, the tasks started and the worker-thread hops taken on the
    running event loop."""
    loop = asyncio.get_running_loop()
    costs = Costs()
    run_in_executor = loop.run_in_executor

    def start_task(loop: asyncio.AbstractEventLoop, coroutine: Any, **kwargs: Any) -> Any:
        costs.tasks += 1
        return asyncio.Task(coroutine, loop=loop, **kwargs)

    def hop(executor: Any, function: Any, *args: Any) -> Any:
        costs.thread_hops += 1
        return run_in_executor(executor, function, *args)

    loop.set_task_factory(start_task)
    loop.run_in_executor = hop  # type: ignore[method-assign]
    try:
        yield costs
    finally:
        loop.set_task_factory(None)
        del loop.run_in_executor

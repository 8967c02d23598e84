"""The engine's worker threads: daemon threads a stop can walk away from.

``ThreadPoolExecutor`` joins its threads on shutdown and again at interpreter exit, so one
request blocked in a read against a server that never answers held a task's stop (and its
process exit) for the whole read timeout. A stop must not wait for answers that may never
come: these threads are daemons, and ``abandon`` returns at once; whatever they still hand
back afterwards is ignored by the engine, which has stopped reading.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class WorkerPool:
    """A fixed number of daemon threads running submitted calls in order."""

    def __init__(self, size: int, name: str = "anyfast") -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._loop, name=f"{name}_{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on a free thread (it must not raise: the engine's calls never do)."""
        self._tasks.put((fn, args))

    def shutdown(self) -> None:
        """Let every thread finish its current call, then end it; wait for all of them."""
        for _ in self._threads:
            self._tasks.put(_STOP)
        for thread in self._threads:
            thread.join()

    def abandon(self) -> None:
        """End the threads once their current call returns, without waiting for that (a stop)."""
        for _ in self._threads:
            self._tasks.put(_STOP)

    def _loop(self) -> None:
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            fn, args = task
            fn(*args)

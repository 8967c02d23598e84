"""What a records run says in the task log besides progress: how it starts, and its retries.

A records run retries many calls at once; one WARNING per retry buries the log (78 lines
for 600 records under a rate limit, millions at scale). The engine tallies them instead
and the progress line reports the interval's retries, 429s and the current wait. Single
hook calls keep their own per-retry WARNING.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow_provider_anyfast.exceptions import AnyFastError, AnyFastRateLimitError


class RetryTally:
    """Retries since the last progress line; worker threads add, the progress line takes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retries = self._rate_limited = 0
        self._wait = 0.0

    def add(self, exc: AnyFastError, wait: float) -> None:
        with self._lock:
            self._retries += 1
            self._rate_limited += isinstance(exc, AnyFastRateLimitError)
            self._wait = wait

    def take(self) -> str:
        """``retries 12 (429: 9, current wait 2.5s)`` for the interval, then start a new one."""
        with self._lock:
            retries, limited, wait = self._retries, self._rate_limited, self._wait
            self._retries = self._rate_limited = 0
        if not retries:
            return "retries 0"
        return f"retries {retries} (429: {limited}, current wait {wait:.1f}s)"


def start_line(
    *, records: int, refused: int, source: str, model: str, output: str, limits: dict[str, Any], cache: str
) -> str:
    """One line before the first request: what this run is about to do, and within which limits."""
    set_limits = ", ".join(f"{name}={value}" for name, value in limits.items() if value is not None) or "none"
    refused_text = f" ({refused} refused unsent)" if refused else ""
    return (
        f"AnyFast run: {records} records{refused_text} from {source}, model {model}, output {output}; "
        f"limits: {set_limits}; cache: {cache}"
    )

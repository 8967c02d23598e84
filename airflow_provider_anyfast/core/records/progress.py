"""Progress lines for the task log: done/total, rate, ETA, tokens, cost so far, failures by status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from airflow_provider_anyfast.core.records.cost import Price
from airflow_provider_anyfast.core.records.rows import RowStatus, RunCounts


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Logs a progress line at most once per ``interval`` seconds, and once at the end."""

    def __init__(
        self,
        total: int | None,
        interval: float,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        price: Price | None = None,
    ) -> None:
        self.total = total
        self.interval = interval
        self.logger = logger
        self.clock = clock
        self.price = price  # with a price, the line shows the estimated cost so far
        self.started = clock()
        self._next = self.started + interval
        self.notes: Callable[[], str] | None = None  # more to say on each line (the retries since the last)

    def seconds_to_next(self) -> float:
        return max(0.01, self._next - self.clock())

    def maybe_log(self, counts: RunCounts, concurrency: int) -> bool:
        """Log when the interval is up; True when it did (the engine reports metrics then too)."""
        if self.clock() >= self._next:
            self.log_now(counts, concurrency)
            return True
        return False

    def log_now(self, counts: RunCounts, concurrency: int) -> None:
        self._next = self.clock() + self.interval
        self.logger.info("%s", self.line(counts, concurrency))

    def line(self, counts: RunCounts, concurrency: int) -> str:
        """One human line; pure apart from the clock, so tests can read it."""
        elapsed = max(1e-9, self.clock() - self.started)
        rate = counts.records / elapsed
        done = f"{counts.records}/{self.total}" if self.total is not None else str(counts.records)
        if self.total:
            done += f" ({100.0 * counts.records / self.total:.1f}%)"
        eta = ""
        if self.total is not None and rate > 0 and counts.records < self.total:
            eta = f", ETA {_duration((self.total - counts.records) / rate)}"
        failures = ", ".join(
            f"{status}={n}" for status, n in counts.by_status.items() if n and status != RowStatus.SUCCESS.value
        )
        usage = counts.usage
        cost = f", cost {self.price.cost(usage):.4f}" if self.price is not None else ""
        return (
            f"AnyFast progress: {done} records, {rate:.1f} records/s{eta}, "
            f"{counts.requests} requests, tokens {usage.get('total_tokens', 0)} "
            f"(cached {usage.get('cached_tokens', 0)}){cost}, failures: {failures or 'none'}, concurrency {concurrency}"
        ) + (f", {self.notes()}" if self.notes is not None else "")

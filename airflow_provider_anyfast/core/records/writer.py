"""The engine's one way to the sink: rows in order, keep_fields restored, counted, flushed on time.

Only the engine's own thread writes: worker threads hand rows back and never touch the
sink. Rows reach storage at least every ``flush_interval`` seconds, then cache entries:
a failing cache never keeps rows from storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from airflow_provider_anyfast.core.records.reuse import Reuse
from airflow_provider_anyfast.core.records.rows import ResultRow, RunCounts
from airflow_provider_anyfast.core.records.sink import RowSink


class RowWriter:
    """Writes result rows to the sink and counts them; flushes sink and cache on the interval."""

    def __init__(
        self, sink: RowSink, reuse: Reuse, flush_interval: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sink = sink
        self.reuse = reuse
        self.flush_interval = flush_interval
        self.counts = RunCounts()
        self._clock = clock
        self._last_flush = clock()
        self._kept: dict[Any, dict[str, Any]] = {}  # keep_fields of records whose row is not written yet

    def keep(self, record_id: Any, fields: dict[str, Any]) -> None:
        """Hold a record's keep_fields until its row is written (the request does not carry them)."""
        self._kept[record_id] = fields

    def write(self, row: ResultRow) -> None:
        kept = self._kept.pop(row.id, None)
        if kept is not None:
            row = replace(row, input=kept)
        self.sink.append(row)
        self.counts.add(row)

    def restart_clock(self) -> None:
        """A run starts: the first timed flush is one interval away."""
        self._last_flush = self._clock()

    def seconds_to_flush(self) -> float:
        return self.flush_interval - (self._clock() - self._last_flush)

    def maybe_flush(self) -> None:
        """Rows first, then cache entries, once the interval has passed."""
        if self.seconds_to_flush() > 0:
            return
        self.sink.flush()
        self.reuse.flush()
        self._last_flush = self._clock()

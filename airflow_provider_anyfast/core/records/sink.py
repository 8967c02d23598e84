"""Where a records run writes its rows: the one protocol, and the sink that keeps rows for XCom.

A run opens its sink once (storage takes its lease and says what an earlier run left), appends
rows from one thread, flushes on a timer, finalizes once (the summary) and releases it however
it ends. ``RowStore`` (``store.py``) writes rows to storage; ``MemoryRowSink`` keeps them for XCom.
Both summaries share one shape, ``RunCounts.to_dict()``: rows in XCom mode add ``rows``, storage
adds its manifest's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from airflow_provider_anyfast.core.records.resume import ResumeState
from airflow_provider_anyfast.core.records.rows import ResultRow, RunCounts

#: The most a MemoryRowSink holds by default; the records operator sets its own, smaller ``max_xcom_bytes``.
MEMORY_SINK_MAX_BYTES = 48 * 1024 * 1024


class RowSetTooLargeError(ValueError):
    """The rows would not fit in XCom."""


class RowSink(Protocol):
    """What a records run writes rows to."""

    #: True when the rows outlive the task (storage); False when they live only in the summary (XCom).
    durable: bool

    def open(
        self,
        fingerprint: str,
        *,
        details: Mapping[str, Any] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> ResumeState: ...

    def append(self, row: ResultRow) -> None: ...

    def flush(self) -> None: ...

    def finalize(self, extra: Mapping[str, Any]) -> dict[str, Any]: ...

    def release(self) -> None: ...


def merge_extra(summary: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The summary plus the run's ``extra`` keys, refusing any that would overwrite the summary's own."""
    clash = sorted(set(summary) & set(extra or {}))
    if clash:
        raise ValueError(f"extra keys {clash} would overwrite the summary's own keys")
    return {**summary, **(extra or {})}


class MemoryRowSink:
    """Rows kept as dicts, returned whole for XCom; refuses to grow past what XCom can hold."""

    durable = False

    def __init__(self, max_bytes: int = MEMORY_SINK_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.rows: list[dict[str, Any]] = []
        self.counts = RunCounts()
        self._size = 2  # the list's brackets; each row's newline stands in for its comma

    def open(
        self,
        fingerprint: str,
        *,
        details: Mapping[str, Any] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> ResumeState:
        """Nothing to resume from: XCom starts empty every run."""
        return ResumeState(generation=1)

    def append(self, row: ResultRow) -> None:
        size = self._size + len(row.to_json_line())
        if size > self.max_bytes:
            raise RowSetTooLargeError(
                f"The result set is too large for XCom: {len(self.rows) + 1} rows come to more than "
                f"{self.max_bytes} bytes of JSON. Set output_path on the operator to write the rows "
                "to storage (for example s3://bucket/prefix) and get a small summary in XCom instead."
            )
        self._size = size
        self.rows.append(row.to_dict())
        self.counts.add(row)

    def flush(self) -> None:
        """Nothing to do: rows are already where they will be returned from."""

    def finalize(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The rows plus their totals (and the run's ``extra``)."""
        return merge_extra({"rows": self.rows, **self.counts.to_dict()}, extra)

    def release(self) -> None:
        """Nothing held."""

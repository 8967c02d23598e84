"""A content-addressed cache of successful answers, on any object storage.

Keyed on the hash of the rendered request, so tomorrow's run (or another DAG) pays only
for records whose request changed. Append-only and safe with concurrent writers: each
writer writes its own immutable segment files (object stores cannot append, and no
writer ever rewrites another's file), so no entry is lost and a reader never sees a
half-written entry as valid (a damaged line is skipped). Reading streams the segments
and keeps only the keys the run asks for, so the cache is never loaded whole.

Expiry: ``max_age`` ignores older entries on read; ``expire_segments`` deletes segment
files written before a cut-off. ``refresh=True`` bypasses reads (answers are still written).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from airflow_provider_anyfast.core.records.rows import ResultRow, success_row
from airflow_provider_anyfast.exceptions import AnyFastConfigError

log = logging.getLogger("airflow_provider_anyfast.cache")

SEGMENTS_DIR = "segments"
_STAMP = "%Y%m%dT%H%M%S"
#: Segments' worth of entries a failing cache keeps for its next flush; also the size of merged segments.
_KEEP_SEGMENTS = 10


def _segment_time(name: str) -> float | None:
    """When a segment was written, from its name (``<stamp>-<writer>-<seq>.jsonl``)."""
    try:
        return datetime.strptime(name.split("-", 1)[0], _STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _segments(root: Any) -> list[Any]:
    directory = root / SEGMENTS_DIR
    invalidate = getattr(getattr(directory, "fs", None), "invalidate_cache", None)
    if invalidate is not None:  # another writer (maybe a thread of this process) may have added or merged segments
        invalidate(directory.path)
    try:
        if not directory.exists():
            return []
        return sorted((p for p in directory.iterdir() if p.name.endswith(".jsonl")), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError):  # emptied between the two looks: no segment to read
        return []


class ResultCache:
    """Answers from earlier runs by request key, and a writer for this run's new answers."""

    def __init__(
        self,
        root: Any,
        *,
        max_age: float | None = None,
        refresh: bool = False,
        segment_rows: int = 1000,
        clock: Any = time.time,
    ) -> None:
        self.root = root
        self.max_age = max_age
        self.refresh = refresh
        self.segment_rows = segment_rows
        self.clock = clock
        self.hits = 0
        self.tokens_saved = 0
        self.damaged_lines = 0
        self.rejected = 0
        self.write_failures = 0
        self._written: list[Any] = []
        self._found: dict[str, dict[str, Any]] = {}
        self._buffer: list[bytes] = []
        self._writer = uuid.uuid4().hex[:12]
        self._seq = 0

    def check_writable(self) -> None:
        """Write and remove a probe file now, before anything is paid for: a cache that cannot be
        written would make every retry pay for every answer again."""
        directory = self.root / SEGMENTS_DIR
        probe = directory / f"_probe-{self._writer}.tmp"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with probe.open("wb") as handle:
                handle.write(b"")
            probe.unlink()
        except Exception as exc:
            raise CacheNotWritableError(
                f"cache_path={self.root} cannot be written ({type(exc).__name__}: {exc}), so answers could not be "
                "kept for a retry or a rerun. Nothing was sent. Fix the path or its permissions, or unset "
                "cache_path (and the [anyfast] cache_path setting) to run without a cache."
            ) from None

    def load(self, keys: Iterable[str]) -> int:
        """Stream every segment, keeping the newest live entry of each wanted key; return how many.

        A segment that cannot be read, or a damaged line, is skipped (its answers are paid again),
        with one warning for the whole load.
        """
        if self.refresh:
            return 0
        wanted = set(keys)
        oldest = self.clock() - self.max_age if self.max_age else None
        unreadable: list[str] = []
        for segment in _segments(self.root):
            try:
                with segment.open("rb") as handle:
                    for line in iter(handle.readline, b""):  # Airflow 2.11's file wrapper has no __iter__
                        self._consider(line, wanted, oldest)
            except FileNotFoundError:
                continue  # merged into a bigger segment by its writer since the listing
            except Exception as exc:
                unreadable.append(f"{segment.name} ({type(exc).__name__})")
        if unreadable or self.damaged_lines:
            missing = len(wanted) - len(self._found)
            log.warning(
                "Cache %s: skipped %d unreadable segment file(s)%s and %d damaged line(s); their answers are not "
                "reused. %d of this run's %d distinct requests have no usable cached answer and will be paid "
                "(at most that many again).",
                self.root, len(unreadable), f" ({', '.join(unreadable[:3])})" if unreadable else "",
                self.damaged_lines, missing, len(wanted),
            )  # fmt: skip
        return len(self._found)

    def _consider(self, line: bytes, wanted: set[str], oldest: float | None) -> None:
        try:
            entry = json.loads(line)
            key, created = entry["key"], float(entry["created_at"])
        except (ValueError, KeyError, TypeError):
            self.damaged_lines += 1
            return
        if key not in wanted or (oldest is not None and created < oldest):
            return
        known = self._found.get(key)
        if known is None or created >= float(known["created_at"]):
            self._found[key] = entry

    def get(self, key: str, accept: Callable[[Any], bool] | None = None) -> dict[str, Any] | None:
        """The cached entry for a request key, counted as a hit; one ``accept`` refuses is a miss."""
        entry = self._found.get(key)
        if entry is not None and accept is not None and not accept(entry.get("output")):
            self.rejected += 1
            del self._found[key]
            return None
        if entry is not None:
            self.hits += 1
            self.tokens_saved += int((entry.get("usage") or {}).get("total_tokens") or 0)
        return entry

    def put(self, key: str, row: ResultRow) -> None:
        """Remember a successful answer (buffered; written as a segment every ``segment_rows``)."""
        if not row.ok or row.cached or row.shared:
            return
        entry = {"key": key, "created_at": self.clock(), "model": row.model, "output": row.output,
                 "finish_reason": row.finish_reason, "usage": row.usage}  # fmt: skip
        self._buffer.append(json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        if len(self._buffer) >= self.segment_rows:
            self.flush()

    def flush(self) -> None:
        """Write buffered entries as a new segment of this writer's own.

        Never raises: a cache that cannot be written must not stop the run or keep its rows from
        storage. Entries are kept for the next flush (up to ``_KEEP_SEGMENTS`` segments' worth).
        """
        if not self._buffer:
            return
        try:
            self._write_segment(self._buffer)
        except Exception as exc:
            self.write_failures += 1
            dropped = max(0, len(self._buffer) - _KEEP_SEGMENTS * self.segment_rows)
            del self._buffer[:dropped]
            if self.write_failures > 1 and not dropped:
                return  # said once already; said again only when answers are dropped for good
            log.warning(
                "Could not write to cache %s (%s: %s): the rows are safe, but %d answer(s) are not cached yet%s",
                self.root, type(exc).__name__, exc, len(self._buffer) + dropped,
                f" and {dropped} never will be (a later run pays for them again)" if dropped else "",
            )  # fmt: skip
            return
        self._buffer.clear()

    def close(self) -> None:
        """Flush, then merge this writer's small segments into few (a long run flushes every few seconds)."""
        self.flush()
        if len(self._written) < 2 or self._buffer:
            return
        try:
            self._compact()
        except Exception as exc:  # the small segments are still there and valid
            log.warning("Could not merge the cache segments of this run under %s: %s", self.root, exc)

    def _compact(self) -> None:
        """New segments first, then delete the small ones: a reader never misses an entry for good."""
        small = list(self._written)
        batch: list[bytes] = []
        for segment in small:
            with segment.open("rb") as handle:
                batch.extend(iter(handle.readline, b""))
            if len(batch) >= _KEEP_SEGMENTS * self.segment_rows:
                self._write_segment(batch)
                batch = []
        if batch:
            self._write_segment(batch)
        for segment in small:
            segment.unlink()
            self._written.remove(segment)

    def _write_segment(self, lines: list[bytes]) -> None:
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime(_STAMP)
        directory = self.root / SEGMENTS_DIR
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{stamp}-{self._writer}-{self._seq:05d}.jsonl"
        with path.open("wb") as handle:
            handle.write(b"".join(lines))
        self._seq += 1
        self._written.append(path)

    def stats(self) -> dict[str, int]:
        return {"cache_hits": self.hits, "cache_tokens_saved": self.tokens_saved}


class CacheNotWritableError(AnyFastConfigError):
    """``cache_path`` cannot be written: refused before any request is paid for."""


def cached_row(record_id: str | int, entry: dict[str, Any]) -> ResultRow:
    """A success row answered from the cache: same answer, nothing paid this run."""
    return success_row(
        record_id, entry.get("output"), model=entry.get("model"), finish_reason=entry.get("finish_reason"),
        usage=None, attempts=0, cached=True,
    )  # fmt: skip


def expire_segments(root: Any, older_than_seconds: float, now: float | None = None) -> int:
    """Delete segment files written more than ``older_than_seconds`` ago; return how many.

    Safe beside running writers: segments are immutable and a writer only adds new ones.
    """
    cutoff = (time.time() if now is None else now) - older_than_seconds
    removed = 0
    for segment in _segments(root):
        written = _segment_time(segment.name)
        if written is not None and written < cutoff:
            segment.unlink()
            removed += 1
    log.info("expired %d cache segment(s) older than %.0fs under %s", removed, older_than_seconds, root)
    return removed

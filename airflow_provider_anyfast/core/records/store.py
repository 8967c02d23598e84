"""Result rows as JSON Lines parts on any pathlib-like storage (the ``RowSink`` for ``output_path``).

``RowStore`` is built for object stores, which cannot append or rename: every part is written
whole in one ``open("wb")``, ``_run.json`` pins the input's fingerprint before any part
exists, and ``finalize`` rewrites (new file first, then delete) whatever earlier generations
left that no longer stands, so a finished folder holds each record exactly once and a crash
at any point leaves something the next ``open`` can resume from.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_anyfast.core.records.lease import DEFAULT_TTL, Lease, LeaseHeldError, LeaseLostError
from airflow_provider_anyfast.core.records.resume import (
    RUN_FILE,
    PartIndex,
    ResumeState,
    ResumeStateError,
    mismatch_message,
    parse_part_name,
    parse_row_line,
    parse_run_file,
    part_name,
    run_file_bytes,
)
from airflow_provider_anyfast.core.records.rows import ResultRow, RunCounts
from airflow_provider_anyfast.core.records.sink import merge_extra

MANIFEST_FILE = "manifest.json"
ROWS_DIR = "rows"
_MANIFEST_KEYS = ("files", "records", "requests", "failed", "counts", "usage", "generation", "fingerprint",
                  "resumed_rows", "damaged_lines")  # fmt: skip


class FingerprintMismatchError(ValueError):
    """The output folder holds rows of a different input or prompt."""


class RowStorageError(RuntimeError):
    """Reading or writing the row folder failed; buffered rows are kept for a retry."""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class RowStore:
    """Result rows as JSON Lines parts under ``root/rows/``, resumable across runs."""

    durable = True

    def __init__(
        self,
        root: Any,
        *,
        chunk_rows: int = 1000,
        holder: Mapping[str, Any] | None = None,
        lease_ttl: float = DEFAULT_TTL,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.root = root
        self.chunk_rows = chunk_rows
        self.lease = Lease(root, holder, ttl=lease_ttl)
        self._part_rows: dict[str, int] = {}
        self.counts = RunCounts()  # rows appended by this run
        self._rows_dir = root / ROWS_DIR
        self._lock = threading.RLock()
        self._buffer: list[ResultRow] = []
        self._index = PartIndex()
        self._superseded: set[str | int] = set()
        self._files: list[str] = []  # parts written by this run
        self._fingerprint = ""
        self._generation = 0
        self._seq = 0
        self._state = "new"

    @property
    def pending(self) -> int:
        """Rows appended but not yet in a part file."""
        return len(self._buffer)

    def open(
        self,
        fingerprint: str,
        *,
        details: Mapping[str, Any] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> ResumeState:
        """Take the folder's lease, check the folder belongs to this input, index it, start a new generation.

        ``on_lost`` is called (from the heartbeat thread) if another run takes the lease over.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError("RowStore.open() can only be called once")
            self._guard(str(self.root), "create", lambda: self.root.mkdir(parents=True, exist_ok=True))
            self._guard(str(self.root), "take the lease on", self.lease.acquire)
            self.lease.start_heartbeat(on_lost or (lambda message: None))
            try:
                return self._open(fingerprint, details)
            except BaseException:
                self.release()
                raise

    def _open(self, fingerprint: str, details: Mapping[str, Any] | None) -> ResumeState:
        with self._lock:
            warnings: list[str] = []
            stored = self._read_run_file()
            if stored is not None and stored["fingerprint"] != fingerprint:
                raise FingerprintMismatchError(mismatch_message(self.root, stored, fingerprint, details))
            self._index = index = self._guard(str(self._rows_dir), "read", lambda: PartIndex.scan(self._rows_dir))
            if stored is None and index.parts:
                warnings.append(
                    f"{self.root} has row files but no {RUN_FILE}: cannot check they come from the "
                    "same input and prompt; resuming from them anyway"
                )
            warnings.extend(index.warnings)
            self._generation = max(int(stored["generation"]) if stored else 0, index.max_generation) + 1
            self._fingerprint = fingerprint
            self._write(self.root / RUN_FILE, [run_file_bytes(fingerprint, self._generation, dict(details or {}))])
            manifest = self.root / MANIFEST_FILE
            self._guard(str(manifest), "remove", lambda: manifest.exists() and manifest.unlink())
            self._state = "open"
            return ResumeState(
                generation=self._generation,
                done_ids=set(index.done_ids),
                failed_ids=index.failed_ids,
                previous_rows=index.rows,
                damaged_lines=index.damaged,
                warnings=warnings,
                is_resume=stored is not None or bool(index.parts),
            )

    def append(self, row: ResultRow) -> None:
        """Buffer a row; a full buffer becomes a part file."""
        with self._lock:
            self._require_open()
            self._buffer.append(row)
            self.counts.add(row)
            if row.id in self._index:
                self._superseded.add(row.id)
            if len(self._buffer) >= self.chunk_rows:
                self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one part now; on failure they stay buffered."""
        with self._lock:
            self._require_open()
            if not self._buffer:
                return
            if self.lease.lost is not None:
                raise LeaseLostError(self.lease.lost)
            name = part_name(self._generation, self._seq)
            self._guard(str(self._rows_dir), "create", lambda: self._rows_dir.mkdir(parents=True, exist_ok=True))
            self._write(self._rows_dir / name, [row.to_json_line() for row in self._buffer])
            self._files.append(name)
            self._part_rows[name] = len(self._buffer)
            self._seq += 1
            self._buffer.clear()

    def finalize(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """Flush, leave exactly one row per record in few parts, write and return the manifest, release the lease."""
        with self._lock:
            merge_extra(dict.fromkeys(_MANIFEST_KEYS), extra)  # refuse a clash before touching files
            self.flush()
            self._guard(str(self.root), "check the lease on", self.lease.verify)
            whole, rewrite = self._index.compaction(self._superseded, merge_below=self.chunk_rows)
            carried = RunCounts()
            small = [name for name in self._files if self._part_rows[name] < self.chunk_rows]
            files = [name for name in self._files if name not in small]
            for i in whole:
                carried.merge(self._index.parts[i].counts)
                files.append(self._index.parts[i].name)
            files.extend(self._merge(rewrite, small, carried))
            total = RunCounts()
            total.merge(carried)
            total.merge(self.counts)
            files.sort(key=lambda name: parse_part_name(name) or (0, 0))
            manifest = {
                "files": [f"{ROWS_DIR}/{name}" for name in files],
                **total.to_dict(),
                "generation": self._generation,
                "fingerprint": self._fingerprint,
                "resumed_rows": carried.records,
                "damaged_lines": self._index.damaged,
            }
            manifest = merge_extra(manifest, extra)
            self._write(self.root / MANIFEST_FILE, [_dumps(manifest)])
            self._state = "finalized"
            self.release()
            return manifest

    def release(self) -> None:
        """Give up the folder's lease (a run that ends, however it ends)."""
        with contextlib.suppress(Exception):
            self.lease.release()

    def _merge(self, rewrite: dict[int, set[int]], own: list[str], carried: RunCounts) -> list[str]:
        """Copy the standing lines of old parts to rewrite, and this run's small parts (the timed flushes),
        into as few parts as they fill (``chunk_rows`` rows each): a long run leaves few files, not thousands.

        New files first, then delete: a crash in between leaves duplicates, which ``open`` resolves.
        """
        sources: list[tuple[Any, set[int] | None]] = [(self._index.parts[i].path, keep) for i, keep in
                                                      sorted(rewrite.items())]  # fmt: skip
        sources += [(self._rows_dir / name, None) for name in own]
        if not rewrite and len(own) <= 1:
            return own
        lines = itertools.chain.from_iterable(self._kept_lines(path, keep, carried) for path, keep in sources)
        written = []
        while (first := next(lines, None)) is not None:
            name = part_name(self._generation, self._seq)
            self._seq += 1
            self._write(self._rows_dir / name, itertools.chain([first], itertools.islice(lines, self.chunk_rows - 1)))
            written.append(name)
        for path, _ in sources:
            self._guard(str(path), "remove", path.unlink)
        return written

    def _kept_lines(self, path: Any, keep: set[int] | None, carried: RunCounts) -> Iterable[bytes]:
        """Every line of one of this run's parts (``keep`` None), or an old part's standing lines, counted."""
        with path.open("rb") as stream:
            # readline, not iteration: Airflow 2.11 wraps storage files in an object without __iter__
            for line_no, line in enumerate(iter(stream.readline, b""), start=1):
                if keep is None:
                    if line.strip():
                        yield line
                elif line_no in keep:
                    row = parse_row_line(line)
                    assert isinstance(row, dict), "an indexed line is a readable row"
                    carried.add_values(row["status"], int(row.get("attempts") or 0), row.get("usage"))
                    yield line

    def _read_run_file(self) -> dict[str, Any] | None:
        path = self.root / RUN_FILE

        def read() -> bytes | None:
            if not path.exists():
                return None
            with path.open("rb") as stream:
                data: bytes = stream.read()
                return data

        data = self._guard(str(path), "read", read)
        return None if data is None else parse_run_file(data, path)

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"RowStore is {self._state}: rows can only be added between open() and finalize()")

    def _write(self, path: Any, chunks: Iterable[bytes]) -> None:
        def write() -> None:
            with path.open("wb") as stream:
                for chunk in chunks:
                    stream.write(chunk)

        self._guard(str(path), "write", write)

    @staticmethod
    def _guard(target: str, action: str, fn: Any) -> Any:
        try:
            return fn()
        except (RowStorageError, LeaseHeldError, LeaseLostError, ResumeStateError):
            raise
        except Exception as exc:  # any backend's failure: OSError, botocore, aiohttp...
            raise RowStorageError(f"could not {action} {target}: {type(exc).__name__}: {exc}") from exc

"""Resume state: the run file, what earlier runs left under ``rows/``, and which row stands for each id.

This module owns what a rerun reads to know where it is: ``_run.json`` (versioned; a file
that cannot be read is an error, never a silent fresh start, since starting over would pay
again for every answer kept) and the part index. The lease on the folder is ``lease.py``.

A run can die anywhere: between two parts, in the middle of writing one, or halfway through
``finalize``. Everything it leaves is readable here: the first success row of an id wins, else
its newest failure row; a line cut off by a crash is counted and skipped (its record is redone).
The index keeps one small integer per id, not the rows, so resuming a million-record output
stays cheap; ``compaction`` then tells the store which old parts must be rewritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_anyfast.core.records.rows import RowStatus, RunCounts

RUN_FILE = "_run.json"
RUN_FILE_VERSION = 1
PART_PATTERN = re.compile(r"part-(\d{4,})-(\d{5,})\.jsonl")
_STATUSES = frozenset(s.value for s in RowStatus)
_LINE_BITS = 32
_LINE_MASK = (1 << _LINE_BITS) - 1


def part_name(generation: int, seq: int) -> str:
    """File name of a row part; names sort in write order."""
    return f"part-{generation:04d}-{seq:05d}.jsonl"


def parse_part_name(name: str) -> tuple[int, int] | None:
    """(generation, seq) of a part file name, or None for any other file."""
    match = PART_PATTERN.fullmatch(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


class ResumeStateError(RuntimeError):
    """The resume state exists but cannot be read: refusing to start over and pay again."""


def run_file_bytes(fingerprint: str, generation: int, details: Any) -> bytes:
    """``_run.json``: the input's fingerprint, the generation writing now, and what the fingerprint covers."""
    run = {"version": RUN_FILE_VERSION, "fingerprint": fingerprint, "generation": generation, "details": details}
    return json.dumps(run, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_run_file(data: bytes, where: Any) -> dict[str, Any]:
    """The run file's content; ``ResumeStateError`` when it is damaged or from a newer provider."""
    fix = (
        f"The rows next to it are intact. If you are sure they belong to this task's input and prompt, delete {where} "
        "and rerun: the rows are kept and only records without a success row are sent again."
    )
    try:
        run = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ResumeStateError(f"{where} cannot be read (not JSON: cut off, or overwritten?). {fix}") from None
    if not isinstance(run, dict) or not isinstance(run.get("fingerprint"), str):
        raise ResumeStateError(f"{where} is not a run file of this provider (no fingerprint). {fix}")
    version = run.get("version", 1)
    if not isinstance(version, int) or version > RUN_FILE_VERSION:
        raise ResumeStateError(
            f"{where} was written by a newer airflow-provider-anyfast (run file version {version}, this one reads "
            f"up to {RUN_FILE_VERSION}): upgrade the provider on this worker, or use another output_path."
        )
    try:
        run["generation"] = int(run.get("generation") or 0)
    except (TypeError, ValueError):
        raise ResumeStateError(f"{where} has no valid generation number. {fix}") from None
    return run


def mismatch_message(root: Any, stored: dict[str, Any], fingerprint: str, details: Any) -> str:
    """Why the folder's rows cannot be resumed by this run: the input or prompt changed."""
    old, new = stored.get("details") or {}, details or {}
    changed = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    what = f"; changed: {', '.join(changed)}" if changed and old and new else ""
    return (
        f"{root} holds result rows of a different run: the input or prompt changed since the "
        f"rows there were written (fingerprint there {stored['fingerprint'][:12]}, this run "
        f"{fingerprint[:12]}{what}). Use a new output_path, or delete {root} to start over."
    )


@dataclass(frozen=True)
class ResumeState:
    """What ``RowStore.open`` found: the engine skips ``done_ids`` and logs ``warnings``."""

    generation: int
    done_ids: set[str | int] = field(default_factory=set)
    failed_ids: set[str | int] = field(default_factory=set)
    previous_rows: int = 0
    damaged_lines: int = 0
    warnings: list[str] = field(default_factory=list)
    is_resume: bool = False


@dataclass(slots=True)
class OldPart:
    """One part file of an earlier generation, with the totals of its readable rows."""

    path: Any
    name: str
    generation: int
    seq: int
    rows: int = 0
    damaged: int = 0
    counts: RunCounts = field(default_factory=RunCounts)


def parse_row_line(line: bytes) -> dict[str, Any] | str:
    """The row on a part line, or why the line is unusable."""
    if not line.endswith(b"\n"):
        return "cut off"
    try:
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not valid JSON"
    if not isinstance(row, dict):
        return "not a result row"
    row_id = row.get("id")
    if isinstance(row_id, bool) or not isinstance(row_id, str | int) or row.get("status") not in _STATUSES:
        return "not a result row"
    return row


class PartIndex:
    """Old parts in name order, and for each id the location of the row that stands for it."""

    def __init__(self) -> None:
        self.parts: list[OldPart] = []
        self.done_ids: set[str | int] = set()
        self.warnings: list[str] = []
        self._kept: dict[str | int, int] = {}  # id -> part index << 32 | line number

    @classmethod
    def scan(cls, rows_dir: Any) -> PartIndex:
        """Read every part under ``rows_dir`` (which may not exist yet)."""
        index = cls()
        if not rows_dir.exists():
            return index
        found: list[tuple[tuple[int, int], Any]] = []
        for child in rows_dir.iterdir():
            numbers = parse_part_name(child.name)
            if numbers is not None:
                found.append((numbers, child))
        for (generation, seq), path in sorted(found, key=lambda f: f[0]):
            index._read_part(OldPart(path=path, name=path.name, generation=generation, seq=seq))
        return index

    @property
    def failed_ids(self) -> set[str | int]:
        """Ids that have rows, none of them a success."""
        return {row_id for row_id in self._kept if row_id not in self.done_ids}

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)

    @property
    def damaged(self) -> int:
        return sum(part.damaged for part in self.parts)

    @property
    def max_generation(self) -> int:
        return max((part.generation for part in self.parts), default=0)

    def __contains__(self, row_id: object) -> bool:
        return row_id in self._kept

    def compaction(self, superseded: set[str | int], merge_below: int = 0) -> tuple[list[int], dict[int, set[int]]]:
        """Split old parts into those kept whole and those to rewrite, with the lines to keep.

        A row stays if it stands for its id and this run wrote no newer row for that id. A part
        is kept whole only if every readable line in it stays, none is damaged, and it holds at
        least ``merge_below`` rows (smaller ones are merged into bigger parts).
        """
        staying = [0] * len(self.parts)
        for row_id, location in self._kept.items():
            if row_id not in superseded:
                staying[location >> _LINE_BITS] += 1
        rewrite: dict[int, set[int]] = {
            i: set()
            for i, part in enumerate(self.parts)
            if part.damaged or part.rows == 0 or staying[i] != part.rows or part.rows < merge_below
        }
        for row_id, location in self._kept.items():
            part_index = location >> _LINE_BITS
            if part_index in rewrite and row_id not in superseded:
                rewrite[part_index].add(location & _LINE_MASK)
        whole = [i for i in range(len(self.parts)) if i not in rewrite]
        return whole, rewrite

    def _read_part(self, part: OldPart) -> None:
        part_index = len(self.parts)
        self.parts.append(part)
        problems: list[str] = []
        with part.path.open("rb") as stream:
            # readline, not iteration: Airflow 2.11 wraps storage files in an object without __iter__
            for line_no, line in enumerate(iter(stream.readline, b""), start=1):
                if not line.strip():
                    continue
                row = parse_row_line(line)
                if isinstance(row, str):
                    part.damaged += 1
                    problems.append(f"line {line_no} ({row})")
                    continue
                part.rows += 1
                part.counts.add_values(row["status"], int(row.get("attempts") or 0), row.get("usage"))
                self._index(row["id"], part_index, line_no, row["status"] == RowStatus.SUCCESS.value)
        if problems:
            shown = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
            self.warnings.append(
                f"{part.path}: skipped {len(problems)} damaged line(s), likely from a crash while "
                f"writing: {shown}; their records will be processed again"
            )

    def _index(self, row_id: str | int, part_index: int, line_no: int, success: bool) -> None:
        if row_id in self.done_ids:
            return  # the first success row stands; any later row for this id is a duplicate
        self._kept[row_id] = (part_index << _LINE_BITS) | line_no
        if success:
            self.done_ids.add(row_id)

"""Records in: from a list, or streamed from JSON Lines files on any pathlib-like storage.

A million-record input must neither sit in memory nor stop at its first bad line, so files
are read line by line in binary and each line is decoded on its own: a bad line becomes one
``SourceItem`` with a ``problem`` (and later one error row), never an exception.
"""

from __future__ import annotations

import gzip
import json
import logging
import posixpath
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

RECORD_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonlines")
_GZIP_SUFFIX = ".gz"
log = logging.getLogger("airflow_provider_anyfast.records")


class EmptyInputError(ValueError):
    """The input holds no record at all: a wrong path or an upstream that wrote nothing."""


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One input record, or the reason its line is unusable."""

    position: int
    value: Any
    problem: str | None = None
    origin: str | None = None


class RecordId(NamedTuple):
    """A record's id, or why it has none (then ``id`` is None)."""

    id: str | int | None
    problem: str | None


def iter_source(records: Any) -> Iterator[SourceItem]:
    """Yield the input's records in order, numbered from 0 across all files.

    ``records`` is a list/tuple of records, or a pathlib-like path (``pathlib.Path``, a
    ``UPath``, Airflow's ``ObjectStoragePath``) to one JSON Lines file or a folder of them.
    """
    if isinstance(records, list | tuple):
        for position, value in enumerate(records):
            yield SourceItem(position=position, value=value)
        return
    if not _is_pathlike(records):
        hint = " (turn a URI into a path first)" if isinstance(records, str) else ""
        raise TypeError(
            "records must be a list or tuple of records, or a pathlib-like path (pathlib.Path, "
            "UPath, ObjectStoragePath) to a JSON Lines file or folder; "
            f"got {type(records).__name__}{hint}"
        )
    yield from iter_files(input_files(records, warn=False))


def input_files(root: Any, *, warn: bool = True) -> list[Any]:
    """The JSON Lines files of a path, in name order; logs (once) what a folder holds besides.

    Read whatever its case or name: ``.JSONL``, ``.ndjson``, ``.json``, Hadoop/Spark
    ``part-00000`` files, each optionally ``.gz``. Names starting with ``_`` or ``.``
    (``_SUCCESS``, ``.crc`` files) are markers and skipped quietly.
    """
    if not root.exists():
        raise FileNotFoundError(f"records path {root} does not exist")
    skipped: list[str] = []
    files = list(_record_files(root, skipped))
    if warn and skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        log.warning(
            "records %s: skipped %d file(s) that are not JSON Lines by their name: %s. Records are read from "
            "*.jsonl, *.ndjson, *.json and suffix-less part files (any case, optionally .gz).",
            root, len(skipped), shown,
        )  # fmt: skip
    if not files:
        what = f"no JSON Lines file in folder {root}" if root.is_dir() else f"{root} is not a file"
        raise EmptyInputError(f"records: {what}" + (f" (it holds {', '.join(skipped[:5])})" if skipped else ""))
    return files


def iter_files(files: list[Any]) -> Iterator[SourceItem]:
    """The records of ``files`` in order, numbered from 0 across them."""
    position = 0
    for path in files:
        for item in _iter_file(path, position):
            yield item
            position = item.position + 1


def record_id(item: SourceItem, id_field: str | None) -> RecordId:
    """The id a record's row will carry: its position, or the value of ``id_field``.

    Ids must be strings or integers (booleans refused) so they round-trip through JSON
    unchanged and can be matched on resume.
    """
    if id_field is None:
        return RecordId(item.position, None)
    where = f"record at position {item.position}"
    if item.origin is not None:
        where += f" ({item.origin})"
    value = item.value
    if not isinstance(value, Mapping):
        kind = "null" if value is None else type(value).__name__
        return RecordId(None, f"{where} is {kind}, not a JSON object, so it has no field {id_field!r}")
    if id_field not in value:
        return RecordId(None, f"{where} has no field {id_field!r}")
    found = value[id_field]
    if isinstance(found, bool) or not isinstance(found, str | int):
        kind = "null" if found is None else type(found).__name__
        problem = f"{where} has field {id_field!r} of type {kind}; ids must be strings or integers"
        return RecordId(None, problem)
    return RecordId(found, None)


def _is_pathlike(obj: Any) -> bool:
    return not isinstance(obj, str | bytes) and all(
        hasattr(obj, name) for name in ("open", "exists", "is_dir", "iterdir", "joinpath")
    )


def _is_record_file(name: str) -> bool:
    """JSON Lines by name, whatever the case: a record suffix, or none at all (``part-00000``)."""
    name = name.lower().removesuffix(_GZIP_SUFFIX)
    return name.endswith(RECORD_SUFFIXES) or not posixpath.splitext(name)[1]


def _is_json_array_name(name: str) -> bool:
    return name.lower().removesuffix(_GZIP_SUFFIX).endswith(".json")


def _record_files(root: Any, skipped: list[str]) -> Iterator[Any]:
    """Files to read, in name order, descending into sub-folders where they sort."""
    if not root.is_dir():
        yield root
        return
    root_str = str(root).rstrip("/")
    children = [c for c in root.iterdir() if c.name and str(c).rstrip("/") != root_str]
    for child in sorted(children, key=lambda c: c.name):
        if child.name.startswith(("_", ".")):
            continue
        if child.is_dir():
            yield from _record_files(child, skipped)
        elif _is_record_file(child.name):
            yield child
        else:
            skipped.append(child.name)


def _opened(path: Any, raw: Any) -> Any:
    return gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(_GZIP_SUFFIX) else raw


def _starts_with_array(path: Any) -> bool:
    """True when a ``.json`` file holds one JSON array (read whole) rather than JSON Lines."""
    try:
        with path.open("rb") as raw:
            head = _opened(path, raw).read(256).lstrip(b"\xef\xbb\xbf \t\r\n")
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return False  # the line reader reports the broken file as a record problem
    return bool(head.startswith(b"["))


def _iter_array(path: Any, first_position: int) -> Iterator[SourceItem]:
    """A ``.json`` file holding one array: each element is a record (the file is loaded whole)."""
    with path.open("rb") as raw:
        data = _opened(path, raw).read()
    try:
        values = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = f"{path} starts like a JSON array but is not valid JSON ({exc}); JSON Lines expected"
        yield SourceItem(first_position, None, problem, str(path))
        return
    for index, value in enumerate(values):
        yield SourceItem(first_position + index, value, None, f"{path}[{index}]")


def _iter_file(path: Any, first_position: int) -> Iterator[SourceItem]:
    if _is_json_array_name(path.name) and _starts_with_array(path):
        yield from _iter_array(path, first_position)
        return
    position, line_no = first_position, 0
    with path.open("rb") as raw:
        stream: Any = _opened(path, raw)
        try:
            # readline, not iteration: Airflow 2.11 wraps storage files in an object without __iter__
            for line_no, line in enumerate(iter(stream.readline, b""), start=1):
                item = _parse_line(line, line_no, path, position)
                if item is not None:
                    yield item
                    position += 1
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            # A truncated or corrupt .gz: one problem record says so, instead of failing the run
            # or silently losing the rest of the file.
            problem = f"{path} is not a readable gzip file after line {line_no}: {exc}"
            yield SourceItem(position, None, problem, f"{path}:{line_no + 1}")


def _parse_line(line: bytes, line_no: int, path: Any, position: int) -> SourceItem | None:
    origin = f"{path}:{line_no}"
    if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]  # a UTF-8 byte order mark, as some editors write
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"line {line_no} of {path} is not valid UTF-8 (byte {exc.start}: {exc.reason})"
        return SourceItem(position, None, problem, origin)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"line {line_no} of {path} is not valid JSON: {exc.msg} (column {exc.colno})"
        return SourceItem(position, None, problem, origin)
    return SourceItem(position, value, None, origin)

"""Records stream from file objects that cannot be iterated, as Airflow 2.11's storage files are."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from airflow_provider_anyfast.core.records.source import iter_source


class NoIterFile:
    """Like Airflow 2.11's TrackingFileWrapper: read/readline pass through, but no ``__iter__``."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __getitem__(self, key: Any) -> Any:
        return self._raw[key]  # what iteration falls back to: fails as the real wrapper does

    def __enter__(self) -> NoIterFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()


class WrappedPath:
    """A pathlib-like path whose ``open`` returns a ``NoIterFile``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.name = path.name

    def open(self, mode: str = "r") -> NoIterFile:
        return NoIterFile(self._path.open(mode))

    def exists(self) -> bool:
        return self._path.exists()

    def is_dir(self) -> bool:
        return False

    def iterdir(self) -> Any:
        return iter(())

    def joinpath(self, *parts: str) -> WrappedPath:
        return WrappedPath(self._path.joinpath(*parts))

    def __str__(self) -> str:
        return str(self._path)


def test_records_stream_from_a_file_object_without_iter(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2}\nnot json\n{"id": 3}')

    items = list(iter_source(WrappedPath(path)))

    assert [item.value for item in items if item.problem is None] == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [item.position for item in items] == [0, 1, 2, 3]
    assert ["line 4" in (item.problem or "") for item in items] == [False, False, True, False]


def test_gzip_records_stream_from_a_file_object_without_iter(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps({"id": i}) + "\n" for i in range(5)).encode()))

    assert [item.value["id"] for item in iter_source(WrappedPath(path))] == [0, 1, 2, 3, 4]

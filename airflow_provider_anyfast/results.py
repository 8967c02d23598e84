"""Read the rows of a finished records run: from what the task returned, or from its folder.

Downstream tasks get the manifest dict (storage output), the rows themselves (XCom
output), or a list of either (a mapped task). ``read_rows`` takes any of these, or the
folder's URI, and yields the rows one by one, streamed from storage, in the order the
manifest lists its files. Load them into pandas or DuckDB from there (see
docs/output-rows.md); neither is a dependency.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_anyfast.core.records.store import MANIFEST_FILE
from airflow_provider_anyfast.storage import storage_path


class OutputNotFinishedError(FileNotFoundError):
    """The folder has no manifest: the run did not finish (or this is not a records output)."""


def read_rows(result: Any, storage_conn_id: str | None = None, *, status: str | None = None) -> Iterator[dict]:
    """Yield every row of a finished records run; only those of ``status`` (e.g. ``"success"``) when given.

    :param result: the task's return value (a manifest dict with ``path``, or the list of rows),
        a list of those (a mapped task), or the output folder's URI / ObjectStoragePath.
    :param storage_conn_id: the connection for the folder (not stored in the manifest's ``path``).
    """
    for row in _rows(result, storage_conn_id):
        if status is None or row.get("status") == status:
            yield row


def _rows(result: Any, conn_id: str | None) -> Iterator[dict]:
    if isinstance(result, Mapping):
        if "path" not in result or "files" not in result:
            raise ValueError(
                "read_rows takes a records task's manifest (a dict with 'path' and 'files'), its rows, or "
                f"its output folder; got a dict with keys {sorted(result)[:8]}"
            )
        yield from _files(storage_path(result["path"], conn_id, field="path"), result["files"])
    elif isinstance(result, list | tuple):
        for item in result:
            if isinstance(item, Mapping) and "status" in item and "id" in item:
                yield dict(item)  # XCom output: the rows themselves
            else:
                yield from _rows(item, conn_id)  # a mapped task: one result per instance
    elif result is not None:
        root = storage_path(result, conn_id, field="path")
        manifest = root / MANIFEST_FILE
        if not manifest.exists():
            raise OutputNotFinishedError(
                f"{root} has no {MANIFEST_FILE}: the run that writes there has not finished (or it is not a "
                "records output folder); rows are only read from a finished run"
            )
        with manifest.open("rb") as handle:
            files = json.loads(handle.read())["files"]
        yield from _files(root, files)


def _files(root: Any, files: list[str]) -> Iterator[dict]:
    for name in files:
        path = root / name
        with path.open("rb") as raw:
            stream: Any = gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw
            # readline, not iteration: Airflow 2.11 wraps storage files in an object without __iter__
            for line in iter(stream.readline, b""):
                if line.strip():
                    yield json.loads(line)

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from airflow_provider_anyfast.core.records.rows import (
    ResultRow,
    RowStatus,
    failure_row,
    success_row,
    usage_dict,
)
from airflow_provider_anyfast.core.records.sink import MemoryRowSink, RowSetTooLargeError
from airflow_provider_anyfast.core.records.store import FingerprintMismatchError, RowStorageError, RowStore

FP = "f" * 64
MANIFEST_KEYS = {
    "files",
    "counts",
    "records",
    "requests",
    "failed",
    "usage",
    "generation",
    "fingerprint",
    "resumed_rows",
    "damaged_lines",
}


def ok(row_id: str | int, attempts: int = 1, tokens: int = 10) -> ResultRow:
    usage = usage_dict(prompt=tokens - 4, completion=4, total=tokens)
    return success_row(row_id, {"id": row_id}, model="m", finish_reason="stop", usage=usage, attempts=attempts)


def bad(row_id: str | int, attempts: int = 3, tokens: int = 0) -> ResultRow:
    return failure_row(
        row_id,
        RowStatus.ERROR,
        error_type="server_error",
        message="503",
        http_status=503,
        usage=usage_dict(total=tokens),
        attempts=attempts,
    )


def part_files(root: Any) -> list[str]:
    rows = root / "rows"
    return sorted(p.name for p in rows.iterdir()) if rows.exists() else []


def read_json(path: Any) -> Any:
    with path.open("rb") as stream:
        return json.loads(stream.read())


def read_rows(root: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in part_files(root):
        with (root / "rows" / name).open("rb") as stream:
            rows.extend(json.loads(line) for line in stream)
    return rows


def line_counts(root: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in part_files(root):
        with (root / "rows" / name).open("rb") as stream:
            counts[name] = sum(1 for _ in stream)
    return counts


def roots(tmp_path: Path) -> list[Any]:
    return [tmp_path / "plain", UPath(f"file://{tmp_path}/upath"), UPath(f"memory://store-{uuid.uuid4().hex}/out")]


# -- memory sink ---------------------------------------------------------------------------------


def test_memory_sink_returns_rows_and_totals() -> None:
    sink = MemoryRowSink()
    sink.append(ok(1, tokens=10))
    sink.append(bad(2, attempts=2))
    sink.flush()
    summary = sink.finalize({"model": "m"})
    assert summary["rows"] == [ok(1, tokens=10).to_dict(), bad(2, attempts=2).to_dict()]
    assert summary["records"] == 2 and summary["requests"] == 3 and summary["failed"] == 1
    assert summary["counts"]["success"] == 1 and summary["usage"]["total_tokens"] == 10
    assert summary["model"] == "m"
    json.dumps(summary)
    with pytest.raises(ValueError, match="overwrite"):
        sink.finalize({"rows": []})


def test_memory_sink_refuses_to_outgrow_xcom() -> None:
    one_row = len(ok(0).to_json_line())
    sink = MemoryRowSink(max_bytes=2 + 3 * one_row)
    for i in range(3):
        sink.append(ok(i))
    with pytest.raises(RowSetTooLargeError, match="too large for XCom") as info:
        sink.append(ok(3))
    assert isinstance(info.value, ValueError)
    assert "output_path" in str(info.value)
    assert len(sink.rows) == 3


# -- writing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pathlib", "upath-file", "memory"])
def test_rows_are_written_in_chunks_with_run_file_and_manifest(tmp_path: Path, kind: str) -> None:
    root = dict(zip(["pathlib", "upath-file", "memory"], roots(tmp_path), strict=True))[kind]
    store = RowStore(root, chunk_rows=3)
    state = store.open(FP, details={"prompt": "p1"})
    assert (state.generation, state.is_resume, state.done_ids, state.previous_rows) == (1, False, set(), 0)
    assert read_json(root / "_run.json") == {
        "version": 1,
        "fingerprint": FP,
        "generation": 1,
        "details": {"prompt": "p1"},
    }
    for i in range(7):
        store.append(ok(i) if i % 2 == 0 else bad(i))
    assert line_counts(root) == {"part-0001-00000.jsonl": 3, "part-0001-00001.jsonl": 3}
    assert store.pending == 1
    assert not (root / "manifest.json").exists()

    manifest = store.finalize({"model": "m", "started_at": "t0"})
    assert line_counts(root) == {"part-0001-00000.jsonl": 3, "part-0001-00001.jsonl": 3, "part-0001-00002.jsonl": 1}
    assert [r["id"] for r in read_rows(root)] == list(range(7))
    assert read_json(root / "manifest.json") == manifest
    assert manifest["files"] == [f"rows/part-0001-0000{i}.jsonl" for i in range(3)]
    assert manifest["counts"] == {"success": 4, "invalid_output": 0, "truncated": 0, "filtered": 0, "error": 3}
    assert (manifest["records"], manifest["requests"]) == (7, 4 * 1 + 3 * 3)
    assert manifest["usage"]["total_tokens"] == 40 and manifest["usage"]["prompt_tokens"] == 24
    assert (manifest["generation"], manifest["fingerprint"], manifest["resumed_rows"]) == (1, FP, 0)
    assert manifest["damaged_lines"] == 0 and manifest["model"] == "m" and manifest["started_at"] == "t0"
    assert set(manifest) == {*MANIFEST_KEYS, "model", "started_at"}
    with pytest.raises(RuntimeError, match="finalized"):
        store.append(ok(99))


def test_finalize_refuses_extra_keys_that_clash_before_writing(tmp_path: Path) -> None:
    store = RowStore(tmp_path / "out")
    store.open(FP)
    store.append(ok(1))
    with pytest.raises(ValueError, match="records"):
        store.finalize({"records": 0})
    assert part_files(tmp_path / "out") == [] and store.pending == 1
    assert store.finalize({})["records"] == 1


def test_flush_writes_a_short_part_and_append_needs_open(tmp_path: Path) -> None:
    store = RowStore(tmp_path / "out", chunk_rows=100)
    with pytest.raises(RuntimeError, match="open"):
        store.append(ok(1))
    store.open(FP)
    store.append(ok(1))
    store.flush()
    store.flush()  # nothing buffered: no empty part
    assert line_counts(tmp_path / "out") == {"part-0001-00000.jsonl": 1}


# -- resume --------------------------------------------------------------------------------------


def crashed_first_run(root: Any) -> None:
    """Ids 0-5: evens succeed, odds fail; parts written but no finalize (the worker died)."""
    store = RowStore(root, chunk_rows=2)
    store.open(FP)
    for i in range(6):
        store.append(ok(i, tokens=10) if i % 2 == 0 else bad(i, attempts=3))
    store.lease.abandon()  # the worker died: no more heartbeat, its lease file stays behind


def test_resume_after_crash_redoes_failures_and_keeps_each_id_once(tmp_path: Path) -> None:
    root = tmp_path / "out"
    crashed_first_run(root)
    store = RowStore(root, chunk_rows=2)
    state = store.open(FP)
    assert state.is_resume and state.generation == 2
    assert state.done_ids == {0, 2, 4} and state.failed_ids == {1, 3, 5}
    assert (state.previous_rows, state.damaged_lines, state.warnings) == (6, 0, [])
    assert read_json(root / "_run.json")["generation"] == 2

    store.append(ok(1, attempts=2, tokens=20))
    store.append(ok(3, attempts=2, tokens=20))
    store.append(bad(5, attempts=7))
    manifest = store.finalize({})

    rows = read_rows(root)
    assert sorted(r["id"] for r in rows) == [0, 1, 2, 3, 4, 5]
    by_id = {r["id"]: r for r in rows}
    assert by_id[1]["status"] == "success" and by_id[1]["attempts"] == 2
    assert by_id[5]["status"] == "error" and by_id[5]["attempts"] == 7  # the newest failure
    assert by_id[0]["attempts"] == 1
    # Every part file is listed, and every listed file exists.
    assert manifest["files"] == [f"rows/{name}" for name in part_files(root)]
    assert all(name.startswith("part-0002-") for name in part_files(root))  # old parts all had a failure
    assert manifest["counts"]["success"] == 5 and manifest["counts"]["error"] == 1
    assert manifest["records"] == 6 and manifest["requests"] == 3 * 1 + 2 * 2 + 7
    assert manifest["usage"]["total_tokens"] == 3 * 10 + 2 * 20
    assert manifest["resumed_rows"] == 3 and manifest["generation"] == 2


def test_resume_keeps_untouched_parts_and_counts_them_without_rewriting(tmp_path: Path) -> None:
    root = tmp_path / "out"
    first = RowStore(root, chunk_rows=2)
    first.open(FP)
    for row in [ok("a", tokens=5), ok("b", tokens=5), ok("c", tokens=5), bad("d", attempts=2, tokens=1)]:
        first.append(row)
    first.finalize({})
    untouched = root / "rows" / "part-0001-00000.jsonl"
    mtime = untouched.stat().st_mtime_ns

    second = RowStore(root, chunk_rows=2)
    state = second.open(FP)
    assert state.done_ids == {"a", "b", "c"} and state.failed_ids == {"d"}
    assert not (root / "manifest.json").exists()  # a stale manifest would describe the old run
    second.append(ok("d", attempts=1, tokens=8))
    manifest = second.finalize({"ended_at": "t1"})

    # the rewritten old part and this run's small part are merged into one part
    assert part_files(root) == ["part-0001-00000.jsonl", "part-0002-00001.jsonl"]
    assert untouched.stat().st_mtime_ns == mtime
    assert sorted(r["id"] for r in read_rows(root)) == ["a", "b", "c", "d"]
    assert manifest["counts"]["success"] == 4 and manifest["counts"]["error"] == 0
    assert manifest["usage"]["total_tokens"] == 23 and manifest["requests"] == 4
    assert manifest["resumed_rows"] == 3 and manifest["ended_at"] == "t1"


def test_cut_off_last_line_is_counted_warned_and_redone(tmp_path: Path) -> None:
    root = tmp_path / "out"
    crashed_first_run(root)
    last = root / "rows" / "part-0001-00002.jsonl"  # ids 4 (success) and 5 (failure)
    data = last.read_bytes()
    last.write_bytes(data[: data.index(b"\n") + 20])  # id 4 whole, id 5 cut mid-line
    middle = root / "rows" / "part-0001-00001.jsonl"  # ids 2 and 3: drop only the final newline
    middle.write_bytes(middle.read_bytes()[:-1])

    store = RowStore(root)
    state = store.open(FP)
    assert state.damaged_lines == 2 and state.previous_rows == 4
    assert state.done_ids == {0, 2, 4} and state.failed_ids == {1}
    assert len(state.warnings) == 2
    assert str(last) in state.warnings[1] and "line 2 (cut off)" in state.warnings[1]
    for i in (1, 3, 5):
        store.append(ok(i))
    manifest = store.finalize({})
    assert manifest["damaged_lines"] == 2 and manifest["records"] == 6
    assert Counter(r["id"] for r in read_rows(root)) == Counter(range(6))

    again = RowStore(root).open(FP)  # the damage was cleaned away
    assert (again.damaged_lines, again.warnings, again.done_ids) == (0, [], set(range(6)))


def test_duplicate_success_rows_across_parts_are_resolved(tmp_path: Path) -> None:
    root = tmp_path / "out"
    first = RowStore(root, chunk_rows=1)
    first.open(FP)
    first.append(ok(7, attempts=1))
    first.append(ok(8))
    first.append(ok(7, attempts=2))  # e.g. left behind by a crash
    first.lease.abandon()
    assert len(part_files(root)) == 3

    second = RowStore(root)
    assert second.open(FP).done_ids == {7, 8}
    manifest = second.finalize({})
    rows = read_rows(root)
    assert sorted(r["id"] for r in rows) == [7, 8]
    assert next(r for r in rows if r["id"] == 7)["attempts"] == 1  # the first success stands
    assert manifest["records"] == 2 and manifest["requests"] == 2 and manifest["resumed_rows"] == 2


def test_crash_between_rewrite_and_delete_leaves_only_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "out"
    crashed_first_run(root)
    saved = {name: (root / "rows" / name).read_bytes() for name in part_files(root)}
    store = RowStore(root, chunk_rows=2)
    store.open(FP)
    store.append(ok(1))
    store.finalize({})
    for name, data in saved.items():  # as if the old parts had not been deleted yet
        (root / "rows" / name).write_bytes(data)

    store = RowStore(root)
    state = store.open(FP)
    assert state.done_ids == {0, 1, 2, 4} and state.failed_ids == {3, 5}
    store.append(ok(3))
    store.append(ok(5))
    manifest = store.finalize({})
    assert Counter(r["id"] for r in read_rows(root)) == Counter(range(6))
    assert all(r["status"] == "success" for r in read_rows(root))
    assert manifest["records"] == 6 and manifest["counts"]["success"] == 6


def test_fingerprint_mismatch_is_refused_and_the_folder_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "out"
    first = RowStore(root)
    first.open("a" * 64, details={"prompt": "p1", "model": "m", "input": "in/"})
    first.append(ok(1))
    first.finalize({})

    other = "b" * 64
    with pytest.raises(FingerprintMismatchError) as info:
        RowStore(root).open(other, details={"prompt": "p2", "model": "m", "input": "in/"})
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(root) in message and "input or prompt changed" in message
    assert "a" * 12 in message and "b" * 12 in message and "a" * 13 not in message
    assert "changed: prompt)" in message
    assert "new output_path" in message and "delete" in message
    assert read_json(root / "_run.json")["fingerprint"] == "a" * 64
    assert (root / "manifest.json").exists()


def test_rows_without_run_file_resume_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "out"
    crashed_first_run(root)
    (root / "_run.json").unlink()
    state = RowStore(root).open(FP)
    assert state.is_resume and state.done_ids == {0, 2, 4} and state.generation == 2
    assert any("_run.json" in w for w in state.warnings)


# -- storage failures ----------------------------------------------------------------------------


def test_write_failure_is_wrapped_and_rows_stay_buffered(tmp_path: Path) -> None:
    root = tmp_path / "out"
    store = RowStore(root, chunk_rows=10)
    store.open(FP)
    for i in range(3):
        store.append(ok(i))
    shutil.rmtree(root / "rows", ignore_errors=True)
    (root / "rows").write_text("a file where the rows folder should be")

    with pytest.raises(RowStorageError) as info:
        store.flush()
    assert str(root / "rows") in str(info.value) and "FileExistsError" in str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert store.pending == 3

    (root / "rows").unlink()
    store.append(ok(3))
    store.flush()
    assert [r["id"] for r in read_rows(root)] == [0, 1, 2, 3]
    assert store.finalize({})["records"] == 4


def test_root_under_a_regular_file_fails_to_open_with_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    root = blocker / "out"
    with pytest.raises(RowStorageError, match=f"could not create {root}"):
        RowStore(root).open(FP)


# -- S3 -------------------------------------------------------------------------------------------


def test_resume_on_s3(s3_root: UPath) -> None:
    crashed_first_run(s3_root)
    assert part_files(s3_root) == [f"part-0001-0000{i}.jsonl" for i in range(3)]

    store = RowStore(s3_root, chunk_rows=2)
    state = store.open(FP, details={"prompt": "p"})
    assert state.done_ids == {0, 2, 4} and state.failed_ids == {1, 3, 5} and state.generation == 2
    for i in (1, 3, 5):
        store.append(ok(i, attempts=2))
    manifest = store.finalize({"model": "m"})

    rows = read_rows(s3_root)
    assert Counter(r["id"] for r in rows) == Counter(range(6))
    assert all(r["status"] == "success" for r in rows)
    assert manifest["files"] == [f"rows/{name}" for name in part_files(s3_root)]
    assert manifest["records"] == 6 and manifest["requests"] == 3 + 6 and manifest["resumed_rows"] == 3
    assert read_json(s3_root / "manifest.json") == manifest
    assert read_json(s3_root / "_run.json") == {
        "version": 1,
        "fingerprint": FP,
        "generation": 2,
        "details": {"prompt": "p"},
    }

    with pytest.raises(FingerprintMismatchError, match=str(s3_root)):
        RowStore(s3_root).open("0" * 64)

"""One writer per output folder (the lease), merged parts, and resume state that is read or refused.

Local folders and moto S3 (its conditional PUT, ``If-None-Match: *``, is what makes the
exclusive create work there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from airflow_provider_anyfast.core.records.lease import LEASE_FILE, Lease, LeaseHeldError, LeaseLostError
from airflow_provider_anyfast.core.records.resume import ResumeStateError
from airflow_provider_anyfast.core.records.rows import ResultRow, success_row
from airflow_provider_anyfast.core.records.store import RowStore

FP = "f" * 64
HOLDER = {"dag_id": "nightly", "run_id": "manual__2026-11-30", "task_id": "classify", "try_number": 1}


def ok(i: int) -> ResultRow:
    return success_row(i, {"n": i}, model="m", finish_reason="stop", usage={"total_tokens": 1}, attempts=1)


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "local":
        return UPath(tmp_path / "out")
    return request.getfixturevalue("s3_root")


def test_a_second_writer_is_refused_with_the_holder_and_the_expiry(root: Any) -> None:
    first = RowStore(root, holder=HOLDER)
    first.open(FP)
    second = RowStore(root, holder={**HOLDER, "run_id": "manual__second", "try_number": 2})
    with pytest.raises(LeaseHeldError) as refused:
        second.open(FP)
    message = str(refused.value)
    assert "dag=nightly run=manual__2026-11-30 task=classify try=1 host=" in message
    assert "lease expires at" in message and "sent nothing" in message
    first.append(ok(1))
    first.finalize({})
    assert not (root / LEASE_FILE).exists(), "a finished run gives the folder back"
    RowStore(root).open(FP)  # and the next run takes it


def test_an_expired_lease_is_taken_over_and_its_old_holder_stops_writing(root: Any) -> None:
    stalled = RowStore(root, holder=HOLDER, lease_ttl=60)
    stalled.open(FP)
    stalled.lease.abandon()  # no heartbeat any more, as if the process were frozen
    later = Lease(root, {"run_id": "later"}, ttl=60, clock=lambda: stalled.lease.clock() + 120)
    later.acquire()
    with pytest.raises(LeaseLostError, match="taken over by run=later"):
        stalled.lease.verify()
    stalled.append(ok(1))
    with pytest.raises(LeaseLostError):
        stalled.flush()
    assert not (root / "rows").exists(), "the old holder wrote nothing after losing its lease"


def test_a_lease_left_by_a_process_that_died_on_this_host_is_taken_over(tmp_path: Path) -> None:
    root = UPath(tmp_path / "out")
    script = (
        "import sys; from upath import UPath; from airflow_provider_anyfast.core.records.lease import Lease; "
        "Lease(UPath(sys.argv[1]), {'run_id': 'dead'}, ttl=3600).acquire()"
    )
    (tmp_path / "out").mkdir()
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")], check=True)  # exits holding it
    left = json.loads((tmp_path / "out" / LEASE_FILE).read_text())
    assert left["holder"]["run_id"] == "dead" and left["expires_at"] > left["heartbeat_at"] + 3000

    store = RowStore(root, holder=HOLDER)
    store.open(FP)  # not refused: its holder is gone although the lease has not expired
    assert json.loads((tmp_path / "out" / LEASE_FILE).read_text())["holder"]["dag_id"] == "nightly"
    store.release()


def test_small_parts_from_timed_flushes_are_merged_at_finalize(root: Any) -> None:
    store = RowStore(root, chunk_rows=10)
    store.open(FP)
    for i in range(25):
        store.append(ok(i))
        if i % 3 == 2:
            store.flush()  # what the 2-second timer does on a slow run: parts of 3 rows
    manifest = store.finalize({})
    names = sorted(p.name for p in (root / "rows").iterdir())
    sizes = [len((root / "rows" / name).read_bytes().splitlines()) for name in names]
    assert sizes == [10, 10, 5], "25 rows in 3 parts of up to chunk_rows, not 9 parts of 3"
    assert manifest["files"] == [f"rows/{name}" for name in names] and manifest["records"] == 25


def test_a_crash_while_merging_leaves_duplicates_that_the_next_run_resolves(tmp_path: Path) -> None:
    root = UPath(tmp_path / "out")
    store = RowStore(root, chunk_rows=10)
    store.open(FP)
    for i in range(12):
        store.append(ok(i))
        if i % 4 == 3:
            store.flush()
    small = {p.name: p.read_bytes() for p in (tmp_path / "out" / "rows").iterdir()}
    store.finalize({})
    for name, data in small.items():  # as if the run died after writing the merged parts, before deleting
        (tmp_path / "out" / "rows" / name).write_bytes(data)
    (tmp_path / "out" / "manifest.json").unlink()

    again = RowStore(root, chunk_rows=10)
    assert again.open(FP).done_ids == set(range(12))
    manifest = again.finalize({})
    ids = Counter(
        json.loads(line)["id"] for name in manifest["files"] for line in (root / name).read_text().splitlines()
    )
    assert ids == Counter(range(12))


def test_a_run_file_that_cannot_be_read_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    root = UPath(tmp_path / "out")
    store = RowStore(root)
    store.open(FP)
    store.append(ok(1))
    store.finalize({})
    (tmp_path / "out" / "_run.json").write_bytes(b'{"fingerprint": "ff')  # cut off
    with pytest.raises(ResumeStateError, match=r"_run.json cannot be read .* delete .*_run.json and rerun"):
        RowStore(root).open(FP)
    (tmp_path / "out" / "_run.json").write_text(json.dumps({"version": 99, "fingerprint": FP, "generation": 3}))
    with pytest.raises(ResumeStateError, match="newer airflow-provider-anyfast"):
        RowStore(root).open(FP)
    assert not (tmp_path / "out" / LEASE_FILE).exists(), "a refused open gives the lease back"

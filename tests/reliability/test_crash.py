"""Crashes: the worker killed with SIGKILL early or mid-run (local folder and S3), and a row file cut off.

The kill is timed by events, not sleeps: records after the first ``answered`` are *held* by the
server, so when it reports 4 held requests (max_concurrency=4) every earlier record's row has
been handed to the store. ``chunk_rows`` is left at its default (1,000), so only the timed
flush (every 2 s) can have put those rows on storage: the test waits until they are there,
then kills. What a rerun pays again is counted at the server.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=SOURCE, prompt="Classify record {{ record.id }}: {{ record.text }}",
        id_field="id", output_path=OUT, storage_conn_id=STORAGE_CONN, max_concurrency=4,
    )
"""
TOTAL = 60


class Folder:
    """An output folder on the local disk or on moto S3, read from outside the task."""

    def __init__(self, local: Path | None = None, s3: tuple[str, str, str] | None = None) -> None:
        self.local, self.s3 = local, s3

    @property
    def uri(self) -> str:
        return f"file://{self.local}" if self.local else f"s3://{self.s3[1]}/{self.s3[2]}"  # type: ignore[index]

    def files(self) -> dict[str, bytes]:
        if self.local is not None:
            return {str(p.relative_to(self.local)): p.read_bytes() for p in self.local.rglob("*") if p.is_file()}
        endpoint, bucket, prefix = self.s3  # type: ignore[misc]
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
        return {o["Key"][len(prefix) + 1 :]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                for o in listed}  # fmt: skip

    def rows(self, kit: Any) -> list[dict[str, Any]]:
        return kit.part_lines([data for name, data in sorted(self.files().items()) if name.startswith("rows/part-")])

    def finished_rows(self, kit: Any) -> list[dict[str, Any]]:
        files = self.files()
        manifest = json.loads(files["manifest.json"])
        assert sorted(manifest["files"]) == sorted(n for n in files if n.startswith("rows/")), "manifest lists all"
        return kit.part_lines([files[name] for name in manifest["files"]])


@pytest.fixture(params=["local-early", "local-mid", "s3-mid"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Folder, str | None, int]:
    """(where the rows go, the storage connection, how many records are answered before the kill)."""
    where, when = request.param.split("-")
    answered = 0 if when == "early" else 40
    if where == "local":
        return Folder(local=tmp_path / "out"), None, answered
    endpoint = request.getfixturevalue("s3_endpoint")
    return Folder(s3=(endpoint, request.getfixturevalue("s3_bucket"), uuid.uuid4().hex)), \
        request.getfixturevalue("aws_conn"), answered  # fmt: skip


@pytest.mark.slow
def test_sigkill_then_rerun_pays_again_only_for_requests_in_flight(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path,
    case: tuple[Folder, str | None, int],
) -> None:  # fmt: skip
    folder, storage_conn, answered = case
    set_conn()
    records = kit.make_records(answered) + [
        {**r, "text": f"HOLD {r['text']}"} for r in kit.make_records(TOTAL - answered, answered)
    ]
    source = kit.write_jsonl(tmp_path / "input.jsonl", records)
    constants = {"SOURCE": f"file://{source}", "OUT": folder.uri, "STORAGE_CONN": storage_conn}
    dag_file = dag_runner.write(BODY, "sigkill", constants)
    anyfast_server.add_rule("HOLD", Fault("hold"))

    worker = kit.start_dag_process(dag_file, "sigkill", tmp_path / "worker.log")
    try:
        anyfast_server.wait_for_held(4, timeout=120)
        answered_ids = {r["id"] for r in records[:answered]}
        kit.wait_for(lambda: {r["id"] for r in folder.rows(kit)} >= answered_ids, 30, "answered rows on storage")
    except BaseException:
        worker.kill()
        raise AssertionError((tmp_path / "worker.log").read_text()[-5000:]) from None
    os.killpg(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    assert "manifest.json" not in folder.files(), "the killed run never finished"
    assert "_lease.json" in folder.files(), "the dead run's lease is still there"
    anyfast_server.release()  # the 4 held requests are answered (to a dead client) and logged
    anyfast_server.wait_for_requests(answered + 4, timeout=30)
    in_flight = {kit.record_of(r.body) for r in anyfast_server.requests if r.fault == "hold"}
    anyfast_server.reset()

    rerun = dag_runner.run(dag_file, "sigkill")  # takes the lease over: its holder's process is gone

    assert rerun.ok, rerun.output[-5000:]
    rows = kit.exactly_once(folder.finished_rows(kit))
    assert set(rows) == {r["id"] for r in records} and {r["status"] for r in rows.values()} == {"success"}
    asked_again = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    assert asked_again == Counter({r["id"]: 1 for r in records[answered:]}), "each unanswered record once"
    paid_twice = set(asked_again) & (answered_ids | in_flight)
    assert paid_twice == in_flight and len(in_flight) == 4, "only the 4 requests in flight at the kill were paid again"
    assert "_lease.json" not in folder.files()
    if answered:
        assert f"{answered} record(s) already have a success row" in rerun.output


CUT_BODY = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, prompt="Classify record {{ record.id }}: {{ record.text }}",
        id_field="id", output_path=OUT, chunk_rows=4, max_concurrency=1,
    )
"""


def test_row_file_cut_off_by_a_crash_is_detected_and_its_record_redone(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    set_conn()
    records = kit.make_records(10)
    out = tmp_path / "out"
    path = dag_runner.write(CUT_BODY, "cut_line", {"RECORDS": records, "OUT": f"file://{out}"})
    assert dag_runner.run(path, "cut_line").ok
    # What a crash in the middle of writing a part leaves: its last line cut off, no manifest.
    part = sorted((out / "rows").glob("part-*.jsonl"))[1]
    lines = part.read_bytes().splitlines(keepends=True)
    cut_id = json.loads(lines[-1])["id"]
    part.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    (out / "manifest.json").unlink()
    anyfast_server.reset()

    run = dag_runner.run(path, "cut_line")

    assert run.ok, run.output[-3000:]
    assert "damaged line" in run.output and part.name in run.output, "the task log warns about the cut line"
    assert [kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST"] == [cut_id], (
        "only the cut record is redone"
    )
    rows = kit.exactly_once(kit.folder_rows(out))
    assert set(rows) == {r["id"] for r in records} and rows[cut_id]["status"] == "success"

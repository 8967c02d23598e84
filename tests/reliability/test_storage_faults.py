"""Object storage that fails mid-run: the task fails with a clear error; a rerun completes, nothing lost or doubled.

The failure is timed by an event: the server holds the requests of the later records, so
when it reports them held, the earlier records' rows are on storage. The test then breaks
the storage and releases the held requests; their rows are what the run can no longer write.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.source import SourceItem, iter_source
from airflow_provider_anyfast.core.records.store import RowStore
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BUCKET = "outage"
FIRST = 20  # records answered before the server starts holding requests
BODY = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, prompt="Classify record {{ record.id }}: {{ record.text }}",
        id_field="id", output_path=OUT, storage_conn_id=STORAGE_CONN, chunk_rows=5, max_concurrency=4,
    )
"""


def records_with_hold(kit: Any, n: int) -> list[dict[str, Any]]:
    return kit.make_records(FIRST) + [{**r, "text": f"HOLD {r['text']}"} for r in kit.make_records(n - FIRST, FIRST)]


def break_when_held(server: AnyFastTestServer, breaker: Callable[[], None]) -> threading.Thread:
    """Once 4 requests are held (every earlier row written), break the storage, then let them be answered."""
    failure: list[BaseException] = []

    def act() -> None:
        try:
            server.wait_for_held(4, timeout=60)
            breaker()
        except BaseException as exc:  # surfaced by the test through ``failure``
            failure.append(exc)
        finally:
            server.release()

    thread = threading.Thread(target=act, name="storage-breaker")
    thread.failure = failure  # type: ignore[attr-defined]
    thread.start()
    return thread


@pytest.fixture
def moto() -> Iterator[Any]:
    """A moto S3 server of this test's own, which the test may stop and start again on the same port."""
    from moto.server import ThreadedMotoServer

    servers = [ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)]
    servers[0].start()
    host, port = servers[0].get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)

    class Control:
        url = endpoint

        def stop(self) -> None:
            servers[-1].stop()

        def restart(self) -> None:
            servers.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False))
            servers[-1].start()

    yield Control()
    servers[-1].stop()


def s3_files(endpoint: str, prefix: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])
    return {o["Key"][len(prefix) + 1 :]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def success_ids(files: dict[str, bytes]) -> set[str]:
    return {
        row["id"]
        for name, data in files.items() if name.startswith("rows/")
        for row in map(json.loads, data.splitlines()) if row["status"] == "success"
    }  # fmt: skip


@pytest.mark.slow
def test_s3_outage_mid_run_fails_clearly_and_rerun_completes(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any,
    moto: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    set_conn()
    aws = {"conn_type": "aws", "login": "testing", "password": "testing",
           "extra": {"endpoint_url": moto.url, "region_name": "us-east-1",
                     "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AWS_OUTAGE", json.dumps(aws))
    records = records_with_hold(kit, 40)
    prefix = "run/out"
    anyfast_server.add_rule("HOLD", Fault("hold"))
    values = {"RECORDS": records, "OUT": f"s3://{BUCKET}/{prefix}", "STORAGE_CONN": "aws_outage"}
    path = dag_runner.write(BODY, "s3_outage", values)

    breaker = break_when_held(anyfast_server, moto.stop)
    run = dag_runner.run(path, "s3_outage")
    breaker.join()

    assert not breaker.failure, breaker.failure  # type: ignore[attr-defined]
    assert not run.ok
    failure = next(line for line in run.output.splitlines() if "RowStorageError: Writing result rows to" in line)
    assert f"@{BUCKET}/{prefix}" in failure and "EndpointConnectionError" in failure  # where, and what broke
    assert "rerun the task" in failure  # and what to do about it
    sent_first = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    assert set(sent_first) < {r["id"] for r in records}, "no new requests once storage failed"
    moto.restart()
    stored = success_ids(s3_files(moto.url, prefix))
    assert stored >= {r["id"] for r in records[:FIRST]}, "rows written before the outage are kept"
    anyfast_server.reset()

    rerun = dag_runner.run(path, "s3_outage")

    assert rerun.ok, rerun.output[-3000:]
    files = s3_files(moto.url, prefix)
    manifest = json.loads(files["manifest.json"])
    rows = kit.exactly_once([json.loads(line) for name in manifest["files"] for line in files[name].splitlines()])
    assert set(rows) == {r["id"] for r in records} and manifest["counts"]["success"] == 40
    resent = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    assert set(resent) == {r["id"] for r in records} - stored and set(resent.values()) == {1}


def test_unwritable_local_folder_fails_clearly_and_rerun_completes(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    """The same on file://: the rows folder replaced by a file (tests run as root, so chmod would not stop a write)."""
    set_conn()
    records = records_with_hold(kit, 30)
    out = tmp_path / "out"
    anyfast_server.add_rule("HOLD", Fault("hold"))
    path = dag_runner.write(BODY, "local_outage", {"RECORDS": records, "OUT": f"file://{out}", "STORAGE_CONN": None})
    moved = tmp_path / "rows-aside"

    def break_folder() -> None:
        (out / "rows").rename(moved)
        (out / "rows").write_text("not a folder")

    breaker = break_when_held(anyfast_server, break_folder)
    run = dag_runner.run(path, "local_outage")
    breaker.join()

    assert not breaker.failure, breaker.failure  # type: ignore[attr-defined]
    failure = next(line for line in run.output.splitlines() if "RowStorageError: Writing result rows to" in line)
    assert f"could not create file://{out}/rows" in failure and "rerun the task" in failure
    assert not run.ok
    (out / "rows").unlink()
    moved.rename(out / "rows")
    stored = {row["id"] for row in kit.part_rows(out) if row["status"] == "success"}
    assert stored >= {r["id"] for r in records[:FIRST]}
    anyfast_server.reset()

    rerun = dag_runner.run(path, "local_outage")

    assert rerun.ok, rerun.output[-3000:]
    rows = kit.exactly_once(kit.folder_rows(out))
    assert set(rows) == {r["id"] for r in records}
    resent = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    assert set(resent) == {r["id"] for r in records} - stored and set(resent.values()) == {1}


def test_input_that_fails_mid_run_keeps_every_answer_paid_for(
    anyfast_server: AnyFastTestServer, kit: Any, tmp_path: Path
) -> None:
    """The input breaks off after 30 records: every answer already paid for is kept; a rerun sends only the rest.

    Records in flight at the failure finish their current try and their rows are written; records
    queued but not yet sent are not sent (their rows say so, and they are redone).
    """
    records = kit.make_records(50)
    request = ChatRequest("gemini-2.5-flash", {"response_format": {"type": "json_object"}}, json_mode=True)
    job = RecordsJob(PromptTemplate("Classify record {{ record.id }}: {{ record.text }}"), request, "id")
    spec = RunSpec(job=job, schema=None, settings=RunSettings(max_concurrency=8), location=str(tmp_path))
    anyfast_server.latency = 0.02  # several requests are in flight when the input fails
    passes = 0

    def breaking_source() -> Iterator[SourceItem]:
        nonlocal passes
        passes += 1
        for item in iter_source(records):
            if passes == 2 and item.position == 30:  # the second (working) pass: the storage goes away
                raise OSError("input storage went away")
            yield item

    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token)
    with pytest.raises(OSError, match="input storage went away"):
        run_records(client, spec, breaking_source, RowStore(tmp_path, chunk_rows=100))
    rows = kit.exactly_once(kit.part_rows(tmp_path))
    paid = {kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST"}
    kept = {rid for rid, row in rows.items() if row["status"] == "success"}
    assert kept == paid and len(paid) >= 20, "every answer paid for is on storage"
    assert set(rows) == {r["id"] for r in records[:30]}, "and the records not sent say so"
    unpaid = {r["id"] for r in records[:30]} - paid
    assert {rid: row["error"]["type"] for rid, row in rows.items() if rid not in kept} == dict.fromkeys(
        unpaid, "aborted"
    )
    anyfast_server.reset()
    run_records(client, spec, lambda: iter_source(records), RowStore(tmp_path, chunk_rows=100))
    client.close()
    assert sorted(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST") == sorted(
        set(rows) - kept
    ) + [r["id"] for r in records[30:]]
    assert set(kit.exactly_once(kit.folder_rows(tmp_path))) == {r["id"] for r in records}

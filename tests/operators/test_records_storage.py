"""AnyFastRecordsOperator writing rows to storage (a local folder, S3 on moto) in ``dag.test()`` runs."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = """
import pendulum

from airflow.sdk import DAG
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, params={"out": OUT}) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, prompt=PROMPT, output_schema=SCHEMA, id_field="sku",
        output_path="{{ params.out }}/{{ task.task_id }}", **OPTIONS
    )
"""
PROMPT = "Label: {{ record.text }}"
MANIFEST_KEYS = {"files", "counts", "records", "requests", "usage", "model", "started_at", "ended_at", "fingerprint"}

Reader = Callable[[str], dict[str, bytes]]


def local_reader(root: Path) -> Reader:
    """Files under ``root/<sub>`` as {relative path: bytes}."""

    def read(sub: str) -> dict[str, bytes]:
        base = root / sub
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}

    return read


def s3_reader(endpoint: str, bucket: str, prefix: str) -> Reader:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def read(sub: str) -> dict[str, bytes]:
        base = f"{prefix}/{sub}/"
        listed = client.list_objects_v2(Bucket=bucket, Prefix=base).get("Contents", [])
        return {o["Key"][len(base) :]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}

    return read


def stored_rows(files: dict[str, bytes]) -> dict[Any, dict[str, Any]]:
    """Rows of every row file the manifest lists; each id exactly once, no unlisted row file."""
    manifest = json.loads(files["manifest.json"])
    assert sorted(manifest["files"]) == sorted(name for name in files if name.startswith("rows/"))
    rows = [json.loads(line) for name in manifest["files"] for line in files[name].splitlines()]
    counts = Counter(row["id"] for row in rows)
    assert all(n == 1 for n in counts.values()), f"repeated ids: {counts}"
    return {row["id"]: row for row in rows}


def records(n: int, **texts: str) -> list[dict[str, Any]]:
    return [{"sku": f"r{i}", "text": texts.get(f"r{i}", f"record {i}")} for i in range(n)]


def constants(out: str, recs: Any, prompt: str = PROMPT, **options: Any) -> dict[str, Any]:
    return {"OUT": out, "RECORDS": recs, "PROMPT": prompt, "OPTIONS": {"chunk_rows": 2, **options}}


def check_summary(summary: dict[str, Any], files: dict[str, bytes], location: str, n: int) -> None:
    assert "rows" not in summary  # the rows stay in storage
    assert summary["path"].rstrip("/") == location.rstrip("/")
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) >= MANIFEST_KEYS and summary["files"] == manifest["files"]
    assert manifest["records"] == n and manifest["counts"]["success"] == n
    assert len(manifest["files"]) == (n + 1) // 2  # chunk_rows=2
    assert manifest["model"] == "gemini-2.5-flash" and manifest["started_at"] <= manifest["ended_at"]
    rows = stored_rows(files)
    assert manifest["usage"]["total_tokens"] == sum(r["usage"]["total_tokens"] for r in rows.values())


def test_rows_to_a_local_folder(anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path) -> None:
    limits: dict[str, Any] = {"requests_per_minute": 6000, "tokens_per_minute": 10**7}  # wired in, never reached here
    result = run_dag(BODY, "storage_local", constants(str(tmp_path), records(5), **limits))

    assert result.ok, result.output[-3000:]
    files = local_reader(tmp_path)("classify")
    check_summary(result.xcom("classify"), files, f"file://{tmp_path}/classify", 5)
    assert set(stored_rows(files)) == {f"r{i}" for i in range(5)}
    token = anyfast_conn.token.encode()
    assert all(token not in data for data in files.values())
    assert anyfast_conn.token not in result.output


def test_jsonl_from_s3_rows_to_s3(
    anyfast_conn: AnyFastTestServer, aws_conn: str, s3_endpoint: str, s3_bucket: str, run_dag: Any
) -> None:
    prefix = uuid.uuid4().hex
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    lines = [json.dumps(r) for r in records(5)]
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/in/a.jsonl", Body="\n".join(lines[:3]) + "\n")
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/in/b.jsonl", Body="\n".join(lines[3:]) + "\n")
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/in/_SUCCESS", Body=b"")
    out = f"s3://{s3_bucket}/{prefix}/out"
    values = constants(out, f"s3://{s3_bucket}/{prefix}/in/", storage_conn_id=aws_conn)
    result = run_dag(BODY, "storage_s3", values)

    assert result.ok, result.output[-3000:]
    files = s3_reader(s3_endpoint, s3_bucket, f"{prefix}/out")("classify")
    check_summary(result.xcom("classify"), files, f"{out}/classify", 5)
    rows = stored_rows(files)
    assert set(rows) == {f"r{i}" for i in range(5)}
    sent = sorted(r.record_text or "" for r in anyfast_conn.requests if r.method == "POST")
    assert sent == [f"Label: record {i}" for i in range(5)]


def test_jsonl_file_uri_input_rows_to_xcom(anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records(3)))
    body = BODY.replace('output_path="{{ params.out }}/{{ task.task_id }}", ', "")
    result = run_dag(body, "storage_file_uri", constants(str(tmp_path), f"file://{source}"))

    assert result.ok, result.output[-3000:]
    rows = result.xcom("classify")
    assert sorted(row["id"] for row in rows) == ["r0", "r1", "r2"]
    assert {row["status"] for row in rows} == {"success"}


def test_resume_requests_only_unfinished_records(anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path) -> None:
    server = anyfast_conn
    server.add_rule("FAULT-503", Fault("server_error", status=503, retry_after=0.01))
    values = constants(str(tmp_path), records(6, r2="FAULT-503 two", r4="FAULT-503 four"))
    first = run_dag(BODY, "storage_resume", values)

    assert first.state == "failed"
    assert "2 of 6 records" in first.output and str(tmp_path / "classify") in first.output
    rows = stored_rows(local_reader(tmp_path)("classify"))
    assert {i for i, r in rows.items() if r["status"] == "error"} == {"r2", "r4"}

    server.reset()  # the upstream recovered
    second = run_dag(BODY, "storage_resume", values)

    assert second.ok, second.output[-3000:]
    sent = sorted(r.record_text or "" for r in server.requests if r.method == "POST")
    assert sent == ["Label: FAULT-503 four", "Label: FAULT-503 two"]
    files = local_reader(tmp_path)("classify")
    rows = stored_rows(files)
    assert set(rows) == {f"r{i}" for i in range(6)} and {r["status"] for r in rows.values()} == {"success"}
    manifest = json.loads(files["manifest.json"])
    assert manifest["counts"]["success"] == 6 and manifest["records"] == 6 and manifest["resumed_rows"] == 4
    assert second.xcom("classify")["counts"] == manifest["counts"]


@pytest.mark.parametrize("change", ["prompt", "input"])
def test_rerun_with_other_prompt_or_input_is_refused(
    anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path, change: str
) -> None:
    first = run_dag(BODY, f"storage_mismatch_{change}", constants(str(tmp_path), records(3)))
    assert first.ok, first.output[-3000:]
    anyfast_conn.reset()

    if change == "prompt":
        values = constants(str(tmp_path), records(3), prompt="Another label: {{ record.text }}")
    else:
        values = constants(str(tmp_path), records(4))
    second = run_dag(BODY, f"storage_mismatch_{change}", values)

    assert second.state == "failed"
    assert anyfast_conn.request_count() == 0
    assert "holds result rows of a different run" in second.output and f"changed: {change}" in second.output
    assert len(stored_rows(local_reader(tmp_path)("classify"))) == 3  # the old rows are untouched

"""Files through the Airflow faces, in real ``dag.test()`` runs: moto S3, local files, the server's view."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "example_dags" / "data" / "documents"
PDF = DOCS / "01-checkout-outage-postmortem.pdf"
PNG = DOCS / "07-pricing-committee-notes.png"
JPEG = ROOT / "tests" / "data" / "gradient.jpg"

RECORDS_DAG = """
import pendulum

from airflow.sdk import DAG
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="summarize", records=RECORDS, id_field="id", prompt="Summarize {{ record.id }}.",
        attachments=ATTACHMENTS, storage_conn_id=CONN, output_path=OUT, max_error_rate=0.5, **OPTIONS
    )
"""

CHAT_DAG = """
import pendulum

from airflow.sdk import DAG, task
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
         params={"doc": DOC}) as dag:
    AnyFastChatOperator(task_id="chat", prompt="What is in this file?", attachments=["{{ params.doc }}", JPEG],
                        storage_conn_id=CONN)

    @task.anyfast(attachments=[JPEG])
    def describe() -> str:
        return "Describe the picture."

    describe()
"""


@pytest.fixture
def s3_prefix(s3_endpoint: str, s3_bucket: str) -> tuple[str, Any]:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    prefix = uuid.uuid4().hex
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/docs/report.pdf", Body=PDF.read_bytes())
    client.put_object(Bucket=s3_bucket, Key=f"{prefix}/docs/scan.png", Body=PNG.read_bytes())
    return f"s3://{s3_bucket}/{prefix}", client


def _files(server: AnyFastTestServer) -> list[list[str]]:
    """Per request, the data-URL types of its user message's image parts (what the server got)."""
    found = []
    for record in server.requests:
        if record.method != "POST":  # the run's free model-list check
            continue
        parts = record.body["messages"][-1]["content"]
        found.append(sorted(p["image_url"]["url"].split(";")[0][5:] for p in parts if p["type"] == "image_url"))
    return sorted(found)


def test_records_read_their_files_from_s3_with_the_storage_connection(
    anyfast_conn: AnyFastTestServer, aws_conn: str, s3_prefix: tuple[str, Any], run_dag: Any, tmp_path: Path
) -> None:
    prefix, _ = s3_prefix
    records = [
        {"id": "report", "files": [f"{prefix}/docs/report.pdf"]},
        {"id": "both", "files": [f"{prefix}/docs/report.pdf", f"{prefix}/docs/scan.png"]},
        {"id": "photo", "files": f"file://{JPEG}"},
        {"id": "gone", "files": [f"{prefix}/docs/gone.pdf"]},
    ]
    values = {"RECORDS": records, "ATTACHMENTS": "files", "CONN": aws_conn, "OUT": None, "OPTIONS": {}}
    result = run_dag(RECORDS_DAG, "attachments_s3", values)

    assert result.ok, result.output[-3000:]
    rows = {row["id"]: row for row in result.xcom("summarize")}
    assert {rid: row["status"] for rid, row in rows.items()} == {
        "report": "success", "both": "success", "photo": "success", "gone": "error",
    }  # fmt: skip
    assert rows["gone"]["error"]["type"] == "invalid_record"
    assert f"'{prefix}/docs/gone.pdf' was not found" in rows["gone"]["error"]["message"]
    assert _files(anyfast_conn) == [["application/pdf"], ["application/pdf", "image/png"], ["image/jpeg"]]
    assert [f["bytes"] for f in rows["both"]["output"]["files"]] == [PDF.stat().st_size, PNG.stat().st_size]


def test_a_rerun_on_the_same_output_skips_finished_documents(
    anyfast_conn: AnyFastTestServer, aws_conn: str, s3_prefix: tuple[str, Any], run_dag: Any, tmp_path: Path
) -> None:
    prefix, client = s3_prefix
    records = [{"id": name} for name in ("report", "scan", "late")]
    template = prefix + "/docs/{{ record.id }}.{{ 'png' if record.id == 'scan' else 'pdf' }}"
    values = {"RECORDS": records, "ATTACHMENTS": template, "CONN": aws_conn, "OUT": f"{prefix}/out", "OPTIONS": {}}
    first = run_dag(RECORDS_DAG, "attachments_resume", values)
    assert first.ok, first.output[-3000:]
    assert {k: v for k, v in first.xcom("summarize")["counts"].items() if v} == {"success": 2, "error": 1}
    assert anyfast_conn.request_count() == 2

    bucket, key = prefix[len("s3://") :].split("/", 1)
    client.put_object(Bucket=bucket, Key=f"{key}/docs/late.pdf", Body=JPEG.read_bytes())  # arrives, misnamed
    anyfast_conn.reset()
    second = run_dag(RECORDS_DAG, "attachments_resume", values)
    assert second.ok, second.output[-3000:]
    assert {k: v for k, v in second.xcom("summarize")["counts"].items() if v} == {"success": 3}
    assert _files(anyfast_conn) == [["image/jpeg"]]  # only the late one was sent, typed by its content


def test_too_large_for_max_input_tokens_is_refused_unsent(
    anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path
) -> None:
    records = [{"id": "scan", "file": str(PNG)}]
    options = {"max_input_tokens": 1000}  # a PNG alone is estimated at 1,120 tokens
    values = {"RECORDS": records, "ATTACHMENTS": "file", "CONN": None, "OUT": None, "OPTIONS": options}
    result = run_dag(RECORDS_DAG.replace("max_error_rate=0.5", "max_error_rate=1.0"), "attachments_tokens", values)
    assert result.ok, result.output[-3000:]
    [row] = result.xcom("summarize")
    assert "exceed max_input_tokens=1000" in row["error"]["message"] and anyfast_conn.request_count() == 0


def test_chat_operator_and_decorator_send_their_attachments(
    anyfast_conn: AnyFastTestServer, aws_conn: str, s3_prefix: tuple[str, Any], run_dag: Any
) -> None:
    prefix, _ = s3_prefix
    values = {"DOC": f"{prefix}/docs/report.pdf", "JPEG": str(JPEG), "CONN": aws_conn}
    result = run_dag(CHAT_DAG, "attachments_chat", values)

    assert result.ok, result.output[-3000:]
    assert result.xcom("chat").startswith(f"Echo: application/pdf:{PDF.stat().st_size} image/jpeg:")
    assert result.xcom("describe").startswith(f"Echo: image/jpeg:{JPEG.stat().st_size} Describe the picture.")
    assert _files(anyfast_conn) == [["application/pdf", "image/jpeg"], ["image/jpeg"]]


def test_hook_presigns_s3_files_and_refuses_a_bad_one_before_sending(
    anyfast_conn: AnyFastTestServer, aws_conn: str, s3_prefix: tuple[str, Any]
) -> None:
    from airflow_provider_anyfast.core.attachments import AttachmentError
    from airflow_provider_anyfast.storage import attachment_loader

    prefix, _ = s3_prefix
    [attachment] = attachment_loader(aws_conn, presign_seconds=600).load([f"{prefix}/docs/scan.png"])
    url = attachment.part["image_url"]["url"]
    assert attachment.mime == "image/png" and "Signature=" in url
    assert requests.get(url, timeout=10).content == PNG.read_bytes()  # the URL the gateway gets works

    hook = AnyFastHook(storage_conn_id=aws_conn)
    answer = hook.complete_json("Summarize.", attachments=f"{prefix}/docs/report.pdf")
    assert answer["files"][0]["type"] == "application/pdf"
    sent = anyfast_conn.requests[-1].body["messages"][-1]["content"][1]["image_url"]["url"]
    assert base64.b64decode(sent.split(",", 1)[1]) == PDF.read_bytes()
    with pytest.raises(AttachmentError, match="was not found"):
        hook.chat_completion("Summarize.", attachments=[f"{prefix}/docs/nope.pdf"])
    assert anyfast_conn.request_count() == 1
    json.dumps(anyfast_conn.requests[-1].body)  # the logged body is plain JSON

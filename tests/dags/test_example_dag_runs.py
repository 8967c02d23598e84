"""Each example DAG runs end to end in a real Airflow, against the local AnyFast server and moto S3."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.testing.server import AnyFastTestServer, Fault

from .conftest import EXAMPLE_DAGS, example_module

DATA = EXAMPLE_DAGS / "data"


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _local_rows(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest, [row for part in manifest["files"] for row in _jsonl((folder / part).read_text())]


def _chat_bodies(server: AnyFastTestServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path == "/v1/chat/completions"]


def test_product_enrichment_enriches_every_product_into_the_variable_folder(
    run_example: Any, anyfast_conn: AnyFastTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ANYFAST_OUTPUT_BASE", tmp_path.as_uri())
    run = run_example("anyfast_product_enrichment", model="gemini-2.5-pro")

    assert run.state == "success"
    assert run.task_states() == {"extract": "success", "enrich": "success", "summarize": "success"}
    [folder] = (tmp_path / "product_enrichment").iterdir()
    manifest, rows = _local_rows(folder)
    skus = [p["sku"] for p in _jsonl((DATA / "products.jsonl").read_text())]
    assert len(skus) == 30
    assert sorted(row["id"] for row in rows) == sorted(skus)
    schema = example_module("anyfast_product_enrichment").ProductEnrichment
    for row in rows:
        assert row["status"] == "success"
        schema.model_validate(row["output"])
    summary = run.xcom("summarize")
    assert (summary["products"], summary["enriched"], summary["failed"]) == (30, 30, 0)
    assert summary["total_tokens"] == manifest["usage"]["total_tokens"] > 0
    bodies = _chat_bodies(anyfast_conn)
    assert summary["requests"] == len(bodies) == 30
    assert {body["model"] for body in bodies} == {"gemini-2.5-pro"}  # the model param reached the API


def test_document_summarization_reads_s3_writes_rows_and_publishes_the_asset(
    run_example: Any, anyfast_conn: AnyFastTestServer, aws_conn: str, s3_endpoint: str, s3_bucket: str
) -> None:
    import boto3

    prefix = f"docs-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    docs = sorted((DATA / "documents").iterdir())
    for doc in docs:
        s3.upload_file(str(doc), s3_bucket, f"{prefix}/in/{doc.name}")
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/in/chart.gif", Body=b"GIF89a\x01\x00")  # a type Gemini refuses
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/in/_SUCCESS", Body=b"")  # a marker, not a document

    run = run_example(
        "anyfast_document_summarization",
        input_prefix=f"s3://{s3_bucket}/{prefix}/in/",
        output_path=f"s3://{s3_bucket}/{prefix}/out",
        storage_conn_id=aws_conn,
    )

    assert run.state == "success"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"{prefix}/out/")["Contents"]]
    [manifest_key] = [k for k in keys if k.endswith("/manifest.json")]
    folder = manifest_key.rsplit("/", 1)[0]
    manifest = json.loads(s3.get_object(Bucket=s3_bucket, Key=manifest_key)["Body"].read())
    rows = [
        row
        for part in manifest["files"]
        for row in _jsonl(s3.get_object(Bucket=s3_bucket, Key=f"{folder}/{part}")["Body"].read().decode())
    ]
    assert [doc.suffix for doc in docs].count(".pdf") == 11 and [doc.suffix for doc in docs].count(".png") == 1
    by_id = {row["id"]: row for row in rows}
    assert sorted(by_id) == sorted([doc.name for doc in docs] + ["chart.gif"])
    gif = by_id.pop("chart.gif")
    assert gif["status"] == "error" and "image/gif, which the model does not read" in gif["error"]["message"]
    schema = example_module("anyfast_document_summarization").DocumentSummary
    for row in by_id.values():
        assert row["status"] == "success"
        schema.model_validate(row["output"])
    # each request carried its document's bytes, typed from the content: the PDF and the scan arrived whole
    sent = {
        b["messages"][-1]["content"][0]["text"]: b["messages"][-1]["content"][1] for b in _chat_bodies(anyfast_conn)
    }
    for doc in docs:
        url = sent[f"Summarize the attached document, {doc.name}."]["image_url"]["url"]
        kind = "application/pdf" if doc.suffix == ".pdf" else "image/png"
        assert url == f"data:{kind};base64," + base64.b64encode(doc.read_bytes()).decode()

    event = run.xcom("publish")
    assert (event["documents"], event["summarized"]) == (13, 12)
    assert event["path"].endswith(folder)
    extras = run.asset_events("s3://anyfast-examples/document-summaries")
    assert [extra["path"] for extra in extras] == [event["path"]]


def _routed(folder: Path) -> dict[str, list[dict[str, Any]]]:
    sinks = example_module("anyfast_ticket_classification").SINKS
    return {name: _jsonl((folder / "routed" / f"{name}.jsonl").read_text()) for name in sinks}


def test_ticket_classification_routes_every_class_and_sends_invalid_answers_to_review(
    run_example: Any, anyfast_conn: AnyFastTestServer, tmp_path: Path
) -> None:
    broken = {"TCK-1006": "invalid_json", "TCK-1030": "schema_mismatch"}
    for ticket_id, kind in broken.items():
        anyfast_conn.add_rule(contains=f"Ticket {ticket_id} ", fault=Fault(kind))

    run = run_example("anyfast_ticket_classification", output_path=tmp_path.as_uri())

    assert run.state == "success"  # 2 of 40 invalid is within max_error_rate
    [folder] = tmp_path.iterdir()
    sinks = _routed(folder)
    routed_ids = [t["ticket_id"] for items in sinks.values() for t in items]
    assert sorted(routed_ids) == sorted(t["ticket_id"] for t in _jsonl((DATA / "tickets.jsonl").read_text()))
    assert len(routed_ids) == 40
    assert {t["ticket_id"] for t in sinks["review"]} == set(broken)
    for ticket in sinks["review"]:
        assert ticket["classification"] is None and ticket["error"]["type"] and ticket["subject"]
    label_of = example_module("anyfast_ticket_classification").TicketClass.model_validate
    assert all(sinks.values()), {name: len(items) for name, items in sinks.items()}  # every route is exercised
    for ticket in sinks["urgent"]:
        assert label_of(ticket["classification"]).priority in ("urgent", "high")
    for ticket in sinks["agents"] + sinks["self_service"]:
        label = label_of(ticket["classification"])
        assert label.priority in ("low", "normal")
        assert label.needs_human is (ticket in sinks["agents"])
    report = run.xcom("report")
    assert {name: report[name] for name in sinks} == {name: len(items) for name, items in sinks.items()}
    assert report["tickets"] == 40 and report["total_tokens"] > 0
    states = run.task_states()
    assert states["alert_on_call"] == states["request_review"] == states["report"] == "success"


def test_ticket_classification_skips_the_review_step_when_every_answer_is_valid(
    run_example: Any, anyfast_conn: AnyFastTestServer, tmp_path: Path
) -> None:
    run = run_example("anyfast_ticket_classification", output_path=tmp_path.as_uri())

    assert run.state == "success"
    [folder] = tmp_path.iterdir()
    assert _routed(folder)["review"] == []
    states = run.task_states()
    assert states["request_review"] == "skipped"
    assert states["alert_on_call"] == states["report"] == "success"

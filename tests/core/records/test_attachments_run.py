"""Records with files, run end to end without Airflow: real files on disk and in moto S3, the server's view."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from airflow_provider_anyfast.core.attachments import AttachmentLoader
from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.records.attach import RecordAttachments
from airflow_provider_anyfast.core.records.cache import ResultCache
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.records.store import RowStore
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.testing import AnyFastTestServer

JSON_REQUEST = ChatRequest("gemini-2.5-flash", {"response_format": {"type": "json_object"}}, json_mode=True)

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "example_dags" / "data" / "documents"
PDF = DOCS / "01-checkout-outage-postmortem.pdf"
PDF2 = DOCS / "02-returns-policy-update.pdf"
PNG = DOCS / "07-pricing-committee-notes.png"
JPEG = ROOT / "tests" / "data" / "gradient.jpg"
FAST = RetryPolicy(max_retries=2, max_retry_wait=5.0, backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture
def s3(s3_endpoint: str, s3_bucket: str) -> tuple[str, dict[str, Any]]:
    """A fresh S3 prefix and the storage options that reach moto."""
    return f"s3://{s3_bucket}/{uuid.uuid4().hex}", {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}


def opener(options: dict[str, Any]) -> Any:
    return lambda ref: UPath(ref, **options) if ref.startswith("s3://") else UPath(ref)


def spec(loader: AttachmentLoader, field: str = "file", **kwargs: Any) -> RunSpec:
    job = RecordsJob(
        template=PromptTemplate("Summarize the attached document."), request=JSON_REQUEST, id_field="id",
        attachments=RecordAttachments(field, loader),
    )  # fmt: skip
    spec_args = {name: kwargs.pop(name) for name in ("cache", "location", "input_uri", "report") if name in kwargs}
    return RunSpec(job=job, schema=None, settings=RunSettings(max_concurrency=2, **kwargs), **spec_args)


def run(server: AnyFastTestServer, spec: RunSpec, records: list[dict[str, Any]], sink: Any = None) -> dict[str, Any]:
    sink = sink if sink is not None else MemoryRowSink()
    client = AnyFastClient(server.base_url, server.token, retry=FAST)
    try:
        run_records(client, spec, lambda: iter_source(records), sink)
    finally:
        client.close()
    return {row["id"]: row for row in getattr(sink, "rows", [])}


def test_each_file_arrives_as_its_part_and_bad_files_become_error_rows(
    anyfast_server: AnyFastTestServer, s3: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    prefix, options = s3
    (UPath(f"{prefix}/scan.png", **options)).write_bytes(PNG.read_bytes())
    (UPath(f"{prefix}/really-a-png.pdf", **options)).write_bytes(PNG.read_bytes())
    (UPath(f"{prefix}/notes.txt", **options)).write_bytes(b"Quarterly notes: revenue up 4%.")
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * 20_000)
    records = [
        {"id": "pdf", "file": str(PDF)},
        {"id": "png", "file": f"{prefix}/scan.png"},
        {"id": "jpeg", "file": f"file://{JPEG}"},
        {"id": "text", "file": f"{prefix}/notes.txt"},
        {"id": "wrong-ext", "file": f"{prefix}/really-a-png.pdf"},
        {"id": "missing", "file": f"{prefix}/gone.pdf"},
        {"id": "oversized", "file": str(big)},
    ]
    loader = AttachmentLoader(opener(options), max_file_bytes=10_000)
    rows = run(anyfast_server, spec(loader, max_error_rate=0.5), records)

    # nothing was sent for the two bad files; the PNG named .pdf is the same content as scan.png: sent once
    assert anyfast_server.request_count() == 4
    assert rows["wrong-ext"]["shared"] is True
    for rid in ("missing", "oversized"):
        assert rows[rid]["status"] == "error" and rows[rid]["error"]["type"] == "invalid_record"
    assert f"'{prefix}/gone.pdf' was not found" in rows["missing"]["error"]["message"]
    assert "larger than max_file_bytes=10000" in rows["oversized"]["error"]["message"]
    # the server answers with what it decoded: the type from the content and the exact byte count
    expected = {"pdf": ("application/pdf", PDF), "png": ("image/png", PNG), "jpeg": ("image/jpeg", JPEG),
                "wrong-ext": ("image/png", PNG)}  # fmt: skip
    for rid, (mime, path) in expected.items():
        assert rows[rid]["status"] == "success", rows[rid]
        assert rows[rid]["output"]["files"] == [
            {"type": mime, "bytes": path.stat().st_size, "sha256": _sha(path.read_bytes())}
        ]
    bodies = [r.body for r in anyfast_server.requests if r.body]
    text_body = next(b for b in bodies if "revenue up 4%" in json.dumps(b))
    user = text_body["messages"][-1]["content"]
    assert user == [
        {"type": "text", "text": "Summarize the attached document."},
        {"type": "text", "text": "Quarterly notes: revenue up 4%."},
    ]
    pdf_part = next(b for b in bodies if "application/pdf" in json.dumps(b))["messages"][-1]["content"][1]
    assert base64.b64decode(pdf_part["image_url"]["url"].split(",", 1)[1]) == PDF.read_bytes()


def test_the_same_file_under_two_names_is_sent_once(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    copy = tmp_path / "copy-of-postmortem.pdf"
    copy.write_bytes(PDF.read_bytes())
    records = [{"id": "a", "file": str(PDF)}, {"id": "b", "file": str(copy)}, {"id": "c", "file": str(PDF2)}]
    rows = run(anyfast_server, spec(AttachmentLoader(), dedup=True), records)
    assert anyfast_server.request_count() == 2
    assert all(row["status"] == "success" for row in rows.values())
    assert rows["a"]["output"] == rows["b"]["output"] and rows["b"]["shared"] is True


def test_the_cache_answers_unchanged_files_and_asks_again_for_a_changed_one(
    anyfast_server: AnyFastTestServer, s3: tuple[str, dict[str, Any]]
) -> None:
    prefix, options = s3
    for name, source in (("one.pdf", PDF), ("two.pdf", PDF2)):
        UPath(f"{prefix}/in/{name}", **options).write_bytes(source.read_bytes())
    records = [{"id": "one", "file": f"{prefix}/in/one.pdf"}, {"id": "two", "file": f"{prefix}/in/two.pdf"}]

    def cached_run() -> dict[str, Any]:
        cache = ResultCache(UPath(f"{prefix}/cache", **options))
        return run(anyfast_server, spec(AttachmentLoader(opener(options)), cache=cache), records)

    cached_run()
    assert anyfast_server.request_count() == 2
    UPath(f"{prefix}/in/two.pdf", **options).write_bytes(PNG.read_bytes())  # same name, new content
    rows = cached_run()
    assert anyfast_server.request_count() == 3  # only the changed file was asked again
    assert rows["one"]["cached"] is True and rows["two"]["cached"] is False
    assert rows["two"]["output"]["files"][0]["type"] == "image/png"


def test_a_rerun_skips_finished_documents_and_sends_the_fixed_one(
    anyfast_server: AnyFastTestServer, tmp_path: Path
) -> None:
    late = tmp_path / "late.pdf"
    records = [{"id": "a", "file": str(PDF)}, {"id": "b", "file": str(PDF2)}, {"id": "late", "file": str(late)}]
    out = UPath(f"file://{tmp_path}/out")
    run_spec = spec(AttachmentLoader(), max_error_rate=0.5)
    run(anyfast_server, run_spec, records, RowStore(out))
    assert anyfast_server.request_count() == 2
    late.write_bytes(JPEG.read_bytes())  # the missing file arrives
    anyfast_server.reset()
    run(anyfast_server, run_spec, records, RowStore(out))
    assert anyfast_server.request_count() == 1  # a and b already have success rows
    [body] = [r.body for r in anyfast_server.requests if r.method == "POST"]
    assert body["messages"][-1]["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_a_template_can_name_several_files_and_a_missing_field_is_named(
    anyfast_server: AnyFastTestServer,
) -> None:
    loader = AttachmentLoader()
    files = RecordAttachments(["{{ record.dir }}/{{ record.first }}", "{{ record.extra | tojson }}"], loader)
    job = RecordsJob(
        template=PromptTemplate("Compare."),
        request=JSON_REQUEST,
        id_field="id",
        attachments=files,
    )
    records = [
        {"id": "both", "dir": str(DOCS), "first": PDF.name, "extra": [str(PNG), str(JPEG)]},
        {"id": "no-extra", "dir": str(DOCS), "first": PDF.name},
    ]
    rows = run(anyfast_server, RunSpec(job=job, schema=None, settings=RunSettings(max_error_rate=0.5)), records)
    assert "field 'extra'" in rows["no-extra"]["error"]["message"]
    [body] = [r.body for r in anyfast_server.requests if r.method == "POST"]
    kinds = [p["image_url"]["url"].split(";")[0] for p in body["messages"][-1]["content"][1:]]
    assert kinds == ["data:application/pdf", "data:image/png", "data:image/jpeg"]


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()

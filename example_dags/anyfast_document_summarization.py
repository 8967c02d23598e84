"""
### Document summarization with AnyFast

Every day, summarize the documents under an object-storage prefix (PDF reports, memos,
postmortems, scanned pages, text files, in any language) into a fixed JSON shape — title,
summary, key points, language — and publish the result as an Airflow Asset that downstream
DAGs can be scheduled on. The model reads each file itself (PDFs and images natively, as
content parts): no text extraction, so tables, layout and scans survive.

**Flow:** `collect_documents` lists `input_prefix` and writes one JSON Lines batch
`{"id": file name, "file": URI}` into the run folder (names only: no document is read
here) → `summarize` streams that batch and, per document, reads the file
(`attachments="file"`), sends it beside the prompt and writes one validated row, plus a
`manifest.json`; a file the model cannot take (missing, too large, an unsupported type)
gets an `error` row naming it → `publish` checks the manifest and emits the
`s3://anyfast-examples/document-summaries` asset event, with the run folder in its extra.

**Downstream:** `@dag(schedule=[Asset("s3://anyfast-examples/document-summaries")])`; read
`triggering_asset_events` for the event's `extra["path"]` (the folder of that day's rows).

**Where:** `input_prefix` (default `s3://anyfast-examples/documents/`); rows go to
`<output_path>/<run_id>/rows/*.jsonl` and `<output_path>/<run_id>/manifest.json` (a retry of the
same run resumes there, paying only for documents without a summary yet).
**Connections:** `anyfast_default`; `storage_conn_id` (default `aws_default`) for the bucket.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pendulum
from pydantic import BaseModel, Field

from airflow_provider_anyfast.compat import Asset, to_storage_path
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

try:  # Airflow 3
    from airflow.sdk import Param, dag, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import dag, task
    from airflow.models.param import Param

log = logging.getLogger(__name__)

DOCUMENT_SUMMARIES = Asset("s3://anyfast-examples/document-summaries")
RUN_FOLDER = "{{ params.output_path.rstrip('/') }}/{{ run_id }}"  # every run has a run_id; manual ones lack ds


class DocumentSummary(BaseModel):
    """What the model must return for each document."""

    title: str = Field(max_length=120, description="a short title; the document's own title if it has one")
    summary: str = Field(max_length=800, description="three to five sentences in English")
    key_points: list[str] = Field(min_length=1, max_length=6, description="decisions, numbers, owners, dates")
    language: str = Field(min_length=2, max_length=16, description="ISO 639-1 code of the document, e.g. 'en'")


PROMPT = "Summarize the attached document, {{ record.id }}."

SYSTEM_PROMPT = (
    "You summarize internal company documents for a weekly digest. Keep numbers, dates and owners "
    "exactly as written. Always write the title, summary and key points in English, whatever the "
    "document's language, and report the document's own language as its ISO 639-1 code."
)


@dag(
    dag_id="anyfast_document_summarization",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Berlin"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["anyfast", "llm", "summarization"],
    doc_md=__doc__,
    params={
        "model": Param("gemini-2.5-flash", type="string", description="AnyFast model name"),
        "input_prefix": Param("s3://anyfast-examples/documents/", type="string", description="folder of documents"),
        "output_path": Param("s3://anyfast-examples/document-summaries", type="string", description="results root"),
        "storage_conn_id": Param("aws_default", type="string", description="connection for the bucket"),
        "anyfast_conn_id": Param("anyfast_default", type="string", description="the anyfast connection"),
    },
)
def anyfast_document_summarization() -> None:
    @task
    def collect_documents(batch_uri: str, **context: Any) -> str:
        """One JSON Lines batch naming the prefix's documents; returns its URI for the next task.

        Every file is listed, whatever its type: one the model cannot read gets an error row that
        names it, rather than vanishing from the run. Hidden and ``_``-prefixed markers are skipped.
        """
        params = context["params"]
        prefix = to_storage_path(params["input_prefix"], params["storage_conn_id"])
        batch = to_storage_path(batch_uri, params["storage_conn_id"])
        batch.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with batch.open("w", encoding="utf-8") as out:
            for doc in sorted(prefix.iterdir(), key=lambda p: p.name):
                if doc.name.startswith((".", "_")) or not doc.is_file():
                    continue
                record = {"id": doc.name, "file": f"{params['input_prefix'].rstrip('/')}/{doc.name}"}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        if not count:
            raise ValueError(f"no documents under {params['input_prefix']}")
        log.info("Collected %d document(s) from %s into %s", count, params["input_prefix"], batch_uri)
        return batch_uri

    summarize = AnyFastRecordsOperator(
        task_id="summarize",
        records=collect_documents(RUN_FOLDER + "/_input/documents.jsonl"),
        id_field="id",
        prompt=PROMPT,
        attachments="file",  # the record field holding the document's URI, read with storage_conn_id
        max_attachment_bytes=10_000_000,  # a larger file gets an error row naming it
        system_prompt=SYSTEM_PROMPT,
        output_schema=DocumentSummary,
        model="{{ params.model }}",
        anyfast_conn_id="{{ params.anyfast_conn_id }}",
        output_path=RUN_FOLDER,
        outlet_asset=False,  # `publish` below declares DOCUMENT_SUMMARIES once the manifest is checked
        storage_conn_id="{{ params.storage_conn_id }}",
        max_concurrency=4,  # at most 4 documents' bytes in memory at once
        requests_per_minute=300,
        max_error_rate=0.1,
        completion_params={"temperature": 0.2},
    )

    @task(outlets=[DOCUMENT_SUMMARIES])
    def publish(result: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Emit the asset event (only when the rows are complete), pointing at this run's folder."""
        counts = result.get("counts", {})
        event = {
            "path": result["path"],
            "documents": result["records"],
            "summarized": counts.get("success", 0),
            "total_tokens": result.get("usage", {}).get("total_tokens", 0),
        }
        context["outlet_events"][DOCUMENT_SUMMARIES].extra = event
        log.info("Published %s: %s", DOCUMENT_SUMMARIES.uri, json.dumps(event))
        return event

    publish(summarize.output)


document_summarization_dag = anyfast_document_summarization()

if __name__ == "__main__":
    document_summarization_dag.test()

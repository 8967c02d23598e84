"""Reading a finished output: read_rows from the manifest, the rows, a mapped list or the folder; keep_fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.results import OutputNotFinishedError, read_rows
from airflow_provider_anyfast.testing.server import AnyFastTestServer

BODY = """
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator
from airflow_provider_anyfast.results import read_rows

RECORDS = [{"sku": f"S-{i}", "name": f"product {i}", "price": i, "text": f"describe {i}"} for i in range(5)]
RECORDS.append({"sku": "S-bad", "name": "no text"})  # refused unsent: its row still carries the kept fields

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False):
    enrich = AnyFastRecordsOperator(
        task_id="enrich", records=RECORDS, id_field="sku", prompt="{{ record.text }}", output_path=OUT,
        keep_fields=["name", "price"], max_error_rate=0.5, chunk_rows=2,
    )
    in_xcom = AnyFastRecordsOperator(
        task_id="in_xcom", records=RECORDS[:2], id_field="sku", prompt="{{ record.text }}", keep_fields=["name"],
    )

    @task
    def downstream(manifest, rows):
        from_manifest = list(read_rows(manifest))
        return {
            "from_manifest": sorted([r["id"], r["status"], r["input"]] for r in from_manifest),
            "successes": len(list(read_rows(manifest, status="success"))),
            "from_folder": len(list(read_rows(OUT))),
            "from_xcom": sorted([r["id"], r["input"]["name"]] for r in read_rows(rows)),
            "mapped_like": len(list(read_rows([manifest, manifest]))),
        }

    downstream(enrich.output, in_xcom.output)
"""


def test_downstream_reads_rows_with_kept_fields(anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_dag(BODY, "reading_results", {"OUT": str(out)})

    assert result.ok, result.output[-3000:]
    got = result.xcom("downstream")
    assert got["from_manifest"] == [
        *[[f"S-{i}", "success", {"name": f"product {i}", "price": i}] for i in range(5)],
        ["S-bad", "error", {"name": "no text", "price": None}],
    ]
    assert (got["successes"], got["from_folder"], got["mapped_like"]) == (5, 6, 12)
    assert got["from_xcom"] == [["S-0", "product 0"], ["S-1", "product 1"]]
    assert anyfast_conn.request_count() == 7  # 5 + 2 sent; the kept fields are copied, not asked for
    # the rows on storage carry them too, for any other reader
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = [json.loads(line) for name in manifest["files"] for line in (out / name).read_text().splitlines()]
    assert {row["id"]: row["input"]["name"] for row in on_disk}["S-3"] == "product 3"


def test_an_unfinished_folder_is_not_read(tmp_path: Path) -> None:
    with pytest.raises(OutputNotFinishedError, match=r"has no manifest\.json: the run that writes there has not"):
        list(read_rows(str(tmp_path)))
    with pytest.raises(ValueError, match="read_rows takes a records task's manifest"):
        list(read_rows({"counts": {}}))

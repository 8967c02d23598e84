"""A mapped AnyFastRecordsOperator (``.partial().expand(records=...)``) in a real ``dag.test()`` run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_provider_anyfast.testing import AnyFastTestServer

BODY = """
import pendulum

from airflow.sdk import DAG, task
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def batches():
        return BATCHES

    parts = batches()
    AnyFastRecordsOperator.partial(
        task_id="to_storage", prompt="Tag: {{ record.text }}", id_field="sku", output_path=OUT
    ).expand(records=parts)
    AnyFastRecordsOperator.partial(task_id="to_xcom", prompt="Tag: {{ record.text }}").expand(records=parts)
"""
BATCHES = [
    [{"sku": "a1", "text": "alpha one"}, {"sku": "a2", "text": "alpha two"}],
    [{"sku": "b1", "text": "beta one"}, {"sku": "b2", "text": "beta two"}, {"sku": "b3", "text": "beta three"}],
]


def test_each_map_index_writes_its_own_folder(anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_dag(BODY, "records_mapped", {"BATCHES": BATCHES, "OUT": str(out)})

    assert result.ok, result.output[-3000:]
    summaries = result.xcoms("to_storage")
    assert sorted(summaries) == [0, 1]
    for index, batch in enumerate(BATCHES):
        folder = out / f"map_index={index}"
        summary = summaries[index]
        assert summary["path"] == f"file://{folder}" and "rows" not in summary
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["records"] == len(batch) and manifest["counts"]["success"] == len(batch)
        ids = [
            json.loads(line)["id"] for name in manifest["files"] for line in (folder / name).read_text().splitlines()
        ]
        assert sorted(ids) == sorted(r["sku"] for r in batch)  # only this map index's records
    # without id_field, a row's id is the record's position within its own map index
    rows = result.xcoms("to_xcom")
    assert {i: sorted(r["id"] for r in rows[i]) for i in rows} == {0: [0, 1], 1: [0, 1, 2]}
    # each task sent each of its records once
    texts = sorted(r.record_text or "" for r in anyfast_conn.requests if r.method == "POST")
    assert texts == sorted(f"Tag: {r['text']}" for batch in BATCHES for r in batch for _ in range(2))

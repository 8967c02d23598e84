"""AnyFastRecordsOperator in ``dag.test()`` runs against each gateway profile of the local server."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault
from airflow_provider_anyfast.testing.profiles import PROFILES

BODY = """
import pendulum

from airflow.sdk import DAG
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, prompt="Answer: {{ record.text }}", output_schema=SCHEMA,
        id_field="id", max_error_rate=1.0, max_concurrency=2, retries=3,
    )
    AnyFastRecordsOperator(
        task_id="typo", records=RECORDS, prompt="Answer: {{ record.text }}", model="gemini-2.5-flsh",
        id_field="id", retries=3,
    )
"""
FAULTS = {
    "nulls": Fault("nulls"),
    "parts": Fault("parts"),
    "blocked": Fault("prompt_blocked"),
    "cut": Fault("truncated"),
    "refused": Fault("status", status=403),
    "limited": Fault("rate_limit", retry_after=0.05),
}
EXPECTED = {"nulls": "success", "parts": "success", "cut": "truncated", "refused": "error", "limited": "success",
            "plain": "success"}  # fmt: skip


@pytest.mark.parametrize("profile", PROFILES)
def test_records_operator_against_each_gateway(anyfast_conn: AnyFastTestServer, run_dag: Any, profile: str) -> None:
    anyfast_conn.profile = profile
    for name, fault in FAULTS.items():
        anyfast_conn.add_rule(f"case {name}", fault, times=1)
    records = [{"id": name, "text": f"case {name}"} for name in [*FAULTS, "plain"]]

    run = run_dag(BODY, f"profiles_{profile.replace('-', '_')}", {"RECORDS": records})

    rows = {row["id"]: row for row in run.xcom("classify")}
    statuses = {rid: row["status"] for rid, row in rows.items()}
    blocked = "invalid_output" if profile == "one-api" else "filtered"  # one-api: a 200 "No candidates returned"
    assert statuses == {**EXPECTED, "blocked": blocked}, statuses
    assert rows["refused"]["error"]["type"] == "refused", "a 403 about one request: its row, the run goes on"
    assert {rid: row["attempts"] for rid, row in rows.items()} == {**dict.fromkeys(rows, 1), "limited": 2}
    # the typo: one free model-list request, no paid one, and no Airflow retry (retries=3 above)
    assert run.state == "failed"
    assert "AirflowFailException" in run.output and "did you mean 'gemini-2.5-flash'" in run.output
    sent = [r.record_text for r in anyfast_conn.requests if r.method == "POST"]
    assert sorted(sent) == sorted(
        [f"Answer: case {name}" for name in EXPECTED] + ["Answer: case blocked"] + ["Answer: case limited"]
    ), "each record paid once (the rate-limited one twice), nothing for the typo task"
    assert anyfast_conn.request_count("/v1/models") == 2

"""Budgets, rate limits, refresh and max_error_rate can change per run: templated, checked once rendered."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator
from airflow_provider_anyfast.testing.server import AnyFastTestServer

BODY = """
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

PARAMS = {"budget": 1, "rate": "1.0", "refresh": "true", "rpm": 6000, "bad": "lots"}
with DAG(DAG_ID, schedule=None, start_date=START, catchup=False, params=PARAMS):
    AnyFastRecordsOperator(
        task_id="budgeted", records=[{"t": str(i)} for i in range(5)], prompt="{{ record.t }}",
        max_total_tokens="{{ params.budget }}", max_error_rate="{{ params.rate }}",
        refresh="{{ params.refresh }}", requests_per_minute="{{ params.rpm }}",
    )
    AnyFastRecordsOperator(
        task_id="bad", records=[{"t": "x"}], prompt="{{ record.t }}", max_total_tokens="{{ params.bad }}",
    )
"""


def test_templated_settings_are_rendered_then_checked(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    result = run_dag(BODY, "templated_settings")

    states = result.task_states()
    assert (states["budgeted"], states["bad"]) == ("success", "failed")
    rows = result.xcom("budgeted")
    failed = [row["error"]["type"] for row in rows if row["status"] != "success"]
    assert failed == ["budget_exhausted"] * 4  # a 1-token budget sends one request, then stops
    assert anyfast_conn.request_count() == 1
    assert "max_total_tokens rendered to 'lots', which is not a number" in result.output


def test_literal_settings_are_still_checked_at_parse_time() -> None:
    with pytest.raises(ValueError, match="max_total_tokens must be a positive number"):
        AnyFastRecordsOperator(task_id="t", records=[], prompt="x", max_total_tokens=-1)
    with pytest.raises(ValueError, match=r"max_error_rate must be between 0\.0 and 1\.0"):
        AnyFastRecordsOperator(task_id="t", records=[], prompt="x", max_error_rate=2)
    AnyFastRecordsOperator(task_id="t", records=[], prompt="x", max_cost="{{ params.cost }}")  # checked later

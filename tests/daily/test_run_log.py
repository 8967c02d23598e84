"""A records run's log: one start line, and retries tallied in the progress line, not one WARNING each."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_anyfast.testing import Fault
from airflow_provider_anyfast.testing.server import AnyFastTestServer

BODY = """
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator, AnyFastChatOperator

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False):
    AnyFastRecordsOperator(
        task_id="records", records=[{"t": f"record {i}"} for i in range(20)], prompt="{{ record.t }}",
        max_concurrency=4, requests_per_minute=6000, max_total_tokens=1_000_000,
    )
"""
CHAT = """
from airflow_provider_anyfast.operators.anyfast import AnyFastChatOperator

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False):
    AnyFastChatOperator(task_id="chat", prompt="one call")
"""
RETRY_WARNING = "call failed (AnyFastRateLimitError"


@pytest.fixture
def fast_retries(anyfast_conn: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch) -> AnyFastTestServer:
    import json

    conn = {"conn_type": "anyfast", "host": anyfast_conn.base_url, "password": anyfast_conn.token,
            "extra": {"max_retry_wait": 5, "backoff_initial": 0.01, "backoff_max": 0.02}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_DEFAULT", json.dumps(conn))
    return anyfast_conn


def test_a_records_run_tallies_its_retries(fast_retries: AnyFastTestServer, run_dag: Any) -> None:
    fast_retries.push_fault(Fault("rate_limit", retry_after=0.01), times=6)
    result = run_dag(BODY, "run_log_records")

    assert result.ok, result.output[-3000:]
    assert fast_retries.request_count() == 26  # 20 records + 6 rate-limited attempts, counted at the server
    assert RETRY_WARNING not in result.output  # no WARNING per retry
    start = next(line for line in result.output.splitlines() if "AnyFast run: " in line)
    assert "AnyFast run: 20 records from the task's record list, model gemini-2.5-flash, output XCom" in start
    assert "limits: max_concurrency=4, requests_per_minute=6000, max_total_tokens=1000000" in start
    assert "cache: off, dedup on" in start
    progress = [line for line in result.output.splitlines() if "AnyFast progress: 20/20" in line]
    assert progress and "retries 6 (429: 6, current wait" in progress[-1]


def test_a_single_call_keeps_its_retry_warning(
    fast_retries: AnyFastTestServer, run_dag: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fast_retries.push_fault(Fault("rate_limit", retry_after=0.01), times=1)
    with caplog.at_level(logging.WARNING):
        result = run_dag(CHAT, "run_log_chat")
    assert result.ok and result.output.count(RETRY_WARNING) >= 1

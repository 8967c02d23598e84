"""A mapped task in a real ``dag.test()`` run: one job budget, in Redis, over its map indexes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.core.limits.account import account_key
from airflow_provider_anyfast.testing import AnyFastTestServer

BODY = """
import pendulum

from airflow.sdk import DAG, task
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def shards():
        return SHARDS

    AnyFastRecordsOperator.partial(
        task_id="classify", prompt="Tag: {{ record.text }}", id_field="id", output_path=OUT,
        max_total_tokens=BUDGET, max_error_rate=1.0, max_concurrency=1,
    ).expand(records=shards())
"""
SHARDS = [[{"id": f"{s}-{i}", "text": f"shard {s} record {i}"} for i in range(8)] for s in range(3)]


def test_a_job_budget_counts_across_map_indexes_of_one_run(
    anyfast_server: AnyFastTestServer,
    redis_server: Any,
    redis_client: Any,
    run_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LIMITS_REDIS", redis_server.url)
    conn = {"conn_type": "anyfast", "host": anyfast_server.base_url, "password": anyfast_server.token,
            "extra": {"max_retry_wait": 5, "limits_conn_id": "limits_redis"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_DEFAULT", json.dumps(conn))
    out = tmp_path / "out"
    result = run_dag(BODY, "shared_budget", {"SHARDS": SHARDS, "OUT": str(out), "BUDGET": 200})
    assert result.ok, result.output[-3000:]

    rows = [
        json.loads(line) for path in sorted(out.glob("map_index=*/rows/*")) for line in path.read_text().splitlines()
    ]
    assert len(rows) == 24  # every record of every shard has a row
    answered = [r for r in rows if r["status"] == "success"]
    spent = sum(r["usage"]["total_tokens"] for r in answered)
    per_request = max(r["usage"]["total_tokens"] for r in answered)
    assert 200 <= spent <= 200 + per_request  # one in flight at a time: one request past the budget at most
    assert 0 < len(answered) < 8  # per instance, each shard would have spent 200: the job spent 200 in all
    assert {r["error"]["type"] for r in rows if r["status"] != "success"} == {"budget_exhausted"}
    assert anyfast_server.request_count() == len(answered)
    account = account_key(anyfast_server.base_url, anyfast_server.token)
    key = f"{account}:budget:job:{result.dag_id}/classify/{result.run_id}"
    assert float(redis_client.hget(key, "tokens:spent")) == spent  # the job's spend, kept where every worker sees it

"""One task process of a fleet: runs AnyFastRecordsOperator.execute() as a worker would.

``python fleet_worker.py '<json>'``: the connections come as environment variables (an
``anyfast`` one whose extras name the Redis connection), the summary goes to stdout as
one JSON line. Used by tests/limits/test_fleet.py and benchmarks/bench_fleet.py.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any


def main(config: dict[str, Any]) -> int:
    home = tempfile.mkdtemp(prefix="anyfast-fleet-home-")
    extras = {"max_retry_wait": 30, **config.get("extras", {})}
    if config.get("redis_url"):
        extras["limits_conn_id"] = "limits_redis"
        os.environ["AIRFLOW_CONN_LIMITS_REDIS"] = config["redis_url"]
    conn = {"conn_type": "anyfast", "host": config["base_url"], "password": config["token"], "extra": extras}
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": home,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
            "AIRFLOW_CONN_ANYFAST_DEFAULT": json.dumps(conn),
        }
    )
    from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

    first = int(config.get("first", 0))
    records = [{"id": f"R-{first + i}", "text": f"ticket {first + i}"} for i in range(int(config["records"]))]
    operator = AnyFastRecordsOperator(
        task_id=config.get("task_id", "classify"),
        records=records,
        prompt="Classify: {{ record.text }}",
        output_schema={"type": "object", "properties": {"category": {"type": "string"}}, "required": ["category"]},
        id_field="id",
        output_path=config["output_path"],
        max_concurrency=int(config.get("concurrency", 4)),
        max_total_tokens=config.get("max_total_tokens"),
        max_error_rate=1.0,
        completion_params={"max_tokens": 50},
        budget_scope=config.get("budget_scope"),
        outlet_asset=False,
    )
    ti = type("TI", (), {"map_index": int(config.get("map_index", -1)), "dag_id": "fleet"})()
    context: Any = {"ds": "2026-01-01", "run_id": config.get("run_id", "run-1"), "params": {}, "ti": ti}
    summary = operator.execute(context, **_as_task_runner(operator))
    print(json.dumps({"counts": summary.get("counts"), "usage": summary.get("usage")}), flush=True)
    return 0


def _as_task_runner(operator: Any) -> dict[str, Any]:
    """The marker the Task Runner passes to ``execute()`` (else Airflow warns about a direct call)."""
    try:
        from airflow.sdk.bases.operator import ExecutorSafeguard
    except ImportError:  # Airflow 2.11
        return {}
    return {f"{type(operator).__name__}__sentinel": ExecutorSafeguard.sentinel_value}


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))

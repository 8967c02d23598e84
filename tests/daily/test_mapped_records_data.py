"""Records typed into a mapped task (``.partial(records=[...])`` or ``.expand(records=[[...]])``) are data too."""

from __future__ import annotations

from typing import Any

from airflow_provider_anyfast.testing.server import AnyFastTestServer

BODY = """
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False):
    AnyFastRecordsOperator.partial(
        task_id="mapped", records=[{"id": "a", "text": "typed {{ ds }} and {# kept #} as is"}], id_field="id",
    ).expand(prompt=["one: {{ record.text }}", "two: {{ record.text }}"])
    AnyFastRecordsOperator.partial(task_id="expanded", id_field="id", prompt="three: {{ record.text }}").expand(
        records=[[{"id": "b", "text": "typed {{ ds }} and {# kept #} as is"}]]
    )
"""


def test_records_typed_into_a_mapped_task_are_not_rendered(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    result = run_dag(BODY, "mapped_records_data")

    assert result.ok, result.output[-3000:]
    sent = sorted(r.body["messages"][-1]["content"] for r in anyfast_conn.requests if r.method == "POST")
    assert sent == [f"{n}: typed {{{{ ds }}}} and {{# kept #}} as is" for n in ("one", "three", "two")]

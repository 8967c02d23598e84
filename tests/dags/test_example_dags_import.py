"""The example DAGs parse cleanly and carry what a production DAG needs."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLE_DAG_IDS, EXAMPLE_DAGS

OUR_CODE = (str(EXAMPLE_DAGS), str(Path(__file__).resolve().parents[2] / "airflow_provider_anyfast"))


@pytest.fixture(scope="module")
def parsed() -> tuple[Any, list[warnings.WarningMessage]]:
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    return bag, list(caught)


def test_every_example_dag_imports_without_errors_or_warnings(parsed: tuple[Any, list[Any]]) -> None:
    bag, caught = parsed
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(EXAMPLE_DAG_IDS)
    ours = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if str(w.filename).startswith(OUR_CODE)]
    assert ours == []
    assert {path: found for path, found in bag.captured_warnings.items() if path.startswith(OUR_CODE)} == {}


@pytest.mark.parametrize("dag_id", EXAMPLE_DAG_IDS)
def test_example_dag_is_production_shaped(parsed: tuple[Any, list[Any]], dag_id: str) -> None:
    dag = parsed[0].dags[dag_id]
    assert dag.catchup is False
    assert dag.schedule in ("@daily", "@hourly")
    assert dag.start_date.tzinfo is not None and dag.start_date.utcoffset() is not None
    assert "anyfast" in dag.tags and len(dag.tags) >= 2
    assert dag.doc_md and dag.doc_md.strip().startswith("###")
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_delay >= timedelta(minutes=1), task.task_id
    params = dag.params.dump()
    assert params["model"] == "gemini-2.5-flash"
    assert params["storage_conn_id"] == "aws_default"
    assert params["anyfast_conn_id"] == "anyfast_default"


def test_records_operators_take_conn_ids_and_model_from_params(parsed: tuple[Any, list[Any]]) -> None:
    for dag_id in EXAMPLE_DAG_IDS:
        [op] = [t for t in parsed[0].dags[dag_id].tasks if t.task_type == "AnyFastRecordsOperator"]
        assert op.model == "{{ params.model }}"
        assert op.storage_conn_id == "{{ params.storage_conn_id }}"
        assert op.anyfast_conn_id == "{{ params.anyfast_conn_id }}"
        assert {"model", "storage_conn_id", "anyfast_conn_id", "output_path"} <= set(op.template_fields)
        assert 0 < op.max_error_rate <= 0.1


def test_summaries_are_published_as_an_asset(parsed: tuple[Any, list[Any]]) -> None:
    dag = parsed[0].dags["anyfast_document_summarization"]
    outlets = {getattr(o, "uri", None) for o in dag.get_task("publish").outlets}
    assert outlets == {"s3://anyfast-examples/document-summaries"}

"""Run the example DAGs as shipped: a copy of ``example_dags/`` inside the DAGs folder, a fresh DB.

Airflow 3.3 runs (``dag.test()``) only DAGs defined in files inside the configured DAGs
folder, which the suite points at a temporary one: the example folder (DAG files and their
``data/``) is copied there for this module's tests, and removed afterwards so other
tests' runs do not parse it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
EXAMPLE_DAG_IDS = ("anyfast_document_summarization", "anyfast_product_enrichment", "anyfast_ticket_classification")


def example_module(dag_id: str) -> ModuleType:
    """The example DAG's module, imported from the repo (for its pydantic models and helpers)."""
    name = f"example_dag_{dag_id}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLE_DAGS / f"{dag_id}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def example_dags_copy() -> Iterator[Path]:
    """``example_dags/`` copied into the DAGs folder with a fresh metadata DB; removed afterwards."""
    from airflow.utils.db import resetdb

    resetdb()
    target = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "anyfast_example_dags"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(EXAMPLE_DAGS, target, ignore=shutil.ignore_patterns("__pycache__"))
    yield target
    shutil.rmtree(target, ignore_errors=True)


@dataclass
class ExampleRun:
    """How one ``dag.test()`` run ended: its state, task states and XComs."""

    dag_id: str
    run_id: str
    state: str

    def task_states(self) -> dict[str, str | None]:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run = session.query(DagRun).filter_by(dag_id=self.dag_id, run_id=self.run_id).one()
            return {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}

    def xcom(self, task_id: str) -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_id, key="return_value")
            values = [XComModel.deserialize_value(row) for row in session.scalars(query)]
        assert len(values) == 1, f"expected one XCom from {task_id}, got {len(values)}"
        return values[0]


@pytest.fixture
def run_example(example_dags_copy: Path) -> Any:
    """``run_example(dag_id, **conf)``: parse the copied folder and ``dag.test()`` the DAG with ``conf``."""
    from airflow.dag_processing.dagbag import DagBag

    def run(dag_id: str, **conf: Any) -> ExampleRun:
        bag = DagBag(dag_folder=str(example_dags_copy))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id} in {sorted(bag.dag_ids)}"
        run = dag.test(run_conf=conf)
        return ExampleRun(dag_id, run.run_id, str(getattr(run.state, "value", run.state)))

    return run

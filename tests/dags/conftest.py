"""Run the example DAGs as shipped: a copy of ``example_dags/`` inside the DAGs folder.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from dagrun import DagRunner, DagRunResult

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
def example_dags_copy(airflow_db: None) -> Iterator[Path]:
    """``example_dags/`` copied into the DAGs folder; removed afterwards."""
    target = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "anyfast_example_dags"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(EXAMPLE_DAGS, target, ignore=shutil.ignore_patterns("__pycache__"))
    yield target
    shutil.rmtree(target, ignore_errors=True)


@pytest.fixture
def run_example(dag_runner: DagRunner, example_dags_copy: Path) -> Callable[..., DagRunResult]:
    """``run_example(dag_id, **conf)``: parse the copied folder and ``dag.test()`` the DAG with ``conf``."""

    def run(dag_id: str, **conf: Any) -> DagRunResult:
        return dag_runner.run(example_dags_copy, dag_id, run_conf=conf)

    return run

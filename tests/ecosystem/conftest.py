"""Run DAG files for the ecosystem tests (decorator, assets) on Airflow 2.11 and 3.x alike.

Airflow 3.3 only runs a DAG defined in a file inside the DAGs folder, so each test writes
its DAG there, parses it with DagBag and calls ``dag.test()``; results are read back from
the metadata DB (XComs, asset events), which is reset once per session.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DAG_HEADER = """\
from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG, Asset, dag, task
except ImportError:  # Airflow 2.11
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import dag, task
    from airflow.models.dag import DAG

START = pendulum.datetime(2026, 1, 1, tz="UTC")
"""


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB in the suite's isolated AIRFLOW_HOME (once per session)."""
    from airflow.utils.db import resetdb

    resetdb()


@dataclass
class Ran:
    """How one ``dag.test()`` ended, and what its tasks left in the metadata DB."""

    dag_id: str
    run_id: str
    state: str

    def xcoms(self, task_id: str, key: str = "return_value") -> dict[int, Any]:
        """Every map index's XCom of ``task_id`` (-1 for an unmapped task)."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        query = XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_id, key=key)
        with create_session() as session:
            return {row.map_index: XComModel.deserialize_value(row) for row in session.scalars(query)}

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        return self.xcoms(task_id, key)[-1]

    def rendered(self, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """The task's rendered template fields, as the UI shows them."""
        from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
        from airflow.utils.session import create_session
        from sqlalchemy import select

        query = select(RTIF.rendered_fields).where(
            RTIF.dag_id == self.dag_id, RTIF.run_id == self.run_id, RTIF.task_id == task_id,
            RTIF.map_index == map_index,
        )  # fmt: skip
        with create_session() as session:
            return dict(session.scalars(query).one())


def _asset_events(uri: str) -> list[dict[str, Any]]:
    """The extras of every asset (2.11: dataset) event recorded for ``uri``, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel  # 2.11: the dataset tables, shimmed
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.uri == uri)
    ).order_by(AssetEvent.id)
    with create_session() as session:
        return [dict(event.extra or {}) for event in session.scalars(query)]


@pytest.fixture
def asset_events() -> Callable[[str], list[dict[str, Any]]]:
    """``asset_events(uri)``: the extras of the events recorded for that asset, oldest first."""
    return _asset_events


RunDag = Callable[[str, str], Ran]


@pytest.fixture
def run_dag(airflow_db: None) -> Iterator[RunDag]:
    """``run_dag(body, dag_id)``: write ``DAG_HEADER + body`` into the DAGs folder and test it."""
    written: list[Path] = []

    def run(body: str, dag_id: str) -> Ran:
        from airflow.dag_processing.dagbag import DagBag  # 2.11: shimmed in tests/conftest.py

        folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        path = folder / f"eco_{uuid.uuid4().hex[:12]}.py"
        path.write_text(DAG_HEADER + f"DAG_ID = {dag_id!r}\n\n" + textwrap.dedent(body))
        written.append(path)
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id!r} in {path}"
        dag_run = dag.test()
        return Ran(dag_id, dag_run.run_id, str(getattr(dag_run.state, "value", dag_run.state)))

    yield run
    for path in written:
        path.unlink(missing_ok=True)

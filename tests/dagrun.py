"""Run a DAG file with ``dag.test()`` and read back what the run left in the metadata DB.

Airflow 3.3 only runs a DAG defined in a file inside the configured DAGs folder, so a test
writes its DAG source there (removed when the test ends), parses it with DagBag and calls
``dag.test()``. One implementation for every suite, on Airflow 3.x and 2.11 alike (the 2.11
names it uses are shimmed in ``tests/conftest.py``, which hands it out as fixtures).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: How much of a run's output is echoed again, for pytest's report of a failing test.
ECHO_CHARS = 20_000


@dataclass
class DagRunResult:
    """How a ``dag.test()`` run ended, what it printed, and what it left in the metadata DB."""

    dag_id: str
    run_id: str
    state: str
    output: str = field(default="", repr=False)  # what the run printed and logged, task logs included

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def _xcom_rows(self, task_id: str | None = None, key: str | None = None) -> list[tuple[str, str, int, Any]]:
        """(task_id, key, map_index, value) of the run's XComs, of one task and key when given."""
        from airflow.models.xcom import XComModel  # 2.11: shimmed in tests/conftest.py
        from airflow.utils.session import create_session

        query = XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_id, key=key)
        with create_session() as session:
            rows: list[Any] = list(session.scalars(query))
            return [(row.task_id, row.key, row.map_index, XComModel.deserialize_value(row)) for row in rows]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """One XCom value; KeyError when the task pushed none under ``key``."""
        for _, _, index, value in self._xcom_rows(task_id, key):
            if index == map_index:
                return value
        raise KeyError(f"no XCom {key!r} from {task_id}[{map_index}] in {self.run_id}")

    def xcoms(self, task_id: str, key: str = "return_value") -> dict[int, Any]:
        """The XCom of every map index of a (mapped) task, by map index (-1: unmapped)."""
        pairs = [(index, value) for _, _, index, value in self._xcom_rows(task_id, key)]
        return dict(sorted(pairs, key=lambda pair: pair[0]))

    def all_xcoms(self) -> list[tuple[str, str, Any]]:
        """(task_id, key, value) of every XCom this run pushed."""
        return [(task_id, key, value) for task_id, key, _, value in self._xcom_rows()]

    def instance_states(self) -> dict[tuple[str, int], str | None]:
        """The state of every task instance, by (task_id, map_index)."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run = session.query(DagRun).filter_by(dag_id=self.dag_id, run_id=self.run_id).one()
            return {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances(session=session)}

    def task_states(self) -> dict[str, str | None]:
        """The state of each unmapped task, by task id (``instance_states`` has mapped ones too)."""
        return {task_id: state for (task_id, index), state in self.instance_states().items() if index == -1}

    def tries(self, task_id: str, map_index: int = -1) -> int:
        """The try number the task ended on (1 when it was not retried)."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id, map_index=map_index)
                .one()
            )
            return int(ti.try_number)

    def rendered_fields(self, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """The task's rendered template fields as stored for the UI; {} when none were."""
        from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(RTIF)
                .filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id, map_index=map_index)
                .one_or_none()
            )
            return dict(row.rendered_fields) if row is not None else {}

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """The extras of the asset (2.11: dataset) events this run recorded for ``uri``, oldest first."""
        from airflow.models.asset import AssetEvent, AssetModel  # 2.11: the dataset tables, shimmed
        from airflow.utils.session import create_session
        from sqlalchemy import select

        query = (
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri, AssetEvent.source_dag_id == self.dag_id)
            .where(AssetEvent.source_run_id == self.run_id)
            .order_by(AssetEvent.id)
        )
        with create_session() as session:
            return [dict(event.extra or {}) for event in session.scalars(query)]


RunDag = Callable[..., DagRunResult]


def dags_folder() -> Path:
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def dag_source(body: str, dag_id: str, constants: dict[str, Any] | None = None, header: str = "") -> str:
    """A DAG module: ``header``, then ``DAG_ID`` and ``constants`` as module-level literals, then ``body``."""
    names = {"DAG_ID": dag_id, **(constants or {})}
    lines = [f"{name} = {json.loads(json.dumps(value))!r}" for name, value in names.items()]
    head = textwrap.dedent(header).strip()
    head = "from __future__ import annotations\n\n" + (head + "\n\n" if head else "")
    return head + "\n".join(lines) + "\n\n" + textwrap.dedent(body)


def parse(path: Path) -> Any:
    """Parse a DAG file or folder; returns the DagBag (``import_errors`` tells what failed)."""
    from airflow.dag_processing.dagbag import DagBag  # 2.11: shimmed in tests/conftest.py

    return DagBag(dag_folder=str(path))


class DagRunner:
    """Writes DAG files into the DAGs folder, runs them with ``dag.test()``, removes them afterwards.

    ``header`` (a suite's imports) goes at the top of every DAG file it writes. One ``dag_id``
    has one file at a time: written again only when its source changed, replacing the old
    one, so a rerun (a resume) parses the same file and the folder never holds two definitions.
    """

    def __init__(self, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, header: str = "") -> None:
        self.capfd = capfd
        self.caplog = caplog
        self.header = header
        self.written: dict[str, tuple[str, Path]] = {}  # dag_id -> (source, file)

    def write(self, body: str, dag_id: str, constants: dict[str, Any] | None = None) -> Path:
        """The DAG file of ``body``, with ``DAG_ID`` and the ``constants`` as module-level names."""
        source = dag_source(body, dag_id, constants, self.header)
        previous = self.written.get(dag_id)
        if previous is not None and previous[0] == source:
            return previous[1]
        if previous is not None:
            previous[1].unlink(missing_ok=True)
        folder = dags_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{dag_id}_{uuid.uuid4().hex[:8]}.py"
        path.write_text(source)
        self.written[dag_id] = (source, path)
        return path

    def load(self, body: str, dag_id: str, constants: dict[str, Any] | None = None) -> Any:
        """Write and parse only (to check parse-time errors); returns the DagBag."""
        return parse(self.write(body, dag_id, constants))

    def run(
        self, body: str | Path, dag_id: str, constants: dict[str, Any] | None = None, **test_kwargs: Any
    ) -> DagRunResult:
        """``dag.test(**test_kwargs)`` the DAG ``dag_id``; a parse error fails the test.

        ``body`` is DAG code (see ``write``) or a DAG file or folder already in the DAGs folder.
        ``result.output`` holds what the run printed and logged, task logs included.
        """
        path = body if isinstance(body, Path) else self.write(body, dag_id, constants)
        assert path.is_relative_to(dags_folder()), f"Airflow runs only DAGs inside the DAGs folder, not {path}"
        self.capfd.readouterr()
        self.caplog.clear()
        try:
            bag = parse(path)
            assert not bag.import_errors, f"DAG file failed to parse: {bag.import_errors}"
            dag = bag.get_dag(dag_id)
            assert dag is not None, f"{path} defines no DAG {dag_id!r} (found {sorted(bag.dag_ids)})"
            run = dag.test(**test_kwargs)
        finally:
            out, err = self.capfd.readouterr()
            sys.stdout.write(out[-ECHO_CHARS:])  # keep it visible in pytest's report of a failing test
            sys.stderr.write(err[-ECHO_CHARS:])
        state = str(getattr(run.state, "value", run.state))
        return DagRunResult(dag_id, run.run_id, state, output=out + err + self.caplog.text)

    def cleanup(self) -> None:
        for _, path in self.written.values():
            path.unlink(missing_ok=True)


#: A DAG file header that runs on Airflow 2.11 and 3.x alike: ``DAG``, ``Asset``, ``dag``, ``task`` and
#: ``START``, each from wherever the running Airflow keeps it (suites hand it to ``dag_runner``).
PORTABLE_DAG_HEADER = """\
import pendulum

try:
    from airflow.sdk import DAG, Asset, dag, task
except ImportError:  # Airflow 2.11
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import dag, task
    from airflow.models.dag import DAG

START = pendulum.datetime(2026, 1, 1, tz="UTC")
"""

"""Run real DAGs with ``dag.test()``: write the DAG file into the DAGs folder, parse it, run it.

Airflow 3.3 only runs a DAG that lives in a file inside the configured DAGs folder, so
tests write their DAG source there (one uniquely named file each, removed afterwards),
and read back what tasks returned from the metadata DB. The metadata DB is reset once
per session. General on purpose: example-DAG tests can pass ``run_dag`` a DAG file's Path.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB in the suite's isolated AIRFLOW_HOME (about 2.5 s, once)."""
    from airflow.utils.db import resetdb

    resetdb()


@dataclass
class DagRunResult:
    """How a ``dag.test()`` run ended, with access to its XComs and task states."""

    dag_id: str
    run_id: str
    state: str
    output: str = field(default="", repr=False)  # what the run printed and logged, task logs included

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def _xcom_rows(self, task_id: str, key: str) -> list[Any]:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_id, key=key)
            found: list[Any] = list(session.scalars(query))
            return [(row.map_index, XComModel.deserialize_value(row)) for row in found]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """One XCom value; KeyError when the task pushed none under ``key``."""
        for index, value in self._xcom_rows(task_id, key):
            if index == map_index:
                return value
        raise KeyError(f"no XCom {key!r} from {task_id}[{map_index}] in {self.run_id}")

    def xcoms(self, task_id: str, key: str = "return_value") -> dict[int, Any]:
        """XComs of every map index of a (mapped) task."""
        return dict(sorted(self._xcom_rows(task_id, key), key=lambda pair: pair[0]))

    def task_states(self) -> dict[tuple[str, int], str | None]:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run = session.query(DagRun).filter_by(dag_id=self.dag_id, run_id=self.run_id).one()
            return {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances(session=session)}


def dags_folder() -> Path:
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def load_dag_file(path: Path) -> Any:
    """Parse one DAG file; returns the DagBag (``import_errors`` tells what failed)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path))


def run_loaded(path: Path, dag_id: str, **test_kwargs: Any) -> DagRunResult:
    """Parse ``path`` and ``dag.test()`` the DAG ``dag_id``; a parse error fails the test."""
    bag = load_dag_file(path)
    assert not bag.import_errors, f"DAG file failed to parse: {bag.import_errors}"
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"{path} defines no DAG {dag_id!r} (found {sorted(bag.dag_ids)})"
    run = dag.test(**test_kwargs)
    state = getattr(run.state, "value", run.state)
    return DagRunResult(dag_id=dag_id, run_id=run.run_id, state=str(state))


class DagWriter:
    """Writes DAG sources into the DAGs folder and removes them when the test ends."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def write(self, source: str, name: str | None = None) -> Path:
        folder = dags_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name or 'dag_' + uuid.uuid4().hex[:12]}.py"
        path.write_text(textwrap.dedent(source))
        self.paths.append(path)
        return path

    def cleanup(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


@pytest.fixture
def dag_writer(airflow_db: None) -> Iterator[DagWriter]:
    writer = DagWriter()
    yield writer
    writer.cleanup()


RunDag = Callable[..., DagRunResult]


def dag_source(body: str, dag_id: str, constants: dict[str, Any] | None = None) -> str:
    """A DAG module: ``DAG_ID`` and ``constants`` as module-level literals, then ``body``."""
    names = {"DAG_ID": dag_id, **(constants or {})}
    lines = ["from __future__ import annotations", ""]
    lines += [f"{name} = {json.loads(json.dumps(value))!r}" for name, value in names.items()]
    return "\n".join(lines) + "\n\n" + textwrap.dedent(body)


@pytest.fixture
def load_dag(dag_writer: DagWriter) -> Callable[..., Any]:
    """``load_dag(body, dag_id, constants) -> DagBag``: parse only, to check parse-time errors."""

    def load(body: str, dag_id: str, constants: dict[str, Any] | None = None) -> Any:
        return load_dag_file(dag_writer.write(dag_source(body, dag_id, constants)))

    return load


@pytest.fixture
def run_dag(dag_writer: DagWriter, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> RunDag:
    """``run_dag(body, dag_id, constants=None, **dag_test_kwargs) -> DagRunResult``.

    ``body`` is DAG code using ``DAG_ID`` and the ``constants`` as module-level names, or the
    Path of a DAG file (an example DAG), copied into the DAGs folder unless it is there. Run
    the same ``dag_id`` again (a resume) and its file is reused, or replaced when the source
    changed, so the folder never holds two definitions of one DAG. ``result.output`` holds
    what the run printed and logged, task logs included.
    """
    written: dict[str, tuple[str, Path]] = {}

    def place(source: str, dag_id: str, name: str | None = None) -> Path:
        previous = written.get(dag_id)
        if previous is not None and previous[0] == source:
            return previous[1]
        if previous is not None:
            previous[1].unlink(missing_ok=True)
        path = dag_writer.write(source, name)
        written[dag_id] = (source, path)
        return path

    def run(body: str | Path, dag_id: str, constants: dict[str, Any] | None = None, **test_kwargs: Any) -> DagRunResult:
        if isinstance(body, Path):
            path = body if body.parent == dags_folder() else place(body.read_text(), dag_id, body.stem)
        else:
            path = place(dag_source(body, dag_id, constants), dag_id)
        capfd.readouterr()
        caplog.clear()
        try:
            result = run_loaded(path, dag_id, **test_kwargs)
        finally:
            out, err = capfd.readouterr()
            sys.stdout.write(out)  # keep it visible in pytest's report of a failing test
            sys.stderr.write(err)
        result.output = out + err + caplog.text
        return result

    return run

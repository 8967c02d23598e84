"""Fixtures for the reliability tests: fast-retry connections, real ``dag.test()`` runs, row readers.

Everything runs against real parts: the local AnyFast server on 127.0.0.1 and, where a
test says so, moto S3. A DAG is written into the suite's DAGs folder and run with
``dag.test()`` (Airflow 3.3 only runs DAGs that live in that folder), so the operator
goes through Airflow's own task runner: templating, XCom, task retries, task logs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer

#: Retries in milliseconds, not seconds: the retry *logic* is under test, not the clock.
FAST_EXTRAS: dict[str, Any] = {"max_retry_wait": 1, "backoff_initial": 0.01, "backoff_max": 0.05}
RECORD_REF = re.compile(r"\brecord (rec-\d+)\b")

SetConn = Callable[..., dict[str, Any]]


@pytest.fixture
def set_conn(anyfast_server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch) -> SetConn:
    """``set_conn(extra={...}, **fields)``: (re)define ``anyfast_default`` on the local server, fast retries."""

    def define(conn_id: str = "anyfast_default", *, extra: dict[str, Any] | None = None, **fields: Any) -> dict:
        conn: dict[str, Any] = {"conn_type": "anyfast", "host": anyfast_server.base_url,
                                "password": anyfast_server.token}  # fmt: skip
        conn.update(fields)
        conn["extra"] = {**FAST_EXTRAS, **(extra or {})}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn

    return define


def record_of(body: Any) -> str | None:
    """The record id a logged request was about: from its first user message (re-asks keep it)."""
    if not isinstance(body, dict):
        return None
    for message in body.get("messages") or []:
        if message.get("role") == "user":
            match = RECORD_REF.search(str(message.get("content")))
            return match.group(1) if match else None
    return None


def make_records(n: int, start: int = 0) -> list[dict[str, Any]]:
    """Records whose prompt names their id, so each server log entry maps back to one record."""
    return [{"id": f"rec-{i:05d}", "text": f"item number {i}"} for i in range(start, start + n)]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def folder_rows(root: Path) -> list[dict[str, Any]]:
    """Every row the manifest of a finished folder lists (asserting it lists every part there)."""
    manifest = json.loads((root / "manifest.json").read_text())
    on_disk = sorted(str(p.relative_to(root)) for p in (root / "rows").glob("*.jsonl"))
    assert sorted(manifest["files"]) == on_disk, "the manifest must list exactly the part files present"
    return [json.loads(line) for name in manifest["files"] for line in (root / name).read_text().splitlines()]


def part_rows(root: Path) -> list[dict[str, Any]]:
    """Whole, readable rows of every part file under ``root/rows`` (no manifest needed: a crashed run)."""
    rows = []
    for part in sorted((root / "rows").glob("part-*.jsonl")):
        for line in part.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):
                rows.append(json.loads(line))
    return rows


def exactly_once(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    counts = Counter(row["id"] for row in rows)
    repeated = {rid: n for rid, n in counts.items() if n > 1}
    assert not repeated, f"ids with more than one row: {repeated}"
    return {row["id"]: row for row in rows}


@pytest.fixture(scope="session")
def reliability_db() -> None:
    """A fresh metadata DB in the suite's isolated AIRFLOW_HOME (once per session)."""
    from airflow.utils.db import resetdb

    resetdb()


@dataclass
class DagRun:
    """How a ``dag.test()`` run ended, what it printed, and what it left in the metadata DB."""

    dag_id: str
    run_id: str
    state: str
    output: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def xcoms(self) -> list[tuple[str, str, Any]]:
        """(task_id, key, value) of every XCom this run pushed."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id)
            rows: list[Any] = list(session.scalars(query))
            return [(x.task_id, x.key, XComModel.deserialize_value(x)) for x in rows]

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        for tid, k, value in self.xcoms():
            if (tid, k) == (task_id, key):
                return value
        raise KeyError(f"no XCom {key!r} from {task_id} in {self.run_id}")

    def rendered_fields(self, task_id: str) -> dict[str, Any]:
        """The rendered template fields Airflow stored for the task (RenderedTaskInstanceFields)."""
        from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.query(RTIF).filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id).one_or_none()
            return dict(row.rendered_fields) if row is not None else {}

    def tries(self, task_id: str) -> int:
        """The try number the task ended on (1 when it was not retried)."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            ti = session.query(TaskInstance).filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id).one()
            return int(ti.try_number)


DAG_HEADER = """
from __future__ import annotations

import pendulum
from datetime import timedelta

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

"""


def dag_source(body: str, dag_id: str, constants: dict[str, Any]) -> str:
    """A DAG module: ``DAG_ID`` and the constants as literals, then ``body``."""
    lines = [f"{name} = {value!r}" for name, value in {"DAG_ID": dag_id, **constants}.items()]
    return DAG_HEADER + "\n".join(lines) + "\n\n" + textwrap.dedent(body)


class DagRunner:
    """Writes DAG files into the DAGs folder, runs them with ``dag.test()``, removes them afterwards."""

    def __init__(self, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        self.capfd = capfd
        self.caplog = caplog
        self.paths: list[Path] = []

    def write(self, body: str, dag_id: str, constants: dict[str, Any]) -> Path:
        folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"reliability_{dag_id}_{uuid.uuid4().hex[:8]}.py"
        path.write_text(dag_source(body, dag_id, constants))
        self.paths.append(path)
        return path

    def load(self, path: Path, dag_id: str) -> Any:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, f"DAG file failed to parse: {bag.import_errors}"
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"{path} defines no DAG {dag_id!r}"
        return dag

    def run(self, path: Path, dag_id: str, **test_kwargs: Any) -> DagRun:
        dag = self.load(path, dag_id)
        self.capfd.readouterr()
        self.caplog.clear()
        try:
            run = dag.test(**test_kwargs)
        finally:
            out, err = self.capfd.readouterr()
            sys.stdout.write(out[-20000:])  # visible in pytest's report of a failing test
            sys.stderr.write(err[-20000:])
        state = str(getattr(run.state, "value", run.state))
        return DagRun(dag_id=dag_id, run_id=run.run_id, state=state, output=out + err + self.caplog.text)

    def cleanup(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


@pytest.fixture
def dag_runner(
    reliability_db: None, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[DagRunner]:
    runner = DagRunner(capfd, caplog)
    yield runner
    runner.cleanup()


@pytest.fixture(scope="session")
def kit() -> Any:
    """The helper functions above (test modules cannot import a conftest under importlib mode)."""
    return sys.modules[__name__]

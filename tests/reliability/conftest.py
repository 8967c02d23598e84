"""Fixtures for the reliability tests: fast-retry connections, the DAG files' imports, row readers.

Everything runs against real parts: the local AnyFast server on 127.0.0.1 and, where a
test says so, moto S3. DAGs run through the suite-wide ``dag_runner`` (tests/conftest.py),
so the operator goes through Airflow's own task runner: templating, XCom, task retries, task logs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
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


RUN_SCRIPT = """
import sys

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2.11
    from airflow.models.dagbag import DagBag

dag = DagBag(dag_folder=sys.argv[1]).get_dag(sys.argv[2])
run = dag.test()
state = str(getattr(run.state, "value", run.state))
print(f"DAG RUN STATE: {state}", flush=True)
sys.exit(0 if state == "success" else 1)
"""


def start_dag_process(dag_file: Path, dag_id: str, log: Path) -> subprocess.Popen[bytes]:
    """``dag.test()`` in a child process and process group of its own, as a real worker runs a task:
    a kill (SIGKILL, SIGTERM) reaches all of it, and nothing it leaves running can hide in the test process."""
    script = log.parent / "run_dag.py"
    script.write_text(textwrap.dedent(RUN_SCRIPT))
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(script), str(dag_file), dag_id], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=dict(os.environ),
        )  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` (e.g. "these rows are on storage") until it holds; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def part_lines(blobs: list[bytes]) -> list[dict[str, Any]]:
    """Whole, readable rows of part files given as bytes (from any storage)."""
    return [json.loads(line) for blob in blobs for line in blob.splitlines(keepends=True) if line.endswith(b"\n")]


DAG_HEADER = """
import pendulum
from datetime import timedelta

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator
"""


@pytest.fixture
def dag_header() -> str:
    """What the reliability DAG bodies use, for the suite-wide ``dag_runner`` (tests/conftest.py)."""
    return DAG_HEADER


@pytest.fixture(scope="session")
def kit() -> Any:
    """The helper functions above (test modules cannot import a conftest under importlib mode)."""
    return sys.modules[__name__]

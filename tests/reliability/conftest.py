"""Fixtures for the reliability tests: fast-retry connections, the DAG files' imports, row readers.

Everything runs against real parts: the local AnyFast server on 127.0.0.1 and, where a
test says so, moto S3. DAGs run through the suite-wide ``dag_runner`` (tests/conftest.py),
so the operator goes through Airflow's own task runner: templating, XCom, task retries, task logs.
"""

from __future__ import annotations

import json
import re
import sys
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

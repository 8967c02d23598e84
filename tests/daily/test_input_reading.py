"""Folder input reads JSON Lines whatever its name, says what it skips, and fails when it holds nothing."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.core.records.source import EmptyInputError, input_files, iter_source
from airflow_provider_anyfast.testing.server import AnyFastTestServer


def lines(*records: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_a_folder_reads_every_json_lines_name_and_warns_about_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "A.JSONL").write_text(lines({"id": 1}))
    (tmp_path / "part-00000").write_text(lines({"id": 2}))
    (tmp_path / "part-00001.gz").write_bytes(gzip.compress(lines({"id": 3}).encode()))
    (tmp_path / "part-00002-c000.NDJSON.GZ").write_bytes(gzip.compress(lines({"id": 4}).encode()))
    (tmp_path / "q.json").write_text(json.dumps([{"id": 5}, {"id": 6}], indent=2))  # one array, pretty-printed
    (tmp_path / "r.json").write_text(lines({"id": 7}))  # JSON Lines named .json
    (tmp_path / "notes.txt").write_text("not records")
    (tmp_path / "table.csv").write_text("id\n8\n")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".part-00000.crc").write_text("x")

    with caplog.at_level(logging.WARNING, logger="airflow_provider_anyfast.records"):
        files = input_files(tmp_path)
    assert [f.name for f in files] == ["A.JSONL", "part-00000", "part-00001.gz", "part-00002-c000.NDJSON.GZ",
                                       "q.json", "r.json"]  # fmt: skip
    assert [item.value["id"] for item in iter_source(tmp_path)] == [1, 2, 3, 4, 5, 6, 7]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "skipped 2 file(s)" in warning and "notes.txt, table.csv" in warning and "_SUCCESS" not in warning


def test_an_input_without_records_fails_and_says_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("id\n1\n")
    with pytest.raises(EmptyInputError, match=r"no JSON Lines file in folder .* \(it holds data.csv\)"):
        input_files(tmp_path)


DAG_BODY = """
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator

with DAG(DAG_ID, schedule=None, start_date=START, catchup=False):

    @task
    def load():
        return [{"text": "a"}]

    loaded = load()
    pulled = AnyFastRecordsOperator(task_id="pulled", records="{{ ti.xcom_pull('load') }}", prompt="{{ record.text }}")
    loaded >> pulled
    AnyFastRecordsOperator(task_id="empty_files", records=EMPTY, prompt="{{ record.text }}")
    AnyFastRecordsOperator(task_id="none", records="{{ ti.xcom_pull('absent') }}", prompt="{{ record.text }}")
"""


def test_records_that_are_not_records_fail_with_the_fix(
    anyfast_conn: AnyFastTestServer, run_dag: Any, tmp_path: Path
) -> None:
    (tmp_path / "part-00000").write_text("\n\n")
    result = run_dag(DAG_BODY, "bad_records", {"EMPTY": str(tmp_path)})

    states = result.task_states()
    assert (states["load"], states["pulled"], states["empty_files"], states["none"]) == (
        "success", "failed", "failed", "failed",
    )  # fmt: skip
    assert "a Jinja template always renders to text. Pass the upstream task's output itself" in result.output
    assert "holds no record (its JSON Lines files are empty)" in result.output
    assert "records rendered to 'None'" in result.output
    assert anyfast_conn.request_count() == 0

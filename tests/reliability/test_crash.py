"""Crashes: the worker killed with SIGKILL mid-run, and a row file cut off by a crash.

The kill is timed by an event, not a sleep: records after the first 40 are *held* by the
server, so when it reports 4 held requests (max_concurrency=4) every earlier record's row
has been appended (a new request goes out only when a slot frees, after the engine wrote
the finished row) and, with ``chunk_rows=5``, written as a part file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=SOURCE, prompt="Classify record {{ record.id }}: {{ record.text }}",
        id_field="id", output_path=OUT, chunk_rows=5, max_concurrency=4,
    )
"""
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
FIRST = 40  # records answered before the server starts holding requests
TOTAL = 60


def start_run(script: Path, dag_file: Path, dag_id: str, log: Path) -> subprocess.Popen[bytes]:
    """``dag.test()`` in a child process and process group of its own (so the kill reaches all of it)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(script), str(dag_file), dag_id], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=dict(os.environ),
        )  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_finishes_without_repeats(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    set_conn()
    records = kit.make_records(FIRST) + [{**r, "text": f"HOLD {r['text']}"} for r in kit.make_records(20, FIRST)]
    source = kit.write_jsonl(tmp_path / "input.jsonl", records)
    out = tmp_path / "out"
    dag_file = dag_runner.write(BODY, "sigkill", {"SOURCE": f"file://{source}", "OUT": f"file://{out}"})
    script = tmp_path / "run_dag.py"
    script.write_text(textwrap.dedent(RUN_SCRIPT))
    anyfast_server.add_rule("HOLD", Fault("hold"))

    worker = start_run(script, dag_file, "sigkill", tmp_path / "worker.log")
    try:
        anyfast_server.wait_for_held(4, timeout=120)
    except TimeoutError:
        worker.kill()
        raise AssertionError((tmp_path / "worker.log").read_text()[-5000:]) from None
    os.killpg(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL

    before = kit.part_rows(out)
    done_before = {row["id"] for row in before if row["status"] == "success"}
    assert done_before == {r["id"] for r in records[:FIRST]}, "all 40 answered rows were on storage at the kill"
    assert not (out / "manifest.json").exists(), "the killed run never finished"
    anyfast_server.release()  # the held requests are answered (to a dead client) and logged
    anyfast_server.wait_for_requests(FIRST + 4, timeout=30)
    anyfast_server.reset()

    rerun = dag_runner.run(dag_file, "sigkill")  # in-process: the task log is captured for the check below
    assert rerun.ok, rerun.output[-5000:]

    rows = kit.exactly_once(kit.folder_rows(out))
    assert set(rows) == {r["id"] for r in records} and {r["status"] for r in rows.values()} == {"success"}
    asked_again = Counter(kit.record_of(r.body) for r in anyfast_server.requests)
    assert not done_before & set(asked_again), "a record with a success row before the kill was requested again"
    assert asked_again == Counter({r["id"]: 1 for r in records[FIRST:]})
    assert "40 record(s) already have a success row" in rerun.output


CUT_BODY = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, prompt="Classify record {{ record.id }}: {{ record.text }}",
        id_field="id", output_path=OUT, chunk_rows=4, max_concurrency=1,
    )
"""


def test_row_file_cut_off_by_a_crash_is_detected_and_its_record_redone(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    set_conn()
    records = kit.make_records(10)
    out = tmp_path / "out"
    path = dag_runner.write(CUT_BODY, "cut_line", {"RECORDS": records, "OUT": f"file://{out}"})
    assert dag_runner.run(path, "cut_line").ok
    # What a crash in the middle of writing a part leaves: its last line cut off, no manifest.
    part = sorted((out / "rows").glob("part-*.jsonl"))[1]
    lines = part.read_bytes().splitlines(keepends=True)
    cut_id = json.loads(lines[-1])["id"]
    part.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    (out / "manifest.json").unlink()
    anyfast_server.reset()

    run = dag_runner.run(path, "cut_line")

    assert run.ok, run.output[-3000:]
    assert "damaged line" in run.output and part.name in run.output, "the task log warns about the cut line"
    assert [kit.record_of(r.body) for r in anyfast_server.requests] == [cut_id], "only the cut record is redone"
    rows = kit.exactly_once(kit.folder_rows(out))
    assert set(rows) == {r["id"] for r in records} and rows[cut_id]["status"] == "success"

"""Stops that keep what was paid, one writer per output, and resuming in XCom mode with a cache.

The server *holds* requests (never answers them until released), standing in for a hung
upstream; the connection's read timeout is 300 s, so a stop that waited for those requests
would not end within the tests' bounds. Requests are counted at the server.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=SOURCE, prompt="Classify record {{ record.id }}: {{ record.text }}",
        id_field="id", output_path=OUT, max_concurrency=4, execution_timeout=TIMEOUT,
    )
"""
ANSWERED = 30
HUNG_SERVER = {"timeout": 300}  # a read that would block for five minutes


def held_records(kit: Any, tmp_path: Path, total: int = 50) -> tuple[list[dict[str, Any]], Path]:
    records = kit.make_records(ANSWERED) + [
        {**r, "text": f"HOLD {r['text']}"} for r in kit.make_records(total - ANSWERED, ANSWERED)
    ]
    return records, kit.write_jsonl(tmp_path / "input.jsonl", records)


@pytest.mark.slow
def test_sigterm_against_a_hung_server_ends_promptly_and_keeps_every_answer(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    set_conn(extra=HUNG_SERVER)
    records, source = held_records(kit, tmp_path)
    out = tmp_path / "out"
    dag_file = dag_runner.write(BODY, "sigterm", {"SOURCE": f"file://{source}", "OUT": f"file://{out}",
                                                  "TIMEOUT": None})  # fmt: skip
    anyfast_server.add_rule("HOLD", Fault("hold"))
    worker = kit.start_dag_process(dag_file, "sigterm", tmp_path / "worker.log")
    try:
        anyfast_server.wait_for_held(4, timeout=120)
    except BaseException:
        worker.kill()
        raise AssertionError((tmp_path / "worker.log").read_text()[-5000:]) from None

    os.killpg(worker.pid, signal.SIGTERM)  # what Airflow sends when a task is marked failed or stopped
    try:
        code = worker.wait(timeout=20)  # far below the 300 s the held reads could last
    except BaseException:
        worker.kill()
        raise AssertionError("the stopped task waited for requests that never answer") from None
    log = (tmp_path / "worker.log").read_text()

    # Airflow 3 calls on_kill and the run ends itself; Airflow 2.11 also raises AirflowTaskTerminated in the task
    assert code == 1 and ("The run was stopped" in log or "AirflowTaskTerminated" in log), log[-3000:]
    assert "gave up on 4 request(s) still in flight" in log
    stored = {row["id"] for row in kit.part_rows(out) if row["status"] == "success"}
    assert stored == {r["id"] for r in records[:ANSWERED]}, "every answer received before the stop is on storage"
    assert anyfast_server.request_count() == ANSWERED, "nothing was sent after the stop (4 held, never answered)"


def test_execution_timeout_is_honoured_against_a_hung_server(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    set_conn(extra=HUNG_SERVER)
    records, source = held_records(kit, tmp_path)
    out = tmp_path / "out"
    anyfast_server.add_rule("HOLD", Fault("hold"))
    constants = {"SOURCE": f"file://{source}", "OUT": f"file://{out}"}
    body = BODY.replace("execution_timeout=TIMEOUT", "execution_timeout=timedelta(seconds=3)")

    try:  # would hang for 300 s if the stop waited for the held requests
        run = dag_runner.run(dag_runner.write(body, "timeout", constants), "timeout")
        timed_out = not run.ok and "Timeout" in run.output
    except BaseException as exc:  # Airflow 2.11's dag.test() raises the task's AirflowTaskTimeout (a BaseException)
        if type(exc).__name__ != "AirflowTaskTimeout":
            raise
        timed_out = True

    assert timed_out
    stored = {row["id"] for row in kit.part_rows(out) if row["status"] == "success"}
    assert stored == {r["id"] for r in records[:ANSWERED]}, "every answer received before the timeout is on storage"
    assert anyfast_server.request_count() == ANSWERED


@pytest.mark.slow
def test_two_runs_on_one_output_path_pay_once_and_the_second_names_the_first(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path
) -> None:
    set_conn()
    records, source = held_records(kit, tmp_path)
    out = tmp_path / "out"
    dag_file = dag_runner.write(BODY, "two_writers", {"SOURCE": f"file://{source}", "OUT": f"file://{out}",
                                                      "TIMEOUT": None})  # fmt: skip
    anyfast_server.add_rule("HOLD", Fault("hold"))
    first = kit.start_dag_process(dag_file, "two_writers", tmp_path / "first.log")
    try:
        anyfast_server.wait_for_held(4, timeout=120)
        second = dag_runner.run(dag_file, "two_writers")  # a manual rerun while the first still runs
    finally:
        anyfast_server.release()
    assert first.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()[-3000:]

    assert not second.ok
    refusal = next(line for line in second.output.splitlines() if "is being written by another run" in line)
    assert "dag=two_writers run=" in refusal and "task=classify try=1 host=" in refusal
    assert f"pid={first.pid}" in refusal and "its lease expires at" in refusal
    assert "RowStorageError" not in second.output
    asked = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    assert asked == Counter({r["id"]: 1 for r in records}), "every record paid exactly once"
    assert set(kit.exactly_once(kit.folder_rows(out))) == {r["id"] for r in records}


XCOM_BODY = """
with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="classify", records=RECORDS, prompt="Classify record {{ record.id }}: {{ record.text }}",
        id_field="id", max_concurrency=1, retries=1, retry_delay=timedelta(seconds=0),
    )
"""


def test_a_retried_xcom_task_pays_nothing_again_with_the_provider_wide_cache(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    set_conn(extra={"max_retries": 1})
    monkeypatch.setenv("AIRFLOW__ANYFAST__CACHE_PATH", str(tmp_path / "cache"))  # the [anyfast] section
    records = kit.make_records(30)
    # the first try: record 20 meets an outage longer than its retries, so the try fails on its error rate
    # (not a rejected token: that fails the task with no Airflow retry, as no retry could help)
    anyfast_server.add_rule("record rec-00020", Fault("server_error", status=500), times=2)

    run = dag_runner.run(dag_runner.write(XCOM_BODY, "xcom_retry", {"RECORDS": records}), "xcom_retry")

    assert run.ok, run.output[-3000:]
    rows = {row["id"]: row for row in run.xcom("classify")}
    assert set(rows) == {r["id"] for r in records} and {r["status"] for r in rows.values()} == {"success"}
    assert sum(1 for row in rows.values() if row["cached"]) == 29, "the retry took the first try's 29 answers"
    asked = Counter(kit.record_of(r.body) for r in anyfast_server.requests if r.method == "POST")
    assert asked == Counter({r["id"]: 3 if r["id"] == "rec-00020" else 1 for r in records})

"""AnyFastRecordsOperator in real ``dag.test()`` runs, rows to XCom, against the local server."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

BODY = """
import pendulum
from pydantic import BaseModel

from airflow.sdk import DAG, task
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator


class Verdict(BaseModel):
    label: str
    score: float


with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def load():
        return RECORDS

    rows = AnyFastRecordsOperator(
        task_id="classify", records=load(), prompt=PROMPT, output_schema=Verdict, id_field="sku", **OPTIONS
    )

    @task
    def statuses(rows):
        return sorted(row["status"] for row in rows)

    statuses(rows.output)
"""
ROW_KEYS = {"id", "status", "output", "error", "raw", "model", "finish_reason", "usage", "attempts"}


def constants(records: list[dict[str, Any]], prompt: str = "Classify: {{ record.text }}", **options: Any) -> dict:
    return {"RECORDS": records, "PROMPT": prompt, "OPTIONS": options}


def by_id(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Rows keyed by id, after checking each id is there exactly once."""
    counts = Counter(row["id"] for row in rows)
    assert all(n == 1 for n in counts.values()), f"repeated ids: {counts}"
    return {row["id"]: row for row in rows}


def sent_texts(server: AnyFastTestServer) -> list[str]:
    return [r.record_text or "" for r in server.requests if r.path == "/v1/chat/completions"]


def test_rows_go_to_xcom_one_per_record(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    records = [{"sku": f"s{i}", "text": f"item <b>{i}</b> & co", "n": i} for i in range(5)]
    result = run_dag(BODY, "records_xcom_ok", constants(records, "Classify {{ record | tojson }}"))

    assert result.ok, result.output[-3000:]
    rows = by_id(result.xcom("classify"))
    assert set(rows) == {f"s{i}" for i in range(5)}
    for row in rows.values():
        assert set(row) >= ROW_KEYS
        assert row["status"] == "success" and row["error"] is None and row["attempts"] == 1
        assert set(row["output"]) == {"label", "score"} and isinstance(row["output"]["score"], float)
        assert row["model"] == "gemini-2.5-flash" and row["finish_reason"] == "stop"
        assert row["usage"]["total_tokens"] > 0
    assert result.xcom("statuses") == ["success"] * 5  # the rows reached a downstream task
    texts = sent_texts(anyfast_conn)
    assert len(texts) == 5
    # tojson is plain JSON: no HTML escaping of <, > or &
    assert 'Classify {"n": 3, "sku": "s3", "text": "item <b>3</b> & co"}' in texts
    assert "AnyFast progress: 5/5" in result.output
    assert anyfast_conn.token not in result.output


@pytest.fixture
def faulty(anyfast_conn: AnyFastTestServer) -> AnyFastTestServer:
    """Rules that give records whose text holds a marker the fault that marker names."""
    server = anyfast_conn
    server.add_rule("FAULT-429", Fault("rate_limit", retry_after=0.05), times=1)
    server.add_rule("FAULT-503", Fault("server_error", status=503, retry_after=0.01))
    server.add_rule("FAULT-JSON", Fault("invalid_json"))
    server.add_rule("FAULT-CUT", Fault("truncated"))
    server.add_rule("FAULT-SAFE", Fault("filtered"))
    server.add_rule("FAULT-400", Fault("status", status=400))
    return server


FAULTY_RECORDS = [
    {"sku": "ok-1", "text": "plain one"},
    {"sku": "rl", "text": "FAULT-429 once"},
    {"sku": "ok-2", "text": "plain two"},
    {"sku": "s5", "text": "FAULT-503 always"},
    {"sku": "bad", "text": "FAULT-JSON"},
    {"sku": "cut", "text": "FAULT-CUT"},
    {"sku": "safe", "text": "FAULT-SAFE"},
    {"sku": "b400", "text": "FAULT-400"},
    {"sku": "ok-3", "text": "plain three"},
]


def check_faulty_rows(rows: dict[Any, dict[str, Any]]) -> None:
    assert set(rows) == {r["sku"] for r in FAULTY_RECORDS}
    for ok in ("ok-1", "ok-2", "ok-3"):
        assert (rows[ok]["status"], rows[ok]["attempts"]) == ("success", 1)
    assert (rows["rl"]["status"], rows["rl"]["attempts"]) == ("success", 2)  # retried after Retry-After
    assert rows["s5"]["status"] == "error" and rows["s5"]["attempts"] == 6  # 1 + max_retries (5)
    assert rows["s5"]["error"]["type"] == "server_error" and rows["s5"]["error"]["status"] == 503
    assert rows["bad"]["status"] == "invalid_output" and rows["bad"]["attempts"] == 2  # one re-ask
    assert "single quoted" in rows["bad"]["raw"]
    assert (rows["cut"]["status"], rows["cut"]["finish_reason"]) == ("truncated", "length")
    assert (rows["safe"]["status"], rows["safe"]["finish_reason"]) == ("filtered", "content_filter")
    assert rows["b400"]["status"] == "error" and rows["b400"]["attempts"] == 1  # never retried
    assert rows["b400"]["error"]["status"] == 400 and rows["b400"]["error"]["type"] == "bad_request"
    for row in rows.values():
        if row["status"] != "success":
            assert row["output"] is None and set(row["error"]) == {"type", "message", "status"}


def test_mixed_faults_within_max_error_rate(faulty: AnyFastTestServer, run_dag: Any) -> None:
    result = run_dag(BODY, "records_faults_pass", constants(FAULTY_RECORDS, max_error_rate=0.6, max_concurrency=4))

    assert result.ok, result.output[-3000:]
    check_faulty_rows(by_id(result.xcom("classify")))
    # retries are tallied in the progress line (1 rate-limited + 5 server errors), not logged one by one
    assert "retries 6 (429: 1, current wait" in result.output and "retrying in" not in result.output


def test_error_rate_exceeded_fails_after_writing_every_row(faulty: AnyFastTestServer, run_dag: Any) -> None:
    result = run_dag(BODY, "records_faults_fail", constants(FAULTY_RECORDS))

    assert result.state == "failed"
    assert result.instance_states()[("classify", -1)] == "failed"
    check_faulty_rows(by_id(result.xcom("classify", key="rows")))
    assert "5 of 9 records" in result.output and "max_error_rate=0.0" in result.output
    assert "Every record was processed" in result.output


def test_missing_template_field_gives_an_error_row_naming_record_and_field(
    anyfast_conn: AnyFastTestServer, run_dag: Any
) -> None:
    records = [{"sku": "a", "text": "one"}, {"sku": "no-text", "body": "x"}, {"sku": "c", "text": "three"}]
    result = run_dag(BODY, "records_missing_field", constants(records, max_error_rate=0.5))

    assert result.ok, result.output[-3000:]
    rows = by_id(result.xcom("classify"))
    row = rows["no-text"]
    assert row["status"] == "error" and row["error"]["type"] == "invalid_record" and row["attempts"] == 0
    assert "'no-text'" in row["error"]["message"] and "'text'" in row["error"]["message"]
    assert sorted(sent_texts(anyfast_conn)) == ["Classify: one", "Classify: three"]


def test_unsendable_records_above_max_error_rate_are_refused_before_any_request(
    anyfast_conn: AnyFastTestServer, run_dag: Any
) -> None:
    records = [{"sku": "a", "text": "one"}, {"sku": "no-text", "body": "x"}]
    result = run_dag(BODY, "records_refused", constants(records))

    assert result.state == "failed"
    assert anyfast_conn.request_count() == 0
    assert "nothing was sent" in result.output and "record 'no-text'" in result.output
    assert "field 'text'" in result.output


def test_duplicate_ids_are_refused_before_any_request(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    records = [{"sku": "a", "text": "1"}, {"sku": "b", "text": "2"}, {"sku": "a", "text": "3"}]
    result = run_dag(BODY, "records_duplicates", constants(records, max_error_rate=1.0))

    assert result.state == "failed"
    assert anyfast_conn.request_count() == 0
    assert "repeat an id of field 'sku'" in result.output and "'a' (position 2)" in result.output


def test_budget_spent_stops_sending(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    records = [{"sku": f"r{i}", "text": f"record {i}"} for i in range(5)]
    options: dict[str, Any] = {"max_total_tokens": 1, "max_concurrency": 1, "max_error_rate": 1.0}
    result = run_dag(BODY, "records_budget", constants(records, **options))

    assert result.ok, result.output[-3000:]
    rows = by_id(result.xcom("classify"))
    assert rows["r0"]["status"] == "success"
    for later in ("r1", "r2", "r3", "r4"):
        assert rows[later]["status"] == "error" and rows[later]["attempts"] == 0
        assert rows[later]["error"]["type"] == "budget_exhausted"
        assert "max_total_tokens=1" in rows[later]["error"]["message"]
    assert sent_texts(anyfast_conn) == ["Classify: record 0"]


def test_rows_too_large_for_xcom_say_to_use_output_path(anyfast_conn: AnyFastTestServer, run_dag: Any) -> None:
    records = [{"sku": f"r{i}", "text": f"record {i}"} for i in range(4)]
    result = run_dag(BODY, "records_xcom_limit", constants(records, max_xcom_bytes=400, max_concurrency=1))

    assert result.state == "failed"
    assert "too large for XCom" in result.output and "Set output_path" in result.output


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"completion_params": {"top_p": 3}}, "'top_p' must be <= 1"),
        ({"completion_params": {"temprature": 0.5}}, "unknown parameter 'temprature'"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_error_rate": 2}, "max_error_rate"),
        ({"budget_scope": 7}, "budget_scope must be a name or None"),
    ],
)
def test_bad_arguments_fail_at_parse_time(load_dag: Any, options: dict[str, Any], named: str) -> None:
    bag = load_dag(BODY, "records_bad_args", constants([], **options))

    errors = "\n".join(bag.import_errors.values())
    assert named in errors, errors

"""Bad input gets a clear error naming the field, record or parameter, and costs nothing.

These drive ``AnyFastRecordsOperator.execute(context)`` directly: what is under test is the
operator's own checking before the first request, which needs no scheduler, and one
``dag.test()`` per case would cost 1.5 s each. Two cases also go through Airflow (a DAG
that fails to parse; a refused run in the task log) to show the errors reach the user.
Every test asserts what the server saw: nothing, or only the valid records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.core.records.plan import DuplicateRecordIdError
from airflow_provider_anyfast.core.records.runner import RecordsRefusedError
from airflow_provider_anyfast.exceptions import AnyFastConfigError, AnyFastParameterError
from airflow_provider_anyfast.operators.anyfast import AnyFastRecordsOperator
from airflow_provider_anyfast.testing import AnyFastTestServer

PROMPT = "Classify record {{ record.id }}: {{ record.text }}"


def operator(**kwargs: Any) -> AnyFastRecordsOperator:
    options: dict[str, Any] = {"task_id": "classify", "prompt": PROMPT, "id_field": "id", "records": [], **kwargs}
    return AnyFastRecordsOperator(**options)


def sent(server: AnyFastTestServer, kit: Any) -> list[str]:
    """The record ids of the chat requests the server saw."""
    return [str(kit.record_of(r.body)) for r in server.requests if r.path == "/v1/chat/completions"]


def rows_by_id(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def test_records_that_are_not_mappings(anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any) -> None:
    set_conn()
    records = [*kit.make_records(1), 5, "a string", None]
    with pytest.raises(RecordsRefusedError) as info:
        operator(records=records).execute({})
    assert "3 of 4 records cannot be sent" in str(info.value)
    assert "position 1 is int, not a JSON object" in str(info.value) and "position 3 is null" in str(info.value)
    assert anyfast_server.request_count() == 0

    rows = rows_by_id(operator(records=records, max_error_rate=0.8).execute({}))  # the valid one still goes
    assert sent(anyfast_server, kit) == ["rec-00000"] and rows["rec-00000"]["status"] == "success"
    refused = rows["position:2"]["error"]
    assert refused["type"] == "invalid_record" and "is str" in refused["message"]


def test_duplicate_ids(anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any) -> None:
    set_conn()
    records = [*kit.make_records(3), {"id": "rec-00001", "text": "again"}]
    with pytest.raises(DuplicateRecordIdError) as info:
        operator(records=records, max_error_rate=1.0).execute({})
    assert "'rec-00001' (position 3)" in str(info.value) and "field 'id'" in str(info.value)
    assert anyfast_server.request_count() == 0


def test_template_field_the_records_lack(anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any) -> None:
    set_conn()
    with pytest.raises(RecordsRefusedError) as info:
        operator(records=kit.make_records(3), prompt="Summarise {{ record.title }}").execute({})
    assert "record 'rec-00000': the prompt template refers to field 'title'" in str(info.value)
    assert anyfast_server.request_count() == 0


def test_empty_record_set_is_a_clean_no_op(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, tmp_path: Path
) -> None:
    """An empty list is a no-op (XCom: no rows; storage: a manifest with zero counts); an empty *file*
    is a wrong path or a broken upstream, so it fails, before anything is sent."""
    set_conn()
    assert operator(records=[]).execute({}) == []
    empty_file = tmp_path / "empty.jsonl"
    empty_file.write_text("")
    with pytest.raises(ValueError, match="holds no record"):
        operator(records=f"file://{empty_file}").execute({})
    body = """
    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
        AnyFastRecordsOperator(task_id="t", records=[], prompt="x {{ record.id }}", output_path=OUT)
    """
    out = tmp_path / "out"
    run = dag_runner.run(dag_runner.write(body, "empty", {"OUT": f"file://{out}"}), "empty")
    assert run.ok, run.output[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == 0 and manifest["files"] == [] and set(manifest["counts"].values()) == {0}
    assert run.xcom("t")["records"] == 0 and run.xcom("t")["input_records"] == 0
    assert anyfast_server.request_count() == 0


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "objekt"}, "output_schema is not a valid JSON schema"),
        ({"type": "object", "required": "label"}, "output_schema is not a valid JSON schema"),
        (int, "output_schema must be a pydantic model class or a JSON-schema dict"),
        ("{}", "output_schema must be a pydantic model class or a JSON-schema dict"),
    ],
)
def test_schema_that_is_not_a_model_or_json_schema(
    anyfast_server: AnyFastTestServer, schema: Any, expected: str
) -> None:
    with pytest.raises(AnyFastConfigError, match=expected):
        operator(output_schema=schema)
    assert anyfast_server.request_count() == 0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"completion_params": {"temperature": 3}}, "'temperature' must be <= 2.0 (got 3)"),
        ({"completion_params": {"max_tokens": 0}}, "'max_tokens' must be >= 1 (got 0)"),
        ({"completion_params": {"top_k": 3}}, "unknown parameter 'top_k'"),
        ({"max_concurrency": 0}, "max_concurrency must be an integer from 1 to 1024"),
        ({"requests_per_minute": -5}, "requests_per_minute must be a positive number"),
        ({"max_error_rate": 1.5}, "max_error_rate must be between 0.0 and 1.0"),
        ({"max_input_tokens": 0}, "max_input_tokens must be a positive number"),
        ({"max_output_retries": -1}, "max_output_retries must be >= 0"),
    ],
)
def test_out_of_range_parameters(anyfast_server: AnyFastTestServer, kwargs: dict, expected: str) -> None:
    with pytest.raises((AnyFastParameterError, ValueError)) as info:
        operator(**kwargs)
    assert expected in str(info.value)
    assert anyfast_server.request_count() == 0


def test_out_of_range_parameter_fails_the_dag_parse(anyfast_server: AnyFastTestServer, dag_runner: Any) -> None:
    body = """
    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
        AnyFastRecordsOperator(task_id="t", records=[], prompt="x", completion_params={"temperature": 9})
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_runner.write(body, "bad_param", {})))
    assert "'temperature' must be <= 2.0 (got 9)" in " ".join(map(str, bag.import_errors.values()))
    assert anyfast_server.request_count() == 0


@pytest.mark.parametrize("password", [None, "", "   "])
def test_missing_or_empty_token(
    anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any, password: str | None
) -> None:
    set_conn(password=password)
    with pytest.raises(AnyFastConfigError) as info:
        operator(records=kit.make_records(2)).execute({})
    assert "connection 'anyfast_default'" in str(info.value) and "no AnyFast API token" in str(info.value)
    assert anyfast_server.request_count() == 0


@pytest.mark.parametrize("host", ["not a url", "ftp://files.example.com", "http://"])
def test_base_url_that_is_not_a_url(anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any, host: str) -> None:
    set_conn(host=host)
    with pytest.raises(AnyFastConfigError) as info:
        operator(records=kit.make_records(2)).execute({})
    assert "connection 'anyfast_default'" in str(info.value) and "is not an http(s) URL" in str(info.value)
    assert anyfast_server.request_count() == 0


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://bucket/rows", "install apache-airflow-providers-google"),
        ("foo://bucket/rows", "no filesystem is available for the 'foo' scheme"),
    ],
)
def test_output_path_whose_scheme_has_no_filesystem(
    anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any, uri: str, expected: str
) -> None:
    set_conn()
    with pytest.raises(AnyFastConfigError) as info:
        operator(records=kit.make_records(2), output_path=uri).execute({})
    assert f"output_path={uri!r}" in str(info.value) and expected in str(info.value)
    assert anyfast_server.request_count() == 0


def test_non_utf8_input_line(anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any, tmp_path: Path) -> None:
    set_conn()
    source = tmp_path / "input.jsonl"
    good = [json.dumps(r).encode() + b"\n" for r in kit.make_records(3)]
    source.write_bytes(good[0] + b'{"id": "rec-bad", "text": "caf\xe9"}\n' + good[1] + good[2])
    with pytest.raises(RecordsRefusedError) as info:
        operator(records=f"file://{source}").execute({})
    assert f"line 2 of file://{source} is not valid UTF-8" in str(info.value)
    assert anyfast_server.request_count() == 0

    rows = rows_by_id(operator(records=f"file://{source}", max_error_rate=0.5).execute({}))
    assert sorted(sent(anyfast_server, kit)) == ["rec-00000", "rec-00001", "rec-00002"]  # the valid ones only
    assert "not valid UTF-8" in rows["position:1"]["error"]["message"] and rows["position:1"]["status"] == "error"


def test_record_too_large_for_the_context_gets_an_error_row_unsent(
    anyfast_server: AnyFastTestServer, set_conn: Any, kit: Any
) -> None:
    set_conn()
    records = [*kit.make_records(2), {"id": "rec-huge", "text": "word " * 4000}]
    rows = rows_by_id(operator(records=records, max_input_tokens=2000, max_error_rate=0.5).execute({}))
    assert rows["rec-huge"]["status"] == "error" and rows["rec-huge"]["attempts"] == 0
    assert "record 'rec-huge' is too large" in rows["rec-huge"]["error"]["message"]
    assert "2000-token context; it was not sent" in rows["rec-huge"]["error"]["message"]
    assert sorted(sent(anyfast_server, kit)) == ["rec-00000", "rec-00001"]


def test_refused_run_is_explained_in_the_task_log(
    anyfast_server: AnyFastTestServer, set_conn: Any, dag_runner: Any, kit: Any
) -> None:
    set_conn()
    body = """
    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
        AnyFastRecordsOperator(task_id="t", records=RECORDS, prompt="Summarise {{ record.title }}", id_field="id")
    """
    run = dag_runner.run(dag_runner.write(body, "refused", {"RECORDS": kit.make_records(2)}), "refused")
    assert not run.ok
    assert "RecordsRefusedError: 2 of 2 records cannot be sent" in run.output and "field 'title'" in run.output
    assert anyfast_server.request_count() == 0

"""The API token never leaks: not in logs (DEBUG included), errors, rendered fields, XCom, rows, manifest, server log.

One DAG, two tasks, run with ``dag.test()`` at DEBUG against a server whose errors echo the
request's Authorization header back (as careless proxies do), so every error path carries
the token towards a message. Task ``to_xcom`` fails on its error rate (a traceback in the
log, rows pushed to XCom); task ``to_files`` uses a base URL with user:password in it and
writes rows and a manifest to a folder. Then everything they left is searched for the
token and for the URL's password.

``dag.test()`` runs tasks in-process and writes no task log file (a worker's supervisor
would); the same log records are captured here three ways: what the run printed, pytest's
caplog (before Airflow's masker, so a leak in our code cannot hide behind it), and a DEBUG
file under ``AIRFLOW_HOME/logs``; every file under ``AIRFLOW_HOME/logs`` is searched.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_anyfast.exceptions import AnyFastError
from airflow_provider_anyfast.hooks.anyfast import AnyFastHook
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

TOKEN = f"sk-leakcheck-{uuid.uuid4().hex}"
URL_PASSWORD = f"urlpw-{uuid.uuid4().hex[:16]}"
SECRETS = (TOKEN, URL_PASSWORD)
BODY = """
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}

with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
    AnyFastRecordsOperator(
        task_id="to_xcom", records=RECORDS, prompt=PROMPT, output_schema=SCHEMA, id_field="id",
        max_concurrency=1,
    )
    AnyFastRecordsOperator(
        task_id="to_files", records=RECORDS, prompt=PROMPT, output_schema=SCHEMA, id_field="id",
        anyfast_conn_id="anyfast_url_creds", output_path=OUT, max_concurrency=1, max_error_rate=1.0,
    )
"""
PROMPT = "Classify record {{ record.id }}: {{ record.text }}"


@pytest.fixture
def server() -> Iterator[AnyFastTestServer]:
    with AnyFastTestServer(token=TOKEN) as srv:
        srv.add_rule("rec-00001", Fault("status", status=400, echo_auth=True))
        srv.add_rule("rec-00002", Fault("server_error", status=502, echo_auth=True, body_shape="html"))
        srv.add_rule("rec-00003", Fault("rate_limit", retry_after_ms=10, echo_auth=True, body_shape="gemini"), 2)
        srv.add_rule("rec-00004", Fault("truncated"))
        srv.add_rule("rec-00005", Fault("drop"), times=2)
        srv.add_rule("rec-00007", Fault("status", status=401, echo_auth=True, body_shape="text"))
        yield srv


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def leaks(where: str, text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{where} holds {'the token' if s == TOKEN else 'the URL password'}" for s in SECRETS if s.encode() in data]


def test_token_and_url_credentials_never_leak(
    server: AnyFastTestServer, dag_runner: Any, kit: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    extra = {**kit.FAST_EXTRAS, "max_retries": 2}
    for conn_id, host in (("anyfast_default", server.base_url),
                          ("anyfast_url_creds", f"http://alice:{URL_PASSWORD}@127.0.0.1:{server.port}")):  # fmt: skip
        conn = {"conn_type": "anyfast", "host": host, "password": TOKEN, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    (logs / "reliability").mkdir(parents=True, exist_ok=True)
    debug_file = logging.FileHandler(logs / "reliability" / f"secrets-{uuid.uuid4().hex[:8]}.log")
    debug_file.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    logging.getLogger().addHandler(debug_file)
    out = tmp_path / "out"
    try:
        run = dag_runner.run(
            dag_runner.write(BODY, "secrets", {"RECORDS": kit.make_records(8), "PROMPT": PROMPT, "OUT": str(out)}),
            "secrets",
        )
    finally:
        logging.getLogger().removeHandler(debug_file)
        debug_file.close()

    # The run did what it should, or the search below would prove little.
    assert run.state == "failed", run.state
    # the 401 (a rejected token) stops both runs and fails both tasks with that cause, rows kept
    assert "AirflowFailException: AnyFastAuthError" in run.output, run.output[-3000:]
    xcom_rows = run.xcom("to_xcom", "rows")
    assert any("Authorization: Bearer ***" in (row["error"] or {}).get("message", "") for row in xcom_rows)
    assert {row["status"] for row in xcom_rows} == {"success", "error", "truncated"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["success"] >= 4, "the token went as Bearer despite the URL's user:password"
    assert "DEBUG" in run.output or any(r.levelno == logging.DEBUG for r in caplog.records)

    found: list[str] = []
    found += leaks("the printed task log", run.output)
    found += leaks("caplog at DEBUG", "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    for path, data in files_under(logs).items():
        found += leaks(path, data)
    for path, data in files_under(out).items():
        found += leaks(path, data)
    found += leaks("XCom", json.dumps([value for _, _, value in run.all_xcoms()], default=str))
    for task_id in ("to_xcom", "to_files"):
        rendered = run.rendered_fields(task_id)
        assert rendered, f"no rendered fields stored for {task_id}"
        found += leaks(f"rendered fields of {task_id}", json.dumps(rendered, default=str))
    found += leaks("server log", json.dumps([r.to_json(bodies=True) for r in server.requests]))
    assert found == []


def test_errors_and_tracebacks_never_hold_the_token(server: AnyFastTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "anyfast", "host": f"http://bob:{URL_PASSWORD}@127.0.0.1:{server.port}", "password": TOKEN,
            "extra": {"max_retries": 0}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ANYFAST_SECRETS", json.dumps(conn))
    hook = AnyFastHook("anyfast_secrets")
    for fault in (Fault("status", status=400, echo_auth=True), Fault("status", status=401, echo_auth=True),
                  Fault("rate_limit", echo_auth=True, body_shape="list"), Fault("drop")):  # fmt: skip
        server.push_fault(fault)
        with pytest.raises(AnyFastError) as info:
            hook.chat_completion("record rec-1")
        text = "".join(traceback.format_exception(info.value)) + repr(info.value) + str(info.value.args)
        assert leaks(f"the {fault.kind} error", text) == []
        if fault.echo_auth:  # the server did echo the header: the scrubbing is what kept the token out
            assert "Authorization: Bearer ***" in text
    assert all(r.auth_ok for r in server.requests), "the token was sent (as Bearer) on every request"

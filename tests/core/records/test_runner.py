"""run_records and the engine without Airflow: stopping, fatal errors, 429 back-off, no secrets."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from upath import UPath

from airflow_provider_anyfast.core.client import AnyFastClient
from airflow_provider_anyfast.core.records.engine import RecordEngine, WorkItem
from airflow_provider_anyfast.core.records.plan import RecordsJob
from airflow_provider_anyfast.core.records.prompt import PromptTemplate
from airflow_provider_anyfast.core.records.rows import ResultRow
from airflow_provider_anyfast.core.records.runner import RunSpec, run_records
from airflow_provider_anyfast.core.records.settings import RunSettings
from airflow_provider_anyfast.core.records.sink import MemoryRowSink
from airflow_provider_anyfast.core.records.source import iter_source
from airflow_provider_anyfast.core.records.store import RowStore
from airflow_provider_anyfast.core.request import ChatRequest
from airflow_provider_anyfast.core.retry import RetryPolicy
from airflow_provider_anyfast.exceptions import AnyFastAuthError
from airflow_provider_anyfast.testing import AnyFastTestServer, Fault

JSON_REQUEST = ChatRequest("gemini-2.5-flash", {"response_format": {"type": "json_object"}}, json_mode=True)

FAST = RetryPolicy(max_retries=3, max_retry_wait=5.0, backoff_initial=0.01, backoff_max=0.05)


def spec(
    max_concurrency: int = 1, max_error_rate: float = 0.0, rpm: float | None = None, stop_grace: float = 0.5
) -> RunSpec:
    job = RecordsJob(
        template=PromptTemplate("Text: {{ record.text }}"), request=JSON_REQUEST, id_field="id",
    )  # fmt: skip
    settings = RunSettings(
        max_concurrency=max_concurrency, requests_per_minute=rpm, max_error_rate=max_error_rate, dedup=False,
        stop_grace=stop_grace,
    )  # fmt: skip
    return RunSpec(job=job, schema=None, settings=settings)


def records(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": f"record {i}"} for i in range(n)]


class CancelAfter(MemoryRowSink):
    """A real sink that sets ``cancel`` once it holds ``rows`` rows (as on_kill would, from outside)."""

    def __init__(self, cancel: threading.Event, rows: int) -> None:
        super().__init__()
        self.cancel, self.after = cancel, rows

    def append(self, row: ResultRow) -> None:
        super().append(row)
        if len(self.rows) >= self.after:
            self.cancel.set()


def test_cancel_stops_sending_new_requests(anyfast_server: AnyFastTestServer) -> None:
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=FAST)
    cancel = threading.Event()
    sink = CancelAfter(cancel, rows=1)
    with pytest.raises(RuntimeError, match="The run was stopped"):
        run_records(client, spec(), lambda: iter_source(records(5)), sink, cancel=cancel)
    assert anyfast_server.request_count() == 1  # nothing sent once the stop was asked for
    assert [row["id"] for row in sink.rows] == ["r0"]


class StopDuringLimiterWait(threading.Event):
    """The stop, set from inside the rate limiter's wait: a record is certainly waiting there when it comes."""

    def __init__(self) -> None:
        super().__init__()
        self.limiter_waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.limiter_waits.append(timeout)
        self.set()  # as on_kill would, while the record waits for its slot
        return super().wait(timeout)


def test_cancel_ends_a_rate_limit_wait_without_sending(anyfast_server: AnyFastTestServer) -> None:
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=FAST)
    cancel = StopDuringLimiterWait()
    sink = MemoryRowSink()
    # one request a minute: r0 goes at once, r1 waits on the limiter (about 60 s) and the stop comes then
    with pytest.raises(RuntimeError, match="The run was stopped"):
        # a long grace: the aborted row is collected as soon as it exists, however loaded the machine
        run_records(client, spec(rpm=1, stop_grace=60), lambda: iter_source(records(3)), sink, cancel=cancel)
    assert anyfast_server.request_count() == 1
    assert len(cancel.limiter_waits) == 1 and cancel.limiter_waits[0] == pytest.approx(60.0, abs=1.0)
    rows = {row["id"]: row for row in sink.rows}
    assert rows.pop("r0")["status"] == "success"
    assert rows.pop("r1")["error"]["type"] == "aborted"  # the waiting record: never sent
    assert rows == {}  # r2 was never started


def test_cancel_flushes_rows_already_written_to_storage(anyfast_server: AnyFastTestServer, tmp_path: Path) -> None:
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=FAST)
    cancel = threading.Event()
    store = RowStore(UPath(f"file://{tmp_path}/out"), chunk_rows=100)
    original = store.append

    def append(row: ResultRow) -> None:
        original(row)
        if row.id == "r1":
            cancel.set()

    store.append = append  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match=r"row\(s\) of this run are kept in"):
        run_records(client, spec(), lambda: iter_source(records(5)), store, cancel=cancel)
    lines = [
        json.loads(line) for part in (tmp_path / "out" / "rows").iterdir() for line in part.read_text().splitlines()
    ]
    assert sorted(row["id"] for row in lines) == ["r0", "r1"]
    assert anyfast_server.request_count() == 2


def test_a_rejected_token_fails_before_any_record_and_never_shows_up(
    anyfast_server: AnyFastTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-wrong-secret-0123456789"
    client = AnyFastClient(anyfast_server.base_url, secret, retry=FAST)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AnyFastAuthError, match="nothing was sent") as failed:
        run_records(client, spec(), lambda: iter_source(records(4)), MemoryRowSink())
    assert failed.value.status == 401
    assert anyfast_server.request_count() == 0  # found by the free model list: no record paid for
    assert anyfast_server.request_count("/v1/models") == 1
    everything = str(failed.value) + repr(failed.value) + caplog.text + repr(client)
    assert secret not in everything


def test_rate_limits_lower_the_concurrency(anyfast_server: AnyFastTestServer) -> None:
    anyfast_server.push_fault(Fault("rate_limit", retry_after=0.01), times=4)
    client = AnyFastClient(anyfast_server.base_url, anyfast_server.token, retry=FAST, pool_size=8)
    sink = MemoryRowSink()
    engine = RecordEngine(client, None, sink, RunSettings(max_concurrency=8))
    body = {"model": "gemini-2.5-flash", "response_format": {"type": "json_object"}}
    work = [WorkItem(i, {**body, "messages": [{"role": "user", "content": f"n{i}"}]}, 10) for i in range(12)]
    counts = engine.run(work)
    assert engine.concurrency.decreases >= 1  # it backed off by itself
    assert counts.success == 12 and len(sink.rows) == 12
    assert anyfast_server.request_count() == 16  # 12 records + 4 retried 429s
